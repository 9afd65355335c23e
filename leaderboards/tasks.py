"""Celery entry points for the boards."""

from __future__ import annotations

from celery import shared_task
from django_redis import get_redis_connection

from coliseum.rls import system_task

from .services import boards_reconcile


@shared_task(name="leaderboards.tasks.reconcile", ignore_result=True)
@system_task("board reconcile across tenants")
def reconcile() -> int:
    """Rebuild recently read boards from the rollups (repairs drift). One run at a time across workers."""
    lock = get_redis_connection("default").lock("lb:reconcile-lock", timeout=900, blocking=False)
    if not lock.acquire(blocking=False):
        return 0
    try:
        return boards_reconcile()
    finally:
        lock.release()
