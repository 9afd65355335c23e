"""Periodic jobs for ingestion (merged into the Celery beat schedule by coliseum/celery.py)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "ingestion-sweep": {
        "task": "ingestion.tasks.sweep",
        "schedule": timedelta(seconds=min(10.0, settings.INGEST_SWEEP_SECONDS)),
        "options": {"expires": 30},
    },
    "ingestion-maintain": {"task": "ingestion.tasks.maintain", "schedule": timedelta(hours=6)},
}
