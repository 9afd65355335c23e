"""Per-minute history for the console's charts (1, 6 or 24 hours): one point a minute in a Redis sorted set
(`ops:history`, score = minute), written by the beat job, trimmed to 24 hours."""

from __future__ import annotations

import json
import time
from typing import Any

from .health import events_per_second, ingest_lag_seconds
from .redis import ops_redis
from .requests import GroupStats, current_minute, request_window_stats

HISTORY_KEY = "ops:history"
HISTORY_MINUTES = 24 * 60


def history_point(*, snapshot: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The point for the last full minute: events/s (1 min), ingest lag, 5xx share, worst p95, and from the
    snapshot the deepest watched Celery queue and the live worker count (None when not measured)."""
    minute = current_minute(now) - 1
    stats = request_window_stats(minutes=1, now=minute * 60)
    overall = GroupStats()
    p95s: list[float] = []
    for s in stats.values():
        overall.requests += s.requests
        overall.errors += s.errors
        q = s.quantile(0.95)
        if q is not None:
            p95s.append(q)
    ingest = snapshot.get("ingest")
    celery = snapshot.get("celery") or {}
    depths = [d for d in (celery.get("queues") or {}).values() if d is not None]
    return {
        "t": minute * 60,
        "events_per_s": events_per_second(ingest, minutes=1),
        "lag_s": ingest_lag_seconds(ingest),
        "requests": overall.requests,
        "error_rate": round(overall.errors / overall.requests, 4) if overall.requests else 0.0,
        "p95_s": max(p95s) if p95s else None,
        # The deepest queue, as the queue-depth alert reads it (its threshold is drawn on the same chart).
        "queue_depth": max(depths) if depths else None,
        "workers": celery.get("live_workers"),
    }


def history_record(*, point: dict[str, Any]) -> None:
    minute = int(point["t"]) // 60
    pipe = ops_redis().pipeline(transaction=True)
    pipe.zremrangebyscore(HISTORY_KEY, minute, minute)  # one point per minute, even if the job reruns
    pipe.zadd(HISTORY_KEY, {json.dumps(point, sort_keys=True): minute})
    pipe.zremrangebyscore(HISTORY_KEY, "-inf", minute - HISTORY_MINUTES)
    pipe.execute()


def history_read(*, minutes: int = HISTORY_MINUTES, now: float | None = None) -> list[dict[str, Any]]:
    end = current_minute(time.time() if now is None else now)
    raw: list[bytes] = ops_redis().zrangebyscore(HISTORY_KEY, end - minutes, end)  # type: ignore[assignment]
    return [json.loads(item) for item in raw]
