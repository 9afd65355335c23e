from __future__ import annotations

BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "billing.plans_refresh_due": {"task": "billing.plans_refresh_due", "schedule": 600.0},
}
