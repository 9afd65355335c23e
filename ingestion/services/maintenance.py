"""Partition upkeep and dedupe-key retention."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from django.db import DatabaseError, connection, transaction

logger = logging.getLogger(__name__)


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


# The prune's index: a BRIN over received_at with this many heap pages a range (migration 0004).
KEY_RECEIVED_INDEX = "ingestion_event_key_received"
KEY_RECEIVED_PAGES_PER_RANGE = 128


def dedupe_keys_expire(*, days: int) -> int:
    """Drop the dedupe keys received more than `days` ago; returns how many.

    The delete finds them through the BRIN on received_at (a bitmap scan of the block ranges whose summary
    reaches below the cutoff). A range's summary only ever widens: once VACUUM lets new keys reuse the pages
    a prune emptied, the range would keep claiming its old minimum and every later prune would read it again
    (after one dedupe window, the whole table, daily). So the ranges this prune deleted from are desummarized;
    the VACUUM its deletes trigger summarizes them again from the keys they hold by then."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH gone AS (
                DELETE FROM ingestion_event_key WHERE received_at < now() - make_interval(days => %s)
                RETURNING ctid
            )
            SELECT (ctid::text::point)[0]::bigint / %s, count(*) FROM gone GROUP BY 1
            """,
            [days, KEY_RECEIVED_PAGES_PER_RANGE],
        )
        ranges = cursor.fetchall()
    if ranges:
        _key_ranges_desummarize([int(r) * KEY_RECEIVED_PAGES_PER_RANGE for r, _ in ranges])
    return sum(int(n) for _, n in ranges)


def _key_ranges_desummarize(first_blocks: list[int]) -> None:
    from coliseum.rls import owner_scope

    try:
        # brin_desummarize_range is the index owner's. Without it (a DATABASE_URL that is only a member of the
        # application role) the keys are still pruned; later prunes just read more of the table.
        with owner_scope(), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM unnest(%s::bigint[]) AS b(block), "
                "brin_desummarize_range(%s::regclass, b.block)",
                [first_blocks, KEY_RECEIVED_INDEX],
            )
    except DatabaseError:
        logger.warning("dedupe-key index ranges not desummarized; later prunes read more of the table")
