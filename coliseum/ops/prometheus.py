"""GET /metrics in the Prometheus text format, computed at scrape time from Redis (and the health
figures), so it is the same answer whichever web process serves the scrape — no
PROMETHEUS_MULTIPROC_DIR to share between processes or machines."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from django.http import HttpRequest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from coliseum.clientaddr import client_address
from coliseum.crypto import constant_time_equals

from .alerts import alerts_firing, alerts_thresholds
from .conf import ops_setting
from .health import _ingest_stats, database_status, ingest_lag_seconds, queue_depths, redis_status
from .requests import BUCKETS, GROUPS, counters_read, request_totals

_NAME_SAFE = re.compile(r"[^a-zA-Z0-9_]")


class ColiseumCollector:
    def collect(self) -> Iterator[Metric]:
        totals = request_totals()
        duration = HistogramMetricFamily(
            "coliseum_http_request_duration_seconds",
            "HTTP request duration by endpoint group.",
            labels=["group"],
        )
        requests = CounterMetricFamily(
            "coliseum_http_requests",
            "HTTP requests by endpoint group and status class.",
            labels=["group", "status"],
        )
        for group in GROUPS:
            raw = totals.get(group) or {}
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for i, bound in enumerate(BUCKETS):
                cumulative += int(raw.get(f"b{i}".encode(), 0))
                buckets.append((repr(bound), cumulative))
            cumulative += int(raw.get(f"b{len(BUCKETS)}".encode(), 0))
            buckets.append(("+Inf", cumulative))
            duration.add_metric([group], buckets, sum_value=float(raw.get(b"s", 0.0)))
            for status in ("1xx", "2xx", "3xx", "4xx", "5xx"):
                requests.add_metric([group, status], int(raw.get(f"c{status}".encode(), 0)))
        yield duration
        yield requests

        queues = GaugeMetricFamily(
            "coliseum_celery_queue_length", "Messages waiting per Celery queue.", labels=["queue"]
        )
        for name, depth in queue_depths().items():
            if depth is not None:
                queues.add_metric([name], depth)
        yield queues

        ingest = _ingest_stats()
        lag = ingest_lag_seconds(ingest)
        if lag is not None:
            yield GaugeMetricFamily(
                "coliseum_ingest_lag_seconds", "Age of the oldest unprocessed event.", value=lag
            )
        for key, value in (ingest or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not key.endswith("_at"):
                name = "coliseum_ingest_" + _NAME_SAFE.sub("_", key)
                if name != "coliseum_ingest_lag_seconds":
                    yield GaugeMetricFamily(name, f"ingest_stats()[{key!r}]", value=float(value))

        for name, value in sorted(counters_read().items()):
            yield CounterMetricFamily(
                f"coliseum_{_NAME_SAFE.sub('_', name)}", f"Counter {name}.", value=value
            )

        up = GaugeMetricFamily(
            "coliseum_dependency_up", "1 when the dependency answers.", labels=["dependency"]
        )
        up.add_metric(["database"], 1.0 if database_status()["ok"] else 0.0)
        up.add_metric(["redis"], 1.0 if redis_status()["ok"] else 0.0)
        yield up

        firing = {a["rule"] for a in alerts_firing()}
        alerts = GaugeMetricFamily("coliseum_alert_firing", "1 while the alert rule fires.", labels=["rule"])
        for rule in alerts_thresholds():
            alerts.add_metric([rule], 1.0 if rule in firing else 0.0)
        yield alerts


def metrics_text() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ColiseumCollector())  # type: ignore[arg-type]
    return generate_latest(registry)


def metrics_allowed(request: HttpRequest) -> bool:
    """A matching `Authorization: Bearer <METRICS_TOKEN>` (constant-time compare), or a client address in
    METRICS_ALLOWED_IPS (addresses or CIDR networks). With neither configured nobody may scrape: behind a
    reverse proxy every request comes from the proxy's (often loopback) address, so no address is trusted
    by default."""
    token = str(ops_setting("METRICS_TOKEN") or "")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and constant_time_equals(header[7:].strip(), token):
        return True
    allowed: list[str] = list(ops_setting("METRICS_ALLOWED_IPS") or [])
    try:
        client = ipaddress.ip_address(client_address(request))
    except ValueError:
        return False
    for entry in allowed:
        try:
            if client in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False
