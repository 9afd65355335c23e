"""Celery entry points of the privacy app: take ids, call one service."""

from __future__ import annotations

from celery import shared_task
from django.core.exceptions import ValidationError

from coliseum.rls import system_task, tenant_task


def _request_tenant(request_id: str) -> int | None:
    from .models import PrivacyRequest

    try:
        return PrivacyRequest.objects.filter(pk=request_id).values_list("tenant_id", flat=True).first()
    except (ValueError, ValidationError):  # not a request id: the service answers that
        return None


@shared_task(name="privacy.tasks.privacy_request_run", ignore_result=True, acks_late=True)
@tenant_task(lambda request_id: _request_tenant(request_id))
def privacy_request_run(request_id: str) -> str | None:
    from .services import privacy_request_run as run

    done = run(request_id=request_id)
    return done.status if done is not None else None


@shared_task(name="privacy.tasks.privacy_requests_sweep", ignore_result=True)
@system_task("privacy request sweep across tenants")
def privacy_requests_sweep() -> int:
    from .services import privacy_requests_sweep as sweep

    return sweep()


@shared_task(name="privacy.tasks.retention_run", ignore_result=True)
@system_task("retention across tenants")
def retention_run() -> int:
    from .retention import retention_run as run

    return run(dry_run=False).pk


@shared_task(name="privacy.tasks.backup_run", ignore_result=True)
@system_task("backups")
def backup_run() -> str:
    from .backups import backup_create

    return str(backup_create())
