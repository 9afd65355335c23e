"""Board writes: the processor's increments, rebuilds from the rollups, and reconciliation.

Redis is a cache of the PostgreSQL rollups (the source of truth). Increments go into hourly and daily bucket
keys plus an all-time key, per family (see leaderboards.boards); a granularity of a family is "built" once
it has been filled from the rollups, and a read of an unbuilt one (never read, flushed, evicted) rebuilds it
first. A rebuild fills temporary keys and RENAMEs them over the live ones, so readers never see half a board.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django_redis import get_redis_connection
from redis.commands.core import Script

from coliseum.ops.requests import counter_queue
from ingestion.catalog import MONEY_METRICS
from ingestion.contracts import Contribution

from .boards import (
    ALL_TIME,
    BUCKETED_METRICS,
    DAILY,
    GLOBAL_PREFIX,
    GRANULARITY_SIZE,
    HOURLY,
    WINDOW_NAMES,
    BadToken,
    BoardFamily,
    bucket_expires_at,
    families_touched,
    floor_to,
    live_buckets,
)

if TYPE_CHECKING:
    from audit.services import Actor
    from coliseum.models import Tenant

logger = logging.getLogger(__name__)

DIRTY_KEY = f"{GLOBAL_PREFIX}:dirty"  # families with new contributions, drained by the live-feed publisher
FAMILIES_KEY = f"{GLOBAL_PREFIX}:families"  # zset: family token -> last read (the reconcile job's worklist)


def redis() -> Any:
    return get_redis_connection("default")


# Many ZINCRBYs on one key as one command: a 2,000-event batch adds to ~2,500 (key, artist) pairs, and packing
# them as single commands in Python was most of a batch's time. EVALSHA (loaded on NOSCRIPT by the pipeline);
# one key per call, so a cluster could spread the keys.
_ZINCRBY_MANY = Script(
    None,  # type: ignore[arg-type]
    b"for i = 1, #ARGV, 2 do redis.call('ZINCRBY', KEYS[1], ARGV[i + 1], ARGV[i]) end return 0",
)


def board_contributions_apply(*, tenant_id: int, contributions: Sequence[Contribution]) -> None:
    """Add a committed processing batch to the Redis boards: one pipelined round trip.

    Values are summed per (key, artist) first, so a batch of 1,000 plays on 20 artists is a few dozen
    ZINCRBYs. Contributions older than a bucket's retention only reach the all-time key."""
    now = datetime.now(UTC)
    # A batch's contributions fall into few (metric, currency, city, show, hour) groups: the board keys are
    # derived once per group, not once per contribution (key formatting was most of a batch's cost).
    groups: dict[tuple[str, str, str, int | None, datetime], dict[int, int]] = defaultdict(
        lambda: defaultdict(int)
    )
    for c in contributions:
        if c.value:
            hour = c.occurred_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            groups[(c.metric, c.currency, c.city, c.show_id, hour)][c.artist_id] += c.value
    increments: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    expiries: dict[str, int] = {}
    dirty: set[str] = set()
    stale: list[str] = []
    for (metric, currency, city, show_id, hour), by_artist in groups.items():
        if metric == "plays":
            # unique listeners are derived from plays: the board changed even though it is not bucketed,
            # and its briefly cached exact figures are dropped.
            for family in families_touched(
                tenant_id=tenant_id, metric="unique_listeners", currency="", city=city, show_id=show_id
            ):
                if family.as_token() not in dirty:
                    dirty.add(family.as_token())
                    stale.extend(family.window_key(w) for w in WINDOW_NAMES)
                    stale.extend(f"{family.window_key(w)}:empty" for w in WINDOW_NAMES)
        if metric not in BUCKETED_METRICS:
            continue
        buckets: list[tuple[str, datetime, int]] = []
        for granularity in (HOURLY, DAILY):
            start = floor_to(hour, granularity)
            expires = bucket_expires_at(granularity, start)
            if expires > now:  # else too late for any window of this granularity
                buckets.append((granularity, start, int(expires.timestamp())))
        for family in families_touched(
            tenant_id=tenant_id, metric=metric, currency=currency, city=city, show_id=show_id
        ):
            dirty.add(family.as_token())
            keys = [family.bucket_key(ALL_TIME)]
            for granularity, start, expires_at in buckets:
                key = family.bucket_key(granularity, start)
                keys.append(key)
                expiries[key] = expires_at
            for key in keys:
                totals = increments[key]
                for artist_id, value in by_artist.items():
                    totals[artist_id] += value
    if not increments and not dirty:
        return
    pipe = redis().pipeline(transaction=False)
    updates = 0
    for key, by_artist in increments.items():
        pairs = [x for artist_id, value in by_artist.items() if value for x in (artist_id, value)]
        if pairs:
            _ZINCRBY_MANY(keys=[key], args=pairs, client=pipe)
            updates += len(pairs) // 2
        if key in expiries:
            pipe.expireat(key, expiries[key])
    if stale:
        pipe.delete(*stale)
    if dirty:
        pipe.sadd(DIRTY_KEY, *dirty)
    if updates:
        counter_queue(pipe, name="board_updates", amount=updates)  # /metrics: coliseum_board_updates_total
    pipe.execute()


