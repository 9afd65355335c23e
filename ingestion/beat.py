"""Periodic jobs for ingestion (merged into the Celery beat schedule by coliseum/celery.py)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

SWEEP_SECONDS = min(10.0, settings.INGEST_SWEEP_SECONDS)

BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # A sweep not started within one period is dropped (the next one does the same work), and a sweep that
    # starts while another still drains returns at once (ingestion.tasks.sweep is single-flight).
    "ingestion-sweep": {
        "task": "ingestion.tasks.sweep",
        "schedule": timedelta(seconds=SWEEP_SECONDS),
        "options": {"expires": SWEEP_SECONDS},
    },
    "ingestion-maintain": {"task": "ingestion.tasks.maintain", "schedule": timedelta(hours=6)},
}
