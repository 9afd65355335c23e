"""Periodic jobs of the privacy app (merged into the Celery beat schedule by coliseum/celery.py)."""

from __future__ import annotations

from celery.schedules import crontab

BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Nightly, off-peak (UTC): archive/drop whole months of raw events.
    "privacy-retention": {"task": "privacy.tasks.retention_run", "schedule": crontab(hour=3, minute=17)},
    # Daily pg_dump into private storage.
    "privacy-backup": {"task": "privacy.tasks.backup_run", "schedule": crontab(hour=2, minute=41)},
    # Requests whose job was never queued (broker down at request time) are queued again.
    "privacy-requests-sweep": {"task": "privacy.tasks.privacy_requests_sweep", "schedule": 300.0},
}
