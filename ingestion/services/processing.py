"""The processor: turns queued log rows into hourly rollups, unique-listener rows and counted votes.

Exactly-once, with any number of worker processes:
- A batch is claimed by locking queue rows (one per ingest statement, its events' log ids in an array) FOR
  UPDATE SKIP LOCKED and deleting exactly those (workers never see each other's rows; see _PICK_SQL). The
  claim, the rollup upserts, the listener and vote rows and the attribution rows all commit in ONE
  transaction: a worker killed at any point rolls back and its rows are pending again; nothing is
  half-applied.
- Writes go to each table in sorted key order, so concurrent batches lock rows in the same order (no
  deadlock cycles); a deadlock that slips through anyway is retried (the transaction rolled back whole).
- Votes: a fan's vote counts once per (show, round). "First" means the EARLIEST occurred_at (ties: smallest
  event id), whatever order events arrive in. A late-arriving earlier vote displaces the counted one: a
  negative correction for the old artist and a positive one for the new, in one transaction.
- Late events inside the horizon (INGEST_LATE_HORIZON_DAYS) are applied incrementally to their own buckets.
  Older ones take the backfill path: the hour bucket is queued in ingestion_backfill and recomputed from the
  raw log (see rollup.py); processing and backfill for one tenant are serialised by a shared/exclusive
  advisory lock so a recompute never races an increment.
- After the transaction commits, leaderboards.services.board_contributions_apply gets one Contribution per
  counted (event, artist, metric); failures there are logged, never re-raised (boards are a cache)."""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.db import OperationalError, transaction

from ingestion.catalog import CATALOG
from ingestion.contracts import Contribution
from ingestion.services.stats import lag_samples_record

logger = logging.getLogger(__name__)

# Advisory lock namespace (first int4 key) for "processing vs backfill of one tenant".
TENANT_LOCK_NAMESPACE = 730_301
NO_ARTIST = 0  # rollup rows for money / attendance not tied to an artist (tenant totals only)
NO_SHOW = 0

RollupKey = tuple[int, str, datetime, int, str, int, str]  # tenant, metric, bucket, artist, city, show, cur


@dataclass(slots=True)
class LoggedEvent:
    pk: int
    tenant_id: int
    event_id: str
    type: str
    occurred_at: datetime
    user_id: str
    artist_id: int | None
    show_id: int | None
    city: str
    amount_minor: int | None
    currency: str
    duration_seconds: int | None
    weight: int | None
    round: int | None
    received_at: datetime | None
    source: str | None  # campaign source from the context (attribution's touches); read by the claim only


_SELECT_COLUMNS = """e.id, e.tenant_id, e.event_id, e.type, e.occurred_at, e.user_id, e.artist_id, e.show_id,
    e.city, e.amount_minor, e.currency, (e.properties->>'duration_seconds')::bigint,
    (e.properties->>'weight')::int, (e.properties->>'round')::int"""

# A batch is claimed in steps. First the queue rows (one per ingest statement) are locked FOR UPDATE SKIP
# LOCKED in id order, a few at a time (_rows_pick), until their events reach the batch size: at least one row,
# and a row is taken whole, so a batch can pass the size by less than one request's events (a request or
# import chunk is bounded by INGEST_*_MAX_EVENTS / --chunk; splitting a row would rewrite its arrays, the very
# per-event write this layout saves). Then the tenants' advisory locks are taken, and only then are exactly
# the picked rows deleted, their arrays unnested and joined to the log by (id, occurred_at): a fan erased
# meanwhile (erasure.py holds the tenant's lock exclusively and leaves the queue alone) has no log rows left
# for the join to find, so an erased event is never counted, and the erasure never waits on a row this batch
# locked (no lock cycle).
# Why not `DELETE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`: once the queue table has been
# analyzed while (nearly) empty, which autovacuum does often on a queue, the planner turns that IN into a
# nested-loop semi join that re-runs the locking LIMIT subquery once per queue row: quadratic time, and the
# LIMIT no longer bounds the batch (measured: a 4,000-row queue took 6.9 s to claim, all of it in one "batch"
# of 2,000). A join against a CTE of the picked ids fares no better (estimated at one row each side, it scans
# the whole queue for every picked id). So the ids travel as an array constant, and the delete scans the
# primary key over the picked ids' range (other workers' rows in it stay: the array is the filter). `id + 0`
# keeps the array out of the index condition: as one, the planner costs one index descent per id and may
# prefer a full scan of the queue (O(backlog) per batch). Unprepared (`prepare=False`), so it is planned with
# the real values every time; the join to the log stays a nested loop of primary-key probes whatever the
# queue's statistics say (checked with EXPLAIN on a queue analyzed empty: the unnest is estimated at 10
# events a row, the log at millions of rows).
_PICK_SQL = (
    "SELECT id, tenant_id, event_count FROM ingestion_pending WHERE id > %s ORDER BY id LIMIT %s "
    "FOR UPDATE SKIP LOCKED"
)
_CLAIM_SQL = """
WITH claimed AS (
    DELETE FROM ingestion_pending WHERE id >= %s AND id <= %s AND id + 0 = ANY(%s::bigint[])
    RETURNING event_pks, occurred_ats, received_at
)
SELECT {columns}, c.received_at, {source}
FROM claimed c
CROSS JOIN LATERAL unnest(c.event_pks, c.occurred_ats) AS q(event_pk, occurred_at)
JOIN ingestion_event e ON e.id = q.event_pk AND e.occurred_at = q.occurred_at
"""


