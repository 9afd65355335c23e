"""Recomputing hour buckets from the raw log: the backfill path for events older than the late horizon, and
`rollup_rebuild` for repairs.

A recompute holds the tenant's advisory lock EXCLUSIVELY (processing holds it shared), so no increment for
that tenant is in flight while it reads. It counts only log rows that are no longer queued in
ingestion_pending (queued rows will be added by processing afterwards), replaces the bucket's non-vote rollup
rows and listener rows, and emits the difference as board contributions. Votes are never recomputed here: the
first-vote rule is applied incrementally by processing for events of any age."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction

from ingestion.contracts import Contribution
from ingestion.services.processing import (
    _SELECT_COLUMNS,
    NO_ARTIST,
    NO_SHOW,
    TENANT_LOCK_NAMESPACE,
    LoggedEvent,
    _cursor,
    _row_to_event,
    contributions_publish,
    event_metric_values,
    lineups_load,
    listeners_insert,
)

logger = logging.getLogger(__name__)


# Where retention moves months past the hot window (coliseum.privacy); absent until the first move.
ARCHIVE_TABLE = "archive.ingestion_event"


def archive_exists(cursor: Any) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [ARCHIVE_TABLE])
    row = cursor.fetchone()
    return bool(row and row[0])


def _queued_event_pks(cursor: Any, tenant_id: int, start: datetime, end: datetime) -> set[int]:
    """Log ids of the tenant's events in [start, end) still waiting in ingestion_pending. One pass over the
    tenant's queue rows per bucket, then a set lookup per log row: excluding them in SQL would leave the
    anti-join's shape to the queue's statistics, and a nested loop there rescans the queue per log row."""
    cursor.execute(
        """
        SELECT q.event_pk
        FROM ingestion_pending p
        CROSS JOIN LATERAL unnest(p.event_pks, p.occurred_ats) AS q(event_pk, occurred_at)
        WHERE p.tenant_id = %s AND q.occurred_at >= %s AND q.occurred_at < %s
        """,
        [tenant_id, start, end],
    )
    return {pk for (pk,) in cursor.fetchall()}


def bucket_recompute(cursor: Any, tenant_id: int, bucket: datetime, *, archive: bool) -> list[Contribution]:
    """Replace an hour's non-vote rollups and listener rows with a recount of its raw events (the hot log, and
    the archive when `archive`), returning the differences as board contributions. Used by the backfill
    path and by erasure."""
    end = bucket + timedelta(hours=1)
    queued = _queued_event_pks(cursor, tenant_id, bucket, end)
    events: list[LoggedEvent] = []
    for table in ["ingestion_event"] + ([ARCHIVE_TABLE] if archive else []):
        cursor.execute(
            f"""
            SELECT {_SELECT_COLUMNS}
            FROM {table} e
            WHERE e.tenant_id = %s AND e.occurred_at >= %s AND e.occurred_at < %s
            """,  # noqa: S608 - constant table names and column list
            [tenant_id, bucket, end],
        )
        events.extend(e for e in map(_row_to_event, cursor.fetchall()) if e.pk not in queued)
    lineups = lineups_load(
        e.show_id for e in events if e.type == "concierto.event_attended" and not e.artist_id and e.show_id
    )
    fresh: dict[tuple[str, int, str, int, str], int] = defaultdict(int)
    listeners: set[tuple[int, datetime, int, str, int, str]] = set()
    for e in events:
        show = e.show_id or NO_SHOW
        for metric, artist, value, currency in event_metric_values(e, lineups):
            fresh[(metric, artist, e.city, show, currency)] += value
        if e.type == "player.track_played" and e.artist_id:
            listeners.add((tenant_id, bucket, e.artist_id, e.city, show, e.user_id))
    cursor.execute(
        """
        DELETE FROM ingestion_rollup_hourly
        WHERE tenant_id = %s AND bucket = %s AND metric <> 'votes'
        RETURNING metric, artist_id, city, show_id, currency, value
        """,
        [tenant_id, bucket],
    )
    old = {(m, a, c, s, cur): v for m, a, c, s, cur, v in cursor.fetchall()}
    items = sorted(fresh.items())
    if items:
        cursor.execute(
            """
            INSERT INTO ingestion_rollup_hourly
                (tenant_id, metric, bucket, artist_id, city, show_id, currency, value)
            SELECT %s, m, %s, a, c, s, cur, v
            FROM unnest(%b::text[], %b::bigint[], %b::text[], %b::bigint[], %b::text[], %b::bigint[])
                AS x(m, a, c, s, cur, v)
            """,
            [tenant_id, bucket, *[[k[i] for k, _ in items] for i in range(5)], [v for _, v in items]],
        )
    cursor.execute(
        "DELETE FROM ingestion_listener_hourly WHERE tenant_id = %s AND bucket = %s", [tenant_id, bucket]
    )
    listeners_insert(cursor, listeners)
    contributions = []
    for key in sorted(set(old) | set(fresh)):
        diff = fresh.get(key, 0) - old.get(key, 0)
        metric, artist, city, show, currency = key
        if diff and artist != NO_ARTIST:
            contributions.append(Contribution(metric, bucket, artist, city, show or None, currency, diff, ""))
    return contributions


def backfill_run_pending(*, max_buckets: int = 500) -> int:
    """Recompute queued backfill buckets. Returns how many buckets were recomputed."""
    done = 0
    while done < max_buckets:
        with _cursor() as cursor:
            cursor.execute("SELECT tenant_id FROM ingestion_backfill LIMIT 1")
            row = cursor.fetchone()
        if row is None:
            break
        tenant_id = int(row[0])
        with transaction.atomic(), _cursor() as cursor:
            # Exclusive lock first, then claim: processing never waits on a backfill row while holding the
            # shared lock this waits for.
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [TENANT_LOCK_NAMESPACE, tenant_id])
            cursor.execute(
                """
                DELETE FROM ingestion_backfill WHERE (tenant_id, bucket) IN (
                    SELECT tenant_id, bucket FROM ingestion_backfill WHERE tenant_id = %s
                    ORDER BY bucket LIMIT 50 FOR UPDATE SKIP LOCKED)
                RETURNING bucket
                """,
                [tenant_id],
            )
            buckets = sorted(b for (b,) in cursor.fetchall())
            contributions: list[Contribution] = []
            # A late event may land in an hour whose other events retention already archived: count them too.
            archive = bool(buckets) and archive_exists(cursor)
            for bucket in buckets:
                contributions.extend(bucket_recompute(cursor, tenant_id, bucket, archive=archive))
        done += len(buckets)
        contributions_publish({tenant_id: contributions} if contributions else {})
        if not buckets:
            break
    return done


def rollup_rebuild(*, tenant_id: int, start: datetime, end: datetime) -> int:
    """Recompute every hour bucket of [start, end) for a tenant from the raw log (repairs, backfills).
    Returns the number of buckets recomputed."""
    bucket = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    count = 0
    while bucket < end:
        with transaction.atomic(), _cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [TENANT_LOCK_NAMESPACE, tenant_id])
            contributions = bucket_recompute(cursor, tenant_id, bucket, archive=archive_exists(cursor))
        contributions_publish({tenant_id: contributions} if contributions else {})
        bucket += timedelta(hours=1)
        count += 1
    return count
