"""Processing's Celery entry points: the beat sweep is single-flight; commits within one coalescing window
share one task, due when the window closes, and a commit after it enqueues the next."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django_redis import get_redis_connection

from coliseum.models import Tenant
from ingestion.services import event_batch_ingest
from ingestion.tasks import (
    QUEUED_FLAG,
    QUEUED_START_AT_ONCE_EVENTS,
    SWEEP_LOCK,
    TASK_MAX_SECONDS,
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


@pytest.fixture
def window_of_a_second(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A coalescing window of a second (long enough for a slow CI machine), no window open, an empty broker
    queue; the Redis connection."""
    monkeypatch.setattr("ingestion.tasks.QUEUED_FLAG_TTL_MS", 1000)
    redis = get_redis_connection("default")
    redis.delete("celery", QUEUED_FLAG)
    return redis


def test_commits_in_one_window_share_a_task_that_starts_after_the_window(window_of_a_second: Any) -> None:
    redis = window_of_a_second  # given a one-second coalescing window, none open yet

    # when three requests commit events within the window
    before = datetime.now(UTC)
    for _ in range(3):
        process_pending_schedule(accepted=1)

    # then one processing task is queued, due when the window has closed (so it sees all three commits)
    assert redis.llen("celery") == 1
    eta = datetime.fromisoformat(json.loads(redis.lindex("celery", 0))["headers"]["eta"])
    assert eta >= before + timedelta(seconds=1)
    assert redis.pttl(QUEUED_FLAG) <= 1000

    # and a request that commits after the window queues the next task
    redis.delete(QUEUED_FLAG)  # the window has passed (its flag expired)
    process_pending_schedule(accepted=1)
    assert redis.llen("celery") == 2
    redis.delete("celery")


def test_a_large_commit_starts_processing_at_once_and_the_window_task_still_follows(
    window_of_a_second: Any,
) -> None:
    redis = window_of_a_second  # given a one-second coalescing window, none open yet

    # when one request commits a full webhook batch
    process_pending_schedule(accepted=QUEUED_START_AT_ONCE_EVENTS)

    # then a task is due at once (nothing to coalesce), and the window's own task after the window
    etas = sorted(json.loads(m)["headers"]["eta"] or "" for m in redis.lrange("celery", 0, -1))
    assert len(etas) == 2
    assert etas[0] == ""  # no ETA: runs as soon as a worker is free
    assert datetime.fromisoformat(etas[1]) > datetime.now(UTC) + timedelta(milliseconds=500)
    redis.delete("celery")
