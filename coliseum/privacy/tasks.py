"""Celery entry points of the privacy app: take ids, call one service."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="privacy.tasks.privacy_request_run", ignore_result=True, acks_late=True)
def privacy_request_run(request_id: str) -> str | None:
    from .services import privacy_request_run as run

    done = run(request_id=request_id)
    return done.status if done is not None else None


@shared_task(name="privacy.tasks.privacy_requests_sweep", ignore_result=True)
def privacy_requests_sweep() -> int:
    from .services import privacy_requests_sweep as sweep

    return sweep()


@shared_task(name="privacy.tasks.retention_run", ignore_result=True)
def retention_run() -> int:
    from .retention import retention_run as run

    return run(dry_run=False).pk


@shared_task(name="privacy.tasks.backup_run", ignore_result=True)
def backup_run() -> str:
    from .backups import backup_create

    return str(backup_create())
