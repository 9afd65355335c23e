from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings
from django_redis import get_redis_connection


def ops_redis() -> redis.Redis:
    """The Redis that holds request metrics, alert state and history (the cache's Redis)."""
    return get_redis_connection("default")


@lru_cache(maxsize=4)
def _broker(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)


def broker_redis() -> redis.Redis | None:
    """The Celery broker when it is Redis (queue depths are LLEN of the queue lists); None otherwise."""
    url = str(getattr(settings, "CELERY_BROKER_URL", "") or "")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return _broker(url)
