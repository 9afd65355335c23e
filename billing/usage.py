"""Monthly usage counters in Redis: `usage:{tenant_id}:{YYYYMM}:{kind}` (raw keys, no cache prefix).

Ingestion counts `events` (in the same pipeline as its health counters), reports counts `reports`, the API
throttle counts `api_calls`; `billing.selectors.usage_this_period` reads them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from django_redis import get_redis_connection

USAGE_KINDS = ("api_calls", "events", "reports")
USAGE_KEY = "usage:{tenant_id}:{period}:{kind}"
USAGE_TTL_SECONDS = 100 * 24 * 3600  # a period plus margin for the bill


def usage_period(now: datetime | None = None) -> str:
    return (now or timezone.now()).astimezone(UTC).strftime("%Y%m")


def usage_queue(pipe: Any, *, tenant_id: int, kind: str, amount: int = 1) -> None:
    """Add a usage increment to a Redis pipeline the caller executes."""
    if kind not in USAGE_KINDS:
        raise ValueError(f"unknown usage kind {kind!r}")
    key = USAGE_KEY.format(tenant_id=tenant_id, period=usage_period(), kind=kind)
    pipe.incrby(key, amount)
    pipe.expire(key, USAGE_TTL_SECONDS)


def usage_increment(*, tenant_id: int, kind: str, amount: int = 1) -> None:
    """Count usage this month, in its own round trip."""
    pipe = get_redis_connection("default").pipeline()
    usage_queue(pipe, tenant_id=tenant_id, kind=kind, amount=amount)
    pipe.execute()
