"""Periodic jobs of the audit app and the ops package (merged by coliseum/celery.py)."""

from celery.schedules import crontab

BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "ops-tick": {"task": "audit.tasks.ops_tick", "schedule": 60.0, "options": {"expires": 55}},
    "audit-retention-purge": {
        "task": "audit.tasks.audit_retention_purge",
        "schedule": crontab(hour=3, minute=17),
    },
}