def _rollup_totals(family: BoardFamily, start: datetime | None, end: datetime | None) -> dict[int, int]:
    from ingestion.selectors import rollup_totals  # the source of truth (ingestion owns the rollups)

    return rollup_totals(
        tenant_id=family.tenant_id,
        metric=family.metric,
        start=start,
        end=end,
        city=family.city or None,
        show_id=family.show_id,
        currency=family.currency or None,
    )


def board_family_rebuild(
    *, family: BoardFamily, granularities: Iterable[str] = (HOURLY, DAILY, ALL_TIME)
) -> int:
    """Fill a family's buckets from the rollups and swap them in atomically. Returns the keys written.

    A batch that commits while the rollups are read may be counted twice or not at all until the next
    reconcile (boards are a cache; the reconcile job repairs it)."""
    now = datetime.now(UTC)
    conn = redis()
    nonce = f"{int(time.time() * 1000)}"
    fill = conn.pipeline(transaction=False)
    written = 0
    temp_keys: list[tuple[str, str, int | None]] = []
    for granularity in granularities:
        if granularity == ALL_TIME:
            plan: list[tuple[str, datetime | None, datetime | None, int | None]] = [
                (family.bucket_key(ALL_TIME), None, None, None)
            ]
        else:
            size = GRANULARITY_SIZE[granularity]
            plan = [
                (
                    family.bucket_key(granularity, start),
                    start,
                    start + size,
                    int(bucket_expires_at(granularity, start).timestamp()),
                )
                for start in live_buckets(granularity, now)
            ]
        for key, start, end, expires in plan:
            totals = {a: v for a, v in _rollup_totals(family, start, end).items() if v}
            temp = f"{key}:rebuild:{nonce}"
            if totals:
                fill.zadd(temp, {str(a): v for a, v in totals.items()})
                fill.expire(temp, 600)
                temp_keys.append((temp, key, expires))
            else:
                temp_keys.append(("", key, expires))
            written += 1
    fill.execute()
    pipe = conn.pipeline(transaction=True)
    for temp, key, expires in temp_keys:
        if temp:
            pipe.rename(temp, key)
            if expires is not None:
                pipe.expireat(key, expires)
        else:
            pipe.delete(key)
    for granularity in granularities:
        pipe.set(family.built_key(granularity), nonce)
    pipe.execute()
    return written


def board_family_ensure_built(*, family: BoardFamily, granularity: str) -> None:
    """Rebuild a granularity of a family from the rollups when its built marker is missing."""
    conn = redis()
    pipe = conn.pipeline(transaction=False)
    pipe.exists(family.built_key(granularity))
    pipe.zadd(FAMILIES_KEY, {family.as_token(): time.time()})
    built, _ = pipe.execute()
    if not built:
        board_family_rebuild(family=family, granularities=(granularity,))


def families_registered(*, tenant_id: int | None = None) -> list[BoardFamily]:
    """The families read recently (the reconcile worklist), most recently read first, of one tenant or all.
    An entry that cannot be read back (an older token format, a corrupted value) is dropped and logged: one
    bad entry must not stop reconcile or a rebuild for every tenant."""
    conn = redis()
    families: list[BoardFamily] = []
    for raw in conn.zrevrange(FAMILIES_KEY, 0, -1):
        token = raw.decode() if isinstance(raw, bytes) else raw
        try:
            family = BoardFamily.from_token(token)
        except BadToken:
            logger.warning("board family dropped: unreadable token %r", token[:200])
            conn.zrem(FAMILIES_KEY, raw)
            continue
        if tenant_id is None or family.tenant_id == tenant_id:
            families.append(family)
    return families