@functools.cache
def _claim_sql() -> str:
    """The claim also reads what attribution needs (the campaign source), so attribution reads no log row."""
    from ingestion.funnels.services import SOURCE_SQL

    return _CLAIM_SQL.format(columns=_SELECT_COLUMNS, source=SOURCE_SQL)


def hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _cursor() -> psycopg.Cursor[Any]:
    from coliseum.rls import raw_connection

    return psycopg.Cursor(raw_connection())  # with the row-level security scope in place


def lineups_load(show_ids: Iterable[int]) -> dict[int, list[int]]:
    ids = sorted(set(show_ids))
    if not ids:
        return {}
    with _cursor() as cursor:
        cursor.execute(
            "SELECT show_id, artist_id FROM coliseum_show_lineup WHERE show_id = ANY(%s) ORDER BY artist_id",
            [ids],
        )
        out: dict[int, list[int]] = defaultdict(list)
        for show_id, artist_id in cursor.fetchall():
            out[show_id].append(artist_id)
    return out


def event_metric_values(event: LoggedEvent, lineups: dict[int, list[int]]) -> list[tuple[str, int, int, str]]:
    """(metric, artist, value, currency) for every non-vote, non-listener metric an event feeds."""
    spec = CATALOG.get(event.type)
    if spec is None:
        return []
    out: list[tuple[str, int, int, str]] = []
    artist = event.artist_id or NO_ARTIST
    for metric in spec.metrics:
        if metric == "plays":
            out.append(("plays", artist, 1, ""))
        elif metric == "listen_seconds":
            out.append(("listen_seconds", artist, int(event.duration_seconds or 0), ""))
        elif metric == "attendance":
            if event.artist_id:
                out.append(("attendance", event.artist_id, 1, ""))
            else:
                credited = lineups.get(event.show_id or 0) or [NO_ARTIST]
                out.extend(("attendance", a, 1, "") for a in credited)
        elif metric in ("money_spent", "money_earned"):
            out.append((metric, artist, int(event.amount_minor or 0), event.currency))
        elif metric in ("follows", "shares"):
            out.append((metric, artist, 1, ""))
    return out


def _rollups_upsert(cursor: psycopg.Cursor[Any], deltas: dict[RollupKey, int]) -> None:
    items = sorted((k, v) for k, v in deltas.items() if v != 0)
    if not items:
        return
    cols: list[list[Any]] = [[] for _ in range(8)]
    for key, value in items:
        for i, part in enumerate(key):
            cols[i].append(part)
        cols[7].append(value)
    cursor.execute(
        """
        INSERT INTO ingestion_rollup_hourly AS r
            (tenant_id, metric, bucket, artist_id, city, show_id, currency, value)
        SELECT * FROM unnest(%b::bigint[], %b::text[], %b::timestamptz[], %b::bigint[], %b::text[],
                             %b::bigint[], %b::text[], %b::bigint[])
        ON CONFLICT (tenant_id, metric, bucket, artist_id, city, show_id, currency)
        DO UPDATE SET value = r.value + EXCLUDED.value
        """,
        cols,
    )


