"""Periodic jobs of the reports app (merged into the Celery beat schedule by coliseum/celery.py)."""

from __future__ import annotations

BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "reports-schedules-run": {
        "task": "reports.tasks.report_schedules_run",
        "schedule": 15 * 60.0,
        "options": {"queue": "reports"},
    },
    "reports-stale-requeue": {
        "task": "reports.tasks.report_stale_requeue",
        "schedule": 10 * 60.0,
        "options": {"queue": "reports"},
    },
}
