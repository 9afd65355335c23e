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
    created = 0
    with connection.cursor() as cursor:
        for i in range(months_ahead + 1):
            year, month = divmod(today.month - 1 + i, 12)
            cursor.execute(
                "SELECT ingestion_event_partition_ensure(%s)", [date(today.year + year, month + 1, 1)]
            )
            row = cursor.fetchone()
            created += 1 if row and row[0] else 0
    return created


def dedupe_keys_expire(*, days: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM ingestion_event_key WHERE received_at < now() - make_interval(days => %s)", [days]
        )
        return cursor.rowcount
