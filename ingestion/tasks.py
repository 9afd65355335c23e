"""Celery entry points for processing. Idempotent: running any of them twice, or concurrently, is safe
(rows are claimed with SKIP LOCKED and applied in the claiming transaction)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import connection
from django_redis import get_redis_connection

from coliseum.rls import system_task

logger = logging.getLogger(__name__)

# Coalescing: at most one processing task is enqueued per QUEUED_FLAG_TTL_MS window, however many requests
# commit in it (a task per request would cost more than the processing of one event, and its publish would sit
# on the request path). The request that sets the flag (SET NX PX) enqueues the task with a countdown of the
# window, so the task starts after the flag has expired: every request that found the flag set committed
# before it expired, hence before the task starts, and the task (which drains until the queue is empty) sees
# its events. A request after the window sets the flag anew and enqueues the next task. The flag is never
# cleared by hand; a lost task, or a worker whose clock runs ahead of the web's, leaves events to the beat
# sweep (INGEST_SWEEP_SECONDS), never loses them.
QUEUED_FLAG = "ingestion:process-queued"
QUEUED_FLAG_TTL_MS = 200
QUEUED_START_AT_ONCE_EVENTS = 1000  # a full webhook batch, or an import's chunk
TASK_MAX_SECONDS = 50.0
SWEEP_LOCK = "ingestion:sweep-running"


def process_pending_schedule(
    *, accepted: int = 0, rejected: int = 0, tenant_id: int | None = None, large: int = 0
) -> None:
    """Called on commit after an ingest: enqueue a processing task unless one was enqueued moments ago.
    The ingest counters for health ride in the same Redis round trip (the hot path counts round trips).
    A commit of at least QUEUED_START_AT_ONCE_EVENTS events (`accepted`, or `large` when they are counted
    elsewhere) that opens a window also starts a task at once: there is nothing to gain by waiting to
    coalesce it, and the window's own task still follows for whatever commits after it."""
    from ingestion.services.stats import stats_queue

    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        stats_queue(pipe, accepted=accepted, rejected=rejected, tenant_id=tenant_id)
        pipe.set(QUEUED_FLAG, 1, nx=True, px=QUEUED_FLAG_TTL_MS)
        if not pipe.execute()[-1]:
            return
        if max(accepted, large) >= QUEUED_START_AT_ONCE_EVENTS:
            process_pending.delay()
        process_pending.apply_async(countdown=QUEUED_FLAG_TTL_MS / 1000)
    except Exception:
        # The events are committed; the beat sweep picks them up within INGEST_SWEEP_SECONDS.
        logger.warning("processing task not enqueued; the sweep will process the events")


@shared_task(name="ingestion.tasks.process_pending", ignore_result=True)
@system_task("processing drains every tenant's queue")
def process_pending() -> int:
    """Process whatever is pending (bounded in time; the next task or sweep continues). A task that finds a
    backlog (a full batch) enqueues one helper task, once: a backlog that one commit queued (an import, a
    burst) is drained by every worker process, while no more tasks wait in the broker than are running."""
    from ingestion.services import processing_run_pending

    try:
        return processing_run_pending(max_seconds=TASK_MAX_SECONDS, on_backlog=_helper_enqueue, drain=False)
    finally:
        connection.close_if_unusable_or_obsolete()


def _helper_enqueue() -> None:
    try:
        process_pending.delay()
    except Exception:
        logger.warning("processing helper task not enqueued; this task drains alone")


@shared_task(name="ingestion.tasks.sweep", ignore_result=True)
@system_task("processing sweep")
def sweep() -> int:
    """Beat job: catch whatever a crash or a lost task left behind. Single-flight: while one sweep drains (up
    to TASK_MAX_SECONDS), the next ones return at once, so a long backfill does not pile sweep runs up behind
    it. The lock expires on its own if its worker dies. Redis down: the sweep drains anyway."""
    try:
        lock = get_redis_connection("default").lock(SWEEP_LOCK, timeout=TASK_MAX_SECONDS + 10)
        if not lock.acquire(blocking=False):
            return 0
    except Exception:
        logger.warning("sweep lock unavailable; sweeping without it")
        return process_pending()
    try:
        return process_pending()
    finally:
        try:
            lock.release()
        except Exception:
            logger.warning("sweep lock not released; it expires on its own")


@shared_task(name="ingestion.tasks.maintain", ignore_result=True)
@system_task("partition upkeep and dedupe-key expiry")
def maintain() -> None:
    """Daily: create the coming months' log partitions, drop dedupe keys older than the window."""
    from ingestion.services.maintenance import dedupe_keys_expire, partitions_ensure

    partitions_ensure(months_ahead=3)
    dedupe_keys_expire(days=settings.INGEST_DEDUPE_WINDOW_DAYS)
