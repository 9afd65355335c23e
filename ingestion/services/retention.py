"""Whole-partition retention of the event log: archive (plain PostgreSQL: DETACH into the `archive` schema;
TimescaleDB: compress chunks) and drop. Never row by row.

The privacy app decides WHICH months may move or go (tenant policies, legal holds); this module owns the DDL.

On plain PostgreSQL the log has monthly partitions `ingestion_event_YYYYMM` (see migration 0002). Archiving a
month detaches its partition from `ingestion_event`, moves it into the `archive` schema and attaches it to
`archive.ingestion_event`, a partitioned table with the same columns: bulk report jobs and the privacy export
read `archive.ingestion_event` as one table, while the hot log's indexes and queries no longer see the month.
A CHECK constraint equal to the partition bound is added before the ATTACH so PostgreSQL skips the validation
scan, then dropped. Dropping a month is `DROP TABLE` of its partition, wherever it lives."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from django.db import transaction

from coliseum.rls import owner_scope, policies_apply
from ingestion.services.maintenance import timescale_enabled
from ingestion.services.processing import _cursor

ARCHIVE_SCHEMA = "archive"
_PARTITION_NAME = re.compile(r"^ingestion_event_(\d{4})(\d{2})$")


@dataclass(frozen=True, slots=True)
class LogPartition:
    schema: str  # "public" (hot) or "archive"
    name: str
    month: date  # first day of the month it holds

    @property
    def start(self) -> datetime:
        return datetime(self.month.year, self.month.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        year, month = divmod(self.month.month, 12)
        return datetime(self.month.year + year, month + 1, 1, tzinfo=UTC)

    @property
    def qualified(self) -> str:
        return f'"{self.schema}"."{self.name}"'


def log_partitions() -> list[LogPartition]:
    """Every monthly partition of the hot log and the archive, oldest first (DEFAULT is not listed)."""
    with _cursor() as cursor:
        cursor.execute(
            """
            SELECT n.nspname, c.relname
            FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE i.inhparent IN (
                SELECT to_regclass('public.ingestion_event')
                UNION ALL SELECT to_regclass('archive.ingestion_event')
            )
            """
        )
        rows = cursor.fetchall()
    out = []
    for schema, name in rows:
        match = _PARTITION_NAME.match(name)
        if match:
            out.append(LogPartition(schema, name, date(int(match[1]), int(match[2]), 1)))
    return sorted(out, key=lambda p: (p.month, p.schema))


def archive_table_ensure(cursor: psycopg.Cursor[Any]) -> None:
    cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {ARCHIVE_SCHEMA}")
    # Columns only (no defaults: the hot log's id sequence stays the hot log's).
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {ARCHIVE_SCHEMA}.ingestion_event (LIKE public.ingestion_event) "
        "PARTITION BY RANGE (occurred_at)"
    )


def partition_archive(*, partition: LogPartition) -> None:
    """Move one hot month into the archive (one transaction: the month is always in exactly one place)."""
    assert partition.schema == "public"
    lo, hi = partition.start.isoformat(), partition.end.isoformat()
    bound = f"CHECK (occurred_at >= '{lo}' AND occurred_at < '{hi}')"
    check = f"{partition.name}_bound"
    # DDL: as the tables' owner; then the archived month and archive.ingestion_event get the tenant policy
    # (and the application role its grants) like every table with a tenant_id (coliseum/rls.py).
    with owner_scope(), transaction.atomic(), _cursor() as cursor:
        archive_table_ensure(cursor)
        cursor.execute(f'ALTER TABLE public.ingestion_event DETACH PARTITION "{partition.name}"')
        cursor.execute(f'ALTER TABLE public."{partition.name}" SET SCHEMA {ARCHIVE_SCHEMA}')
        cursor.execute(f'ALTER TABLE {ARCHIVE_SCHEMA}."{partition.name}" ADD CONSTRAINT "{check}" {bound}')
        cursor.execute(
            f"ALTER TABLE {ARCHIVE_SCHEMA}.ingestion_event "
            f'ATTACH PARTITION {ARCHIVE_SCHEMA}."{partition.name}" '
            f"FOR VALUES FROM ('{lo}') TO ('{hi}')"
        )
        cursor.execute(f'ALTER TABLE {ARCHIVE_SCHEMA}."{partition.name}" DROP CONSTRAINT "{check}"')
        policies_apply()


def partition_drop(*, partition: LogPartition) -> int:
    """Drop one month of raw events (hot or archived). Returns how many rows it held."""
    with owner_scope(), transaction.atomic(), _cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partition.qualified}")  # noqa: S608 - name from the catalog
        row = cursor.fetchone()
        cursor.execute(f"DROP TABLE {partition.qualified}")
        _touches_drop(before=partition.end, since=partition.start)
    return int(row[0]) if row else 0


def _touches_drop(*, before: datetime, since: datetime | None = None) -> None:
    """Attribution records a touch per touching event (ingestion.funnels): those of dropped events go too."""
    from django.apps import apps

    if apps.is_installed("ingestion.funnels"):
        from ingestion.funnels.services import touches_drop

        touches_drop(before=before, since=since)


def partition_rows(*, partition: LogPartition) -> int:
    with _cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partition.qualified}")  # noqa: S608 - name from the catalog
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def partition_tenants_present(*, partition: LogPartition, tenant_ids: list[int]) -> list[int]:
    """Which of `tenant_ids` have rows in the partition (an index probe per tenant)."""
    if not tenant_ids:
        return []
    with _cursor() as cursor:
        cursor.execute(
            f"SELECT t FROM unnest(%s::bigint[]) AS t WHERE EXISTS "  # noqa: S608 - name from the catalog
            f"(SELECT 1 FROM {partition.qualified} e WHERE e.tenant_id = t)",
            [tenant_ids],
        )
        return sorted(int(t) for (t,) in cursor.fetchall())


def timescale_chunks(*, older_than: datetime) -> list[str]:
    with _cursor() as cursor:
        cursor.execute("SELECT show_chunks('ingestion_event', older_than => %s)::text", [older_than])
        return [str(r[0]) for r in cursor.fetchall()]


def timescale_chunks_compress(*, older_than: datetime) -> list[str]:
    with owner_scope(), _cursor() as cursor:
        cursor.execute(
            "SELECT compress_chunk(c, if_not_compressed => true)::text "
            "FROM show_chunks('ingestion_event', older_than => %s) c",
            [older_than],
        )
        return [str(r[0]) for r in cursor.fetchall()]


def timescale_chunks_drop(*, older_than: datetime) -> list[str]:
    with owner_scope(), _cursor() as cursor:
        cursor.execute("SELECT drop_chunks('ingestion_event', older_than => %s)::text", [older_than])
        dropped = [str(r[0]) for r in cursor.fetchall()]
        if dropped:
            # chunks wholly older than the cutoff went; the touches older than it go too (retention keeps
            # "at least" the window, never exactly)
            _touches_drop(before=older_than)
        return dropped


__all__ = [
    "LogPartition",
    "log_partitions",
    "partition_archive",
    "partition_drop",
    "partition_rows",
    "partition_tenants_present",
    "timescale_chunks",
    "timescale_chunks_compress",
    "timescale_chunks_drop",
    "timescale_enabled",
]