def listeners_insert(
    cursor: psycopg.Cursor[Any], keys: set[tuple[int, datetime, int, str, int, str]]
) -> None:
    items = sorted(keys)
    if not items:
        return
    cols: list[list[Any]] = [[k[i] for k in items] for i in range(6)]
    cursor.execute(
        """
        INSERT INTO ingestion_listener_hourly (tenant_id, bucket, artist_id, city, show_id, user_id)
        SELECT * FROM unnest(%b::bigint[], %b::timestamptz[], %b::bigint[], %b::text[], %b::bigint[],
                             %b::text[])
        ON CONFLICT DO NOTHING
        """,
        cols,
    )


VoteKey = tuple[int, int, int, str]  # tenant, show, round, user


def _votes_apply(
    cursor: psycopg.Cursor[Any], candidates: dict[VoteKey, LoggedEvent]
) -> list[tuple[LoggedEvent | tuple[Any, ...], int]]:
    """Apply the first-vote rule. Returns (vote, sign) pairs to add to rollups: +1 for a vote that now
    counts, -1 for a previously counted vote it displaced (as a row tuple from ingestion_vote_counted)."""
    keys = sorted(candidates)
    if not keys:
        return []
    changes: list[tuple[LoggedEvent | tuple[Any, ...], int]] = []
    cols: list[list[Any]] = [[] for _ in range(9)]
    for key in keys:
        v = candidates[key]
        for i, part in enumerate(
            (*key, v.event_id, v.occurred_at, v.artist_id or NO_ARTIST, int(v.weight or 1), v.city)
        ):
            cols[i].append(part)
    cursor.execute(
        """
        INSERT INTO ingestion_vote_counted
            (tenant_id, show_id, round, user_id, event_id, occurred_at, artist_id, weight, city)
        SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::int[], %b::text[], %b::text[],
                             %b::timestamptz[], %b::bigint[], %b::int[], %b::text[])
        ON CONFLICT DO NOTHING
        RETURNING tenant_id, show_id, round, user_id
        """,
        cols,
    )
    inserted = {(t, s, r, u) for t, s, r, u in cursor.fetchall()}
    changes.extend((candidates[k], 1) for k in keys if k in inserted)
    contested = [k for k in keys if k not in inserted]
    if not contested:
        return changes
    cursor.execute(
        """
        SELECT v.tenant_id, v.show_id, v.round, v.user_id, v.event_id, v.occurred_at, v.artist_id, v.weight,
               v.city
        FROM ingestion_vote_counted v
        JOIN unnest(%b::bigint[], %b::bigint[], %b::int[], %b::text[])
            AS k(tenant_id, show_id, round, user_id) USING (tenant_id, show_id, round, user_id)
        ORDER BY v.tenant_id, v.show_id, v.round, v.user_id
        FOR UPDATE OF v
        """,
        [[k[i] for k in contested] for i in range(4)],
    )
    for existing in cursor.fetchall():
        key = (existing[0], existing[1], existing[2], existing[3])
        challenger = candidates[key]
        if (challenger.occurred_at, challenger.event_id) < (existing[5], existing[4]):
            cursor.execute(
                """
                UPDATE ingestion_vote_counted
                SET event_id = %s, occurred_at = %s, artist_id = %s, weight = %s, city = %s
                WHERE tenant_id = %s AND show_id = %s AND round = %s AND user_id = %s
                """,
                [
                    challenger.event_id,
                    challenger.occurred_at,
                    challenger.artist_id or NO_ARTIST,
                    int(challenger.weight or 1),
                    challenger.city,
                    *key,
                ],
            )
            changes.append((existing, -1))
            changes.append((challenger, 1))
    return changes


def _row_to_event(row: tuple[Any, ...]) -> LoggedEvent:
    padded: tuple[Any, ...] = tuple(row) + (None,) * (16 - len(row))
    return LoggedEvent(*padded)


def _rows_pick(cursor: psycopg.Cursor[Any], limit: int) -> tuple[list[int], set[int], int]:
    """Lock queue rows in id order until their events reach `limit` (see _PICK_SQL): their ids (ascending),
    tenants and event count (below `limit` only when no unlocked row was left). The first step locks one
    row; each next one as many rows as the events still wanted take at the average row size seen so far, so
    a batch of 100-event requests costs two or three round trips and few rows are locked beyond the ones
    claimed (those stay queued, skipped by other workers until this transaction ends)."""
    ids: list[int] = []
    tenants: set[int] = set()
    events = 0
    after = 0
    want = 1
    while events < limit:
        cursor.execute(_PICK_SQL, [after, want], binary=True)
        rows = cursor.fetchall()
        for row_id, tenant_id, count in rows:
            if events >= limit:
                break
            ids.append(row_id)
            tenants.add(tenant_id)
            events += count
        if len(rows) < want:
            break  # no more unlocked rows
        after = rows[-1][0]
        want = max(1, math.ceil((limit - events) * len(ids) / events))
    return ids, tenants, events


