"""(o) Ops overhead: what the request-metrics middleware adds to each request (one pipelined Redis round
trip), what a /metrics scrape and a health snapshot cost. Figures for the README's "Scaling out" section.

Discovered by benchmarks/run.py (`make bench`): SECTIONS maps a section letter to fn(ctx) -> figures.
Writes only to its own Redis keys group ("bench"), never to the request figures operators read."""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

RECORDS = 5000
RUNS = 20


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ops_overhead(ctx: Any = None) -> dict[str, Any]:
    from coliseum.ops.health import health_snapshot
    from coliseum.ops.prometheus import metrics_text
    from coliseum.ops.redis import ops_redis
    from coliseum.ops.requests import request_record

    per_request: list[float] = []
    for i in range(RECORDS):
        started = time.perf_counter()
        request_record(group="bench", status=200 if i % 50 else 500, seconds=0.001 * (i % 200))
        per_request.append(time.perf_counter() - started)
    r = ops_redis()
    for key in r.scan_iter("ops:req:*:bench"):
        r.delete(key)
    r.delete("ops:req:t:bench")

    scrapes: list[float] = []
    for _ in range(RUNS):
        started = time.perf_counter()
        metrics_text()
        scrapes.append(time.perf_counter() - started)
    snapshots: list[float] = []
    for _ in range(RUNS):
        started = time.perf_counter()
        health_snapshot(ping_workers=False)
        snapshots.append(time.perf_counter() - started)
    return {
        "middleware_record_p50_ms": round(statistics.median(per_request) * 1000, 3),
        "middleware_record_p99_ms": round(_pct(per_request, 0.99) * 1000, 3),
        "metrics_scrape_p50_ms": round(statistics.median(scrapes) * 1000, 2),
        "health_snapshot_p50_ms": round(statistics.median(snapshots) * 1000, 2),
    }


SECTIONS = {"o": ops_overhead}


if __name__ == "__main__":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coliseum.settings.local")
    django.setup()
    print(ops_overhead())
