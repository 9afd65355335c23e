"""The Celery app. Each app keeps its periodic jobs in `<app>/beat.py` as BEAT_SCHEDULE;
they are merged here."""

from __future__ import annotations

import importlib
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coliseum.settings.local")

app = Celery("coliseum")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

BEAT_APPS = ("coliseum", "ingestion", "leaderboards", "reports", "billing", "audit", "coliseum.privacy")


def _beat_schedule() -> dict[str, dict[str, object]]:
    schedule: dict[str, dict[str, object]] = {}
    for name in BEAT_APPS:
        try:
            module = importlib.import_module(f"{name}.beat")
        except ModuleNotFoundError as exc:
            if exc.name != f"{name}.beat":
                raise
            continue
        schedule.update(getattr(module, "BEAT_SCHEDULE", {}))
    return schedule


app.conf.beat_schedule = _beat_schedule()
