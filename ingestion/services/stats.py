"""Per-minute ingestion counters in Redis (INCR on a minute key with a TTL) for the health endpoint.

Best effort: a Redis outage never fails an ingest (the events are already committed)."""

from __future__ import annotations

import logging
import time
from typing import Any

from django_redis import get_redis_connection

logger = logging.getLogger(__name__)

STATS_KEY = "ingestion:stats:{kind}:{minute}"
STATS_TTL_SECONDS = 15 * 60
LAG_SAMPLES_KEY = "ingestion:lag_ms"
LAG_SAMPLES_MAX = 20_000


def stats_queue(
    pipe: Any, *, accepted: int = 0, rejected: int = 0, rate_limited: int = 0, tenant_id: int | None = None
) -> None:
    """Add the counter updates to a Redis pipeline (executed by the caller). With `tenant_id`, accepted events
    also count towards the tenant's monthly usage (billing), in the same round trip."""
    if tenant_id is not None and accepted:
        from billing.usage import usage_queue

        usage_queue(pipe, tenant_id=tenant_id, kind="events", amount=accepted)
    minute = int(time.time() // 60)
    for kind, n in (("accepted", accepted), ("rejected", rejected), ("rate_limited", rate_limited)):
        if n:
            key = STATS_KEY.format(kind=kind, minute=minute)
            pipe.incrby(key, n)
            pipe.expire(key, STATS_TTL_SECONDS)


def stats_count(
    *, accepted: int = 0, rejected: int = 0, rate_limited: int = 0, tenant_id: int | None = None
) -> None:
    if not (accepted or rejected or rate_limited):
        return
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        stats_queue(
            pipe, accepted=accepted, rejected=rejected, rate_limited=rate_limited, tenant_id=tenant_id
        )
        pipe.execute()
    except Exception:
        logger.warning("ingest stats not recorded: redis unavailable")


def stats_read(*, kind: str, minutes: int) -> int:
    now_minute = int(time.time() // 60)
    keys = [STATS_KEY.format(kind=kind, minute=now_minute - i) for i in range(minutes)]
    try:
        values = get_redis_connection("default").mget(keys)
    except Exception:
        return 0
    return sum(int(v) for v in values if v is not None)


def lag_samples_record(samples_ms: list[int]) -> None:
    if not samples_ms:
        return
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        pipe.lpush(LAG_SAMPLES_KEY, *samples_ms)
        pipe.ltrim(LAG_SAMPLES_KEY, 0, LAG_SAMPLES_MAX - 1)
        pipe.execute()
    except Exception:
        logger.warning("lag samples not recorded: redis unavailable")