def _batch_process(limit: int) -> tuple[int, int, dict[int, list[Contribution]], list[int]]:
    """(events claimed, events processed, board contributions, lag samples) of one batch. Fewer events are
    processed than claimed when a claimed row names an erased fan's events."""
    contributions: dict[int, list[Contribution]] = defaultdict(list)
    lag_ms: list[int] = []
    with transaction.atomic(), _cursor() as cursor:
        picked, tenants, claimed = _rows_pick(cursor, limit)
        if not picked:
            return 0, 0, {}, []
        # The tenants' locks before the claim reads the log: see _PICK_SQL (erasure).
        for tenant_id in sorted(tenants):
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", [TENANT_LOCK_NAMESPACE, tenant_id])
        cursor.execute(_claim_sql(), [picked[0], picked[-1], picked], binary=True, prepare=False)
        events = [_row_to_event(r) for r in cursor.fetchall()]
        cutoff = datetime.now(UTC) - timedelta(days=settings.INGEST_LATE_HORIZON_DAYS)
        lineups = lineups_load(
            e.show_id
            for e in events
            if e.type == "concierto.event_attended" and not e.artist_id and e.show_id
        )
        deltas: dict[RollupKey, int] = defaultdict(int)
        listeners: set[tuple[int, datetime, int, str, int, str]] = set()
        votes: dict[VoteKey, LoggedEvent] = {}
        backfill: set[tuple[int, datetime]] = set()
        for e in events:
            if e.type == "coliseum.vote_cast":
                if e.show_id and e.round:
                    key = (e.tenant_id, e.show_id, e.round, e.user_id)
                    best = votes.get(key)
                    if best is None or (e.occurred_at, e.event_id) < (best.occurred_at, best.event_id):
                        votes[key] = e
                continue
            bucket = hour_floor(e.occurred_at)
            if e.occurred_at < cutoff:
                backfill.add((e.tenant_id, bucket))
                continue
            show = e.show_id or NO_SHOW
            for metric, artist, value, currency in event_metric_values(e, lineups):
                deltas[(e.tenant_id, metric, bucket, artist, e.city, show, currency)] += value
                if artist != NO_ARTIST:
                    contributions[e.tenant_id].append(
                        Contribution(
                            metric, e.occurred_at, artist, e.city, e.show_id, currency, value, e.user_id
                        )
                    )
            if e.type == "player.track_played" and e.artist_id:
                listeners.add((e.tenant_id, bucket, e.artist_id, e.city, show, e.user_id))
        listeners_insert(cursor, listeners)
        for vote, sign in _votes_apply(cursor, votes):
            if isinstance(vote, LoggedEvent):
                tenant_id, show_id, occurred, artist, weight, city, user = (
                    vote.tenant_id,
                    vote.show_id or NO_SHOW,
                    vote.occurred_at,
                    vote.artist_id or NO_ARTIST,
                    int(vote.weight or 1),
                    vote.city,
                    vote.user_id,
                )
            else:
                tenant_id, show_id, _r, user, _eid, occurred, artist, weight, city = vote
            value = sign * weight
            deltas[(tenant_id, "votes", hour_floor(occurred), artist, city, show_id, "")] += value
            if artist != NO_ARTIST:
                contributions[tenant_id].append(
                    Contribution("votes", occurred, artist, city, show_id or None, "", value, user)
                )
        _rollups_upsert(cursor, deltas)
        if backfill:
            items = sorted(backfill)
            cursor.execute(
                "INSERT INTO ingestion_backfill (tenant_id, bucket) SELECT * FROM unnest(%b::bigint[], "
                "%b::timestamptz[]) ON CONFLICT DO NOTHING",
                [[t for t, _ in items], [b for _, b in items]],
            )
        _attribution_apply(events)
        now = datetime.now(UTC)
        step = max(1, len(events) // 50)
        lag_ms = [
            int((now - e.received_at).total_seconds() * 1000)
            for e in events[::step]
            if e.received_at is not None
        ]
    return claimed, len(events), contributions, lag_ms


def _attribution_apply(events: list[LoggedEvent]) -> None:
    """Conversion attribution (ingestion.funnels) inside the batch transaction, last of its writes: exact
    under late events, and its per-fan locks are never held while waiting for a rollup row. Only events with
    an artist can be a conversion or a touch; the claim already read all attribution needs of them."""
    from ingestion.funnels.services import AttributionRow, attribution_apply_rows

    by_tenant: dict[int, list[AttributionRow]] = defaultdict(list)
    for e in events:
        if e.artist_id is not None:
            by_tenant[e.tenant_id].append(
                (e.pk, e.event_id, e.type, e.occurred_at, e.user_id, e.artist_id, e.amount_minor, e.currency,
                 e.source)
            )  # fmt: skip
    for tenant_id in sorted(by_tenant):
        attribution_apply_rows(tenant_id=tenant_id, rows=by_tenant[tenant_id])


def contributions_publish(contributions: dict[int, list[Contribution]]) -> None:
    if not contributions:
        return
    from leaderboards.services import board_contributions_apply

    for tenant_id, items in contributions.items():
        try:
            board_contributions_apply(tenant_id=tenant_id, contributions=items)
        except Exception:
            logger.exception("board contributions not applied; the reconcile job repairs boards")


# A processing task claims on while its batches hold at least this many events (processing_run_pending).
DRAIN_ON_EVENTS = 100


def processing_batch_run(*, limit: int | None = None) -> int:
    """Claim and process one batch of about `limit` events (whole queue rows: see _PICK_SQL); returns how
    many log rows it consumed (an erased fan's queued events are not among them). Deadlocks/serialisation
    failures roll the batch back whole and are retried a few times."""
    return _batch_run(limit or settings.INGEST_PROCESS_BATCH_SIZE)[0]


def _batch_run(size: int) -> tuple[int, int]:
    """processing_batch_run's work: (log rows consumed, events claimed). Fewer claimed than `size`: the queue
    held no unclaimed row when the batch was claimed."""
    attempt = 0
    while True:
        try:
            claimed, count, contributions, lag_ms = _batch_process(size)
        except (OperationalError, psycopg.errors.DeadlockDetected) as exc:
            attempt += 1
            if "deadlock" not in str(exc).lower() or attempt == 5:
                raise
            time.sleep(0.05 * attempt)
            continue
        contributions_publish(contributions)
        lag_samples_record(lag_ms)
        if count or not claimed:
            return count, claimed
        # Every event of the claimed rows was erased meanwhile: nothing to count, but more may be queued and
        # callers read 0 as "the queue is empty", so claim the next batch.


def processing_run_pending(
    *,
    limit: int | None = None,
    max_seconds: float | None = None,
    on_backlog: Callable[[], None] | None = None,
    drain: bool = True,
) -> int:
    """Process everything pending (or batches until `limit` events are reached; whole queue rows, so the last
    may pass it), synchronously, then any queued backfill buckets. Returns the number of events processed.
    `on_backlog` is called once, after the first full batch (more is waiting: a Celery task asks for a
    helper there).

    With `drain=False` it stops after a batch that neither filled up nor reached DRAIN_ON_EVENTS: the queue
    held no unclaimed row when that batch was claimed, so everything committed before the call has been
    processed (or is being processed by another worker). The processing task runs so: what commits after it
    started has a coalescing window, hence a task, of its own (ingestion/tasks.py). Draining on regardless
    would keep one task claiming the trickle of a steady stream an event or two at a time, each batch paying
    its fixed cost; under a heavy stream the batches stay large and the task drains on, without waiting for
    the next window."""
    from ingestion.services.rollup import backfill_run_pending

    total = 0
    started = time.monotonic()
    while limit is None or total < limit:
        size = (
            settings.INGEST_PROCESS_BATCH_SIZE
            if limit is None
            else min(settings.INGEST_PROCESS_BATCH_SIZE, limit - total)
        )
        n, claimed = _batch_run(size)
        total += n
        if claimed >= size and on_backlog is not None:
            on_backlog()
            on_backlog = None
        if n == 0 or (not drain and claimed < min(size, DRAIN_ON_EVENTS)):
            break
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            break
    backfill_run_pending()
    return total
