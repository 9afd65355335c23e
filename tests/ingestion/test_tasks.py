"""Processing's Celery entry points: the beat sweep is single-flight; a task frees the coalescing flag when it
starts, so later commits enqueue the next one."""

from __future__ import annotations

from django.db import connection
from django_redis import get_redis_connection

from coliseum.models import Tenant
from ingestion.services import event_batch_ingest
from ingestion.tasks import (
    QUEUED_FLAG,
    SWEEP_LOCK,
    TASK_MAX_SECONDS,
    process_pending,
    process_pending_schedule,
    sweep,
)
from tests.ingestion.conftest import make_event


def _pending() -> int:
    """Queued events (a queue row holds one request's)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(event_count), 0) FROM ingestion_pending")
        return int(cursor.fetchone()[0])


def test_a_sweep_returns_at_once_while_another_sweep_drains(raw_tables_cleanup: None, tenant: Tenant) -> None:
    # (committed data: a task closes its database connection when it ends)
    # given queued events, and a sweep already draining (it holds the sweep lock)
    event_batch_ingest(
        tenant=tenant, events=[make_event(user=f"fan-{i}") for i in range(5)], source="passport"
    )
    running = get_redis_connection("default").lock(SWEEP_LOCK, timeout=TASK_MAX_SECONDS + 10)
    assert running.acquire(blocking=False)
    try:
        # when the beat sends another sweep
        processed = sweep()
        # then it leaves the work to the running one
        assert processed == 0
        assert _pending() == 5
    finally:
        running.release()
    # and once that one is done, the next sweep drains the queue
    assert sweep() == 5
    assert _pending() == 0


def test_a_commit_after_a_task_started_enqueues_the_next_task(
    raw_tables_cleanup: None, tenant: Tenant
) -> None:
    # given a processing task was enqueued moments ago (the coalescing flag is set) and has now run
    redis = get_redis_connection("default")
    redis.delete("celery")
    redis.set(QUEUED_FLAG, 1)
    process_pending()
    # when a request commits events afterwards
    process_pending_schedule(accepted=1)
    # then a next task is enqueued for them (not left for the beat sweep)
    assert redis.llen("celery") == 1
    redis.delete("celery")
