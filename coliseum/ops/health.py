"""The figures behind GET /api/v1/admin/health, the alerts and the dashboard history."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis
from django.db import DatabaseError, connection
from django.utils import timezone

from .conf import ops_setting
from .redis import broker_redis, ops_redis
from .requests import GroupStats, request_window_stats

logger = logging.getLogger(__name__)


def _ingest_stats() -> dict[str, Any] | None:
    """ingestion.selectors.ingest_stats() (the ingestion app provides it); None when unavailable."""
    try:
        from ingestion.selectors import ingest_stats
    except ImportError:
        return None
    try:
        return dict(ingest_stats())
    except Exception:  # a failing figure must not take the health endpoint down
        logger.exception("ingest_stats failed")
        return None


def database_status() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def redis_status() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        ops_redis().ping()
    except (redis.RedisError, OSError) as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def queue_depths() -> dict[str, int | None]:
    """LLEN of each watched Celery queue on a Redis broker; None for a queue we cannot measure."""
    queues: list[str] = list(ops_setting("OPS_CELERY_QUEUES"))
    broker = broker_redis()
    if broker is None:
        return dict.fromkeys(queues)
    try:
        pipe = broker.pipeline(transaction=False)
        for name in queues:
            pipe.llen(name)
        return {name: int(n) for name, n in zip(queues, pipe.execute(), strict=True)}
    except (redis.RedisError, OSError):
        return dict.fromkeys(queues)


def live_workers() -> list[str] | None:
    """Names of the Celery workers that answer a ping within OPS_WORKER_PING_TIMEOUT; None on error."""
    from coliseum.celery import app

    try:
        replies = app.control.ping(timeout=float(ops_setting("OPS_WORKER_PING_TIMEOUT")))
    except Exception:  # broker down or unreachable
        logger.warning("celery ping failed")
        return None
    return sorted(name for reply in replies or [] for name in reply)


WORKERS_KEY = "ops:workers"


def live_workers_cached(*, max_age_seconds: int = 15) -> list[str] | None:
    """live_workers(), pinged at most once per `max_age_seconds` however many consoles poll: a ping waits
    OPS_WORKER_PING_TIMEOUT for replies. None when the broker cannot be asked."""
    conn = ops_redis()
    try:
        cached = conn.get(WORKERS_KEY)
    except (redis.RedisError, OSError):
        return live_workers()
    if cached is not None:
        return list(json.loads(cached))
    workers = live_workers()
    if workers is not None:
        try:
            conn.set(WORKERS_KEY, json.dumps(workers), ex=max_age_seconds)
        except (redis.RedisError, OSError):
            pass
    return workers


def api_figures(*, minutes: int = 5) -> dict[str, Any]:
    stats = request_window_stats(minutes=minutes)
    overall = GroupStats()
    for group_stats in stats.values():
        assert overall.buckets is not None and group_stats.buckets is not None
        overall.requests += group_stats.requests
        overall.errors += group_stats.errors
        overall.seconds_sum += group_stats.seconds_sum
        overall.buckets = [a + b for a, b in zip(overall.buckets, group_stats.buckets, strict=True)]
    return {
        "window_seconds": minutes * 60,
        **overall.as_dict(),
        "groups": {group: s.as_dict() for group, s in stats.items()},
    }


def health_snapshot(*, ping_workers: bool = True, cached_workers: bool = False) -> dict[str, Any]:
    """Everything an operator needs at a glance. Never raises for a dependency that is down: its part
    says so instead. `cached_workers`: the live workers from live_workers_cached (the console's polls)."""
    database = database_status()
    redis_ok = redis_status()
    try:
        api: dict[str, Any] | None = api_figures()
    except (redis.RedisError, OSError):
        api = None
    ingest = _ingest_stats()
    if ingest is not None:
        ingest["events_per_second_1m"] = events_per_second(ingest, minutes=1)
        ingest["events_per_second_5m"] = events_per_second(ingest, minutes=5)
    workers = live_workers_cached() if cached_workers else live_workers() if ping_workers else None
    snapshot: dict[str, Any] = {
        "checked_at": timezone.now().isoformat(),
        "database": database,
        "redis": redis_ok,
        "celery": {
            "queues": queue_depths(),
            "workers": workers,
            "live_workers": None if workers is None else len(workers),
        },
        "ingest": ingest,
        "api": api,
    }
    from .alerts import alerts_firing, alerts_thresholds

    snapshot["alerts"] = alerts_firing()
    snapshot["thresholds"] = alerts_thresholds()
    healthy = database["ok"] and redis_ok["ok"] and not snapshot["alerts"]
    snapshot["status"] = "ok" if healthy else "degraded"
    return snapshot


def ingest_lag_seconds(ingest: dict[str, Any] | None) -> float | None:
    if not ingest:
        return None
    for key in ("lag_seconds", "ingest_lag_seconds", "oldest_unprocessed_age_seconds"):
        if ingest.get(key) is not None:
            return float(ingest[key])
    return None


def events_per_second(ingest: dict[str, Any] | None, *, minutes: int = 1) -> float | None:
    """Accepted events per second over the last `minutes` (1 or 5), from ingest_stats()."""
    if not ingest:
        return None
    accepted = ingest.get(f"accepted_{minutes}m")
    if isinstance(accepted, (int, float)):
        return round(float(accepted) / (60 * minutes), 3)
    value = ingest.get(f"events_per_second_{minutes}m")
    return float(value) if isinstance(value, (int, float)) else None
