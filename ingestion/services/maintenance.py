"""Partition upkeep and dedupe-key retention."""

from __future__ import annotations

from datetime import UTC, date, datetime

from django.db import connection


def timescale_enabled() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
        return cursor.fetchone() is not None


def partitions_ensure(*, months_ahead: int = 3) -> int:
    """Create the log's monthly partitions from this month to `months_ahead` (plain PostgreSQL only; a
    hypertable makes its own chunks). Returns how many were created."""
    if timescale_enabled():
        return 0
    today = datetime.now(UTC).date()
    return sum(
        partition_ensure(month=date(today.year + year, month + 1, 1))
        for year, month in (divmod(today.month - 1 + i, 12) for i in range(months_ahead + 1))
    )


def partition_ensure(*, month: date) -> bool:
    """Create the partition of `month` unless it exists (DDL: as the tables' owner), with the tenant
    isolation policy every log partition carries (coliseum/rls.py). Returns whether it was created."""
    from coliseum.rls import owner_scope, policies_apply

    with owner_scope(), connection.cursor() as cursor:
        cursor.execute("SELECT ingestion_event_partition_ensure(%s)", [month])
        row = cursor.fetchone()
    created = bool(row and row[0])
    if created:
        policies_apply()
    return created


def dedupe_keys_expire(*, days: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM ingestion_event_key WHERE received_at < now() - make_interval(days => %s)", [days]
        )
        return cursor.rowcount
