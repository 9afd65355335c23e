"""Celery entry points for audit retention and the ops minute job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from coliseum.ops.services import ops_tick as ops_tick_run
from coliseum.rls import system_task

from .services import audit_purge_older_than


@shared_task(name="audit.tasks.ops_tick", ignore_result=True)
@system_task("ops figures across tenants")
def ops_tick() -> dict[str, Any]:
    """History point + alert evaluation, once a minute (idempotent per minute)."""
    return ops_tick_run()


@shared_task(name="audit.tasks.audit_retention_purge", ignore_result=True)
@system_task("audit retention")
def audit_retention_purge() -> int:
    """Delete entries older than AUDIT_RETENTION_DAYS (0, the default, keeps everything)."""
    days = int(getattr(settings, "AUDIT_RETENTION_DAYS", 0))
    if days <= 0:
        return 0
    return audit_purge_older_than(cutoff=timezone.now() - timedelta(days=days))
