"""Periodic jobs for the boards (merged into the Celery beat schedule by coliseum/celery.py)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "leaderboards-reconcile": {
        "task": "leaderboards.tasks.reconcile",
        "schedule": timedelta(seconds=getattr(settings, "LEADERBOARD_RECONCILE_SECONDS", 300)),
        "options": {"expires": 240},
    },
}
