"""Celery entry points for processing. Idempotent: running any of them twice, or concurrently, is safe
(rows are claimed with SKIP LOCKED and applied in the claiming transaction)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import connection
from django_redis import get_redis_connection

logger = logging.getLogger(__name__)

# Coalescing flag: while set, a process_pending task is already queued; ingest requests do not enqueue more.
QUEUED_FLAG = "ingestion:process-queued"
QUEUED_FLAG_TTL_SECONDS = 5
TASK_MAX_SECONDS = 50.0


def process_pending_schedule() -> None:
    """Called on commit after an ingest: enqueue one processing task unless one is already queued."""
    try:
        if not get_redis_connection("default").set(QUEUED_FLAG, 1, nx=True, ex=QUEUED_FLAG_TTL_SECONDS):
            return
        process_pending.delay()
    except Exception:
        # The events are committed; the beat sweep picks them up within INGEST_SWEEP_SECONDS.
        logger.warning("processing task not enqueued; the sweep will process the events")


@shared_task(name="ingestion.tasks.process_pending", ignore_result=True)
def process_pending() -> int:
    """Process whatever is pending (bounded in time; the next task or sweep continues)."""
    from ingestion.services import processing_run_pending

    try:
        # Cleared first: events committed from now on either get processed by this run or enqueue a new task.
        get_redis_connection("default").delete(QUEUED_FLAG)
    except Exception:
        logger.warning("processing flag not cleared: redis unavailable")
    try:
        return processing_run_pending(max_seconds=TASK_MAX_SECONDS)
    finally:
        connection.close_if_unusable_or_obsolete()


@shared_task(name="ingestion.tasks.sweep", ignore_result=True)
def sweep() -> int:
    """Beat job: catch whatever a crash or a lost task left behind."""
    return process_pending()


@shared_task(name="ingestion.tasks.maintain", ignore_result=True)
def maintain() -> None:
    """Daily: create the coming months' log partitions, drop dedupe keys older than the window."""
    from ingestion.services.maintenance import dedupe_keys_expire, partitions_ensure

    partitions_ensure(months_ahead=3)
    dedupe_keys_expire(days=settings.INGEST_DEDUPE_WINDOW_DAYS)
