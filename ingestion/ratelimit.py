"""Per-key token bucket in Redis, one atomic Lua script per request.

Rate = the tenant's plan `ingest_events_per_second`; burst = INGEST_RATE_BURST_SECONDS of that. A request
costs one token per event. A request is admitted while the bucket is positive and may take it into debt
(so a 1000-event batch works on a 100/s plan); the debt is paid back before the next admission, so the
long-run rate is exact. Redis unavailable: admit (fail open) and log - ingestion must not stop because a
cache is down; the events themselves go to PostgreSQL."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django_redis import get_redis_connection
from redis.commands.core import Script

from billing.entitlements import entitlements_for
from coliseum.models import Tenant

logger = logging.getLogger(__name__)

_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1]) or burst
local ts = tonumber(data[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait = 0
if tokens > 0 then
  tokens = tokens - cost
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate + cost / rate) + 60)
return {allowed, tostring(wait), tostring(now)}
"""


# EVALSHA (the script's 1.3 KB body is sent once per Redis server, not once per request; loaded on NOSCRIPT).
_BUCKET = Script(None, _SCRIPT.encode())  # type: ignore[arg-type]


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: int
    reset_at: int


# The plan's rate per tenant, remembered in-process for a moment: saves a Redis round trip per request; a plan
# change reaches the limiter within RATE_CACHE_SECONDS.
RATE_CACHE_SECONDS = 2.0
_rates: dict[int, tuple[float, int]] = {}


def _rate_for(tenant: Tenant) -> int:
    now = time.monotonic()
    hit = _rates.get(tenant.pk)
    if hit is not None and hit[0] > now:
        return hit[1]
    rate = max(1, entitlements_for(tenant).ingest_events_per_second)
    if len(_rates) > 10_000:
        _rates.clear()
    _rates[tenant.pk] = (now + RATE_CACHE_SECONDS, rate)
    return rate


def rate_limit_take(*, tenant: Tenant, key_id: str, cost: int) -> RateDecision:
    rate = _rate_for(tenant)
    burst = rate * max(1, settings.INGEST_RATE_BURST_SECONDS)
    try:
        client = get_redis_connection("default")
        allowed, wait, now = _BUCKET(
            keys=[f"ingestion:bucket:{key_id}"], args=[rate, burst, max(1, cost)], client=client
        )
    except Exception:
        logger.warning("ingest rate limit skipped: redis unavailable")
        return RateDecision(True, 0, int(time.time()))
    wait_s = float(wait)
    return RateDecision(bool(int(allowed)), max(1, math.ceil(wait_s)), int(float(now) + math.ceil(wait_s)))
