"""Settings the ops package reads, with their defaults (all overridable in settings / the environment)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "OPS_ALERT_ERROR_RATE": 0.02,  # share of 5xx over 5 minutes
    "OPS_ALERT_QUEUE_DEPTH": 1000,  # messages waiting in any watched Celery queue
    "OPS_ALERT_P95_SECONDS": 30.0,  # p95 latency of any endpoint group over 5 minutes
    "OPS_ALERT_INGEST_LAG_SECONDS": 60.0,  # age of the oldest unprocessed event
    "OPS_ALERT_MIN_REQUESTS": 20,  # error-rate alert needs at least this many requests in the window
    "ALERT_WEBHOOK_URL": "",
    "OPS_CELERY_QUEUES": ["celery", "ingest", "reports"],
    "OPS_WORKER_PING_TIMEOUT": 0.5,
    "METRICS_TOKEN": "",
    "METRICS_ALLOWED_IPS": [],
}


def ops_setting(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])