def boards_reconcile(*, max_age_seconds: int | None = None) -> int:
    """Rebuild every family read recently from the rollups: repairs drift from lost or doubled increments
    (a Redis failure during apply, a rebuild racing a batch). Forgets families nobody read for a day.

    Bounded per tenant: at most LEADERBOARD_RECONCILE_MAX_FAMILIES families of one tenant (the most recently
    read) are rebuilt per run, however many filter values its readers tried; the rest rebuild on their next
    read. A family whose rebuild fails is logged and skipped: the others are still reconciled."""
    conn = redis()
    horizon = getattr(settings, "LEADERBOARD_RECONCILE_HORIZON_SECONDS", 86400)
    cap = int(getattr(settings, "LEADERBOARD_RECONCILE_MAX_FAMILIES", 100))
    now = time.time()
    conn.zremrangebyscore(FAMILIES_KEY, "-inf", now - (max_age_seconds or horizon))
    rebuilt = 0
    per_tenant: defaultdict[int, int] = defaultdict(int)
    for family in families_registered():
        if family.metric not in BUCKETED_METRICS:
            continue
        per_tenant[family.tenant_id] += 1
        if per_tenant[family.tenant_id] > cap:
            continue
        built = [g for g in (HOURLY, DAILY, ALL_TIME) if conn.exists(family.built_key(g))]
        if not built:
            continue
        try:
            board_family_rebuild(family=family, granularities=built)
        except Exception:
            logger.exception("board family not reconciled: %s", family.as_token()[:200])
            continue
        rebuilt += 1
    for tenant_id, count in per_tenant.items():
        if count > cap:
            logger.warning("reconcile: tenant %s has %s families; rebuilt %s", tenant_id, count, cap)
    return rebuilt


def boards_rebuild_tenant(*, tenant: Tenant, actor: Actor) -> int:
    """Rebuild every board family of a tenant from the rollups (the operator console's repair button).

    Rebuilds the families read recently (the reconcile worklist) plus the unfiltered family of every bucketed
    metric (money in the tenant's reporting currency), then drops the tenant's derived window and ranking
    caches so the next read sums the repaired buckets. Writes the audit entry `leaderboard.rebuilt`.
    Returns the number of families rebuilt."""
    from audit.services import audit_record

    conn = redis()
    families: dict[str, BoardFamily] = {
        family.as_token(): family
        for family in families_registered(tenant_id=tenant.pk)
        if family.metric in BUCKETED_METRICS
    }
    for metric in sorted(BUCKETED_METRICS):
        currency = tenant.reporting_currency.upper() if metric in MONEY_METRICS else ""
        family = BoardFamily(tenant.pk, metric, currency)
        families.setdefault(family.as_token(), family)
    for token in sorted(families):
        board_family_rebuild(family=families[token])
    derived = [
        key
        for key in conn.scan_iter(match=f"{{{GLOBAL_PREFIX}:{tenant.pk}:*", count=1000)
        if any(part in (key if isinstance(key, bytes) else key.encode()) for part in (b":w:", b":r:"))
    ]
    for start in range(0, len(derived), 500):
        conn.delete(*derived[start : start + 500])
    with transaction.atomic():
        audit_record(
            action="leaderboard.rebuilt",
            actor=actor,
            tenant=tenant,
            target=tenant,
            details={"families": [families[t].describe() for t in sorted(families)], "count": len(families)},
        )
    return len(families)


def boards_reset_tenant(*, tenant_id: int) -> int:
    """Drop every board key of a tenant and rebuild its recently read families from the rollups: after the
    rollups lost contributions (a privacy erasure), so no key keeps counting what the rollups no longer hold.

    Every key of the tenant goes except the previous-rank snapshots (bucket keys of every family, built
    markers, window and ranking caches); the families read recently are rebuilt at once, the others rebuild
    themselves on their next read (their built markers are gone). Readers' process-local ranking caches
    converge within LEADERBOARD_CACHE_SECONDS. Not audited: the caller's action is. Returns the families
    rebuilt."""
    conn = redis()
    doomed = [
        key
        for key in conn.scan_iter(match=f"{{{GLOBAL_PREFIX}:{tenant_id}:*", count=1000)
        if b":s:" not in (key if isinstance(key, bytes) else key.encode())
    ]
    for start in range(0, len(doomed), 500):
        conn.delete(*doomed[start : start + 500])
    rebuilt = 0
    for family in families_registered(tenant_id=tenant_id):
        if family.metric in BUCKETED_METRICS:
            board_family_rebuild(family=family)
            rebuilt += 1
    return rebuilt
