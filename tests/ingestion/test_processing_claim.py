"""The processing queue and the processor's claim: one queue row per accepted request; a batch takes whole
rows up to its size whatever the queue table's statistics say; a drain that finds a backlog asks for a helper
once; events queued while a bucket is recomputed, or whose fan was erased meanwhile, are counted exactly as a
recount of the log says."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection

from coliseum.models import Tenant
from ingestion.selectors import ingest_stats, rollup_totals
from ingestion.services import event_batch_ingest, processing, processing_batch_run, processing_run_pending
from ingestion.services.erasure import subject_erase
from ingestion.services.rollup import rollup_rebuild
from tests.factories import TenantFactory
from tests.ingestion.conftest import HOUR0, make_event

pytestmark = pytest.mark.clock


def _queued_events() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(event_count), 0) FROM ingestion_pending")
        return int(cursor.fetchone()[0])


def _queue_rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ingestion_pending")
        return int(cursor.fetchone()[0])


def _plays(tenant: Tenant) -> int:
    return sum(rollup_totals(tenant_id=tenant.pk, metric="plays", start=None, end=None).values())


def _requests(tenant: Tenant, requests: int, size: int, user: str = "fan") -> None:
    """`requests` accepted requests of `size` plays each, at distinct moments of HOUR0."""
    for r in range(requests):
        events = [
            make_event(user=f"{user}-{r}-{i}", at=HOUR0 + timedelta(seconds=r * size + i))
            for i in range(size)
        ]
        assert event_batch_ingest(tenant=tenant, events=events, source="passport").accepted == size


def test_a_request_is_queued_as_one_row_and_an_all_duplicate_replay_queues_nothing(tenant: Tenant) -> None:
    # given a request of 40 events
    events = [make_event(user=f"fan-{i}") for i in range(40)]
    assert event_batch_ingest(tenant=tenant, events=events, source="passport").accepted == 40
    # then one queue row holds all 40
    assert (_queue_rows(), _queued_events()) == (1, 40)
    # when the same request is sent again
    replay = event_batch_ingest(tenant=tenant, events=events, source="passport")
    # then it is all duplicates and queues nothing
    assert (replay.accepted, replay.duplicates) == (0, 40)
    assert (_queue_rows(), _queued_events()) == (1, 40)
    # and a partial replay queues only its new events
    fresh = [make_event(user="fan-new")]
    assert event_batch_ingest(tenant=tenant, events=events[:5] + fresh, source="passport").accepted == 1
    assert (_queue_rows(), _queued_events()) == (2, 41)
    # and the health endpoint's backlog is in events
    assert ingest_stats()["pending"] == 41
    assert processing_run_pending() == 41
    assert _plays(tenant) == 41


def test_a_batch_claims_at_most_its_size_after_the_queue_was_analyzed_empty(tenant: Tenant) -> None:
    # given a queue whose statistics say it is empty (autovacuum analyzes a drained queue often), which once
    # made the planner re-run the locking subquery per queue row and claim everything in one "batch"
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ingestion_pending")
    # and 50 plays queued after that, by 10 requests of 5
    _requests(tenant, 10, 5)
    # when one batch of 20 is processed
    claimed = processing_batch_run(limit=20)
    # then it took 20 events (4 requests), counted them, and left the other 30 queued
    assert claimed == 20
    assert _queued_events() == 30
    assert _plays(tenant) == 20
    # and the next batches take the rest exactly once
    assert processing_batch_run(limit=20) + processing_batch_run(limit=20) == 30
    assert _queued_events() == 0
    assert _plays(tenant) == 50


def test_a_batch_takes_whole_requests_and_stops_once_it_reaches_its_size(tenant: Tenant) -> None:
    # given a request of 30 plays, then two of 15, then one of 5
    _requests(tenant, 1, 30, user="big")
    _requests(tenant, 2, 15, user="mid")
    _requests(tenant, 1, 5, user="small")
    # when batches of 20 are processed
    # then a request bigger than the batch is taken whole, alone
    assert processing_batch_run(limit=20) == 30
    # and smaller ones are added until the batch reaches its size (the last may pass it)
    assert processing_batch_run(limit=20) == 30
    assert processing_batch_run(limit=20) == 5
    assert processing_batch_run(limit=20) == 0
    assert _plays(tenant) == 65


def test_a_drain_asks_for_help_once_when_it_finds_a_backlog(tenant: Tenant, settings: Any) -> None:
    # given a backlog of 25 events in 5 requests, and batches of 10
    settings.INGEST_PROCESS_BATCH_SIZE = 10
    _requests(tenant, 5, 5)
    calls: list[int] = []
    # when one drain processes it
    processed = processing_run_pending(on_backlog=lambda: calls.append(_queued_events()))
    # then it asked for a helper once, after its first (full) batch, and drained everything
    assert calls == [15]
    assert processed == 25
    assert _queued_events() == 0


def test_a_drain_without_a_backlog_asks_for_no_help(tenant: Tenant) -> None:
    event_batch_ingest(tenant=tenant, events=[make_event()], source="passport")
    calls: list[int] = []
    assert processing_run_pending(on_backlog=lambda: calls.append(1)) == 1
    assert calls == []


def test_a_task_processes_what_was_queued_before_it_and_leaves_later_events_to_their_own_task(
    tenant: Tenant, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given 25 queued events, batches of 10, and a request that commits while the third batch is processed
    settings.INGEST_PROCESS_BATCH_SIZE = 10
    _requests(tenant, 5, 5)
    batches: list[int] = []
    real_publish = processing.contributions_publish

    def publish_and_commit_one_more(contributions: Any) -> None:
        batches.append(1)
        if len(batches) == 3:
            event_batch_ingest(tenant=tenant, events=[make_event(user="late")], source="passport")
        real_publish(contributions)

    monkeypatch.setattr(processing, "contributions_publish", publish_and_commit_one_more)

    # when the processing task's run (drain=False) handles them
    processed = processing_run_pending(drain=False)

    # then it took the 25 in three batches and stopped at the first that did not fill up, leaving the event
    # committed meanwhile queued (its own coalescing window enqueued a task for it)
    assert (processed, len(batches)) == (25, 3)
    assert _queued_events() == 1
    # while a full drain (the command, the tests) goes on until the queue is empty
    assert processing_run_pending() == 1
    assert _plays(tenant) == 26


def test_an_erased_fans_queued_events_are_never_counted(tenant: Tenant) -> None:
    # given one request with the subject's plays and another fan's, not processed yet
    events = [make_event(user="subject", at=HOUR0 + timedelta(minutes=i)) for i in range(3)]
    events += [make_event(user="fan-2", at=HOUR0 + timedelta(minutes=10 + i)) for i in range(2)]
    event_batch_ingest(tenant=tenant, events=events, source="passport")
    # and a later request with only the subject's plays, and one more after it
    event_batch_ingest(tenant=tenant, events=[make_event(user="subject")], source="passport")
    event_batch_ingest(tenant=tenant, events=[make_event(user="fan-3")], source="passport")
    # when the subject is erased, then processing runs in batches of one request
    assert subject_erase(tenant_id=tenant.pk, user_id="subject").events == 4
    first = processing_batch_run(limit=1)
    second = processing_batch_run(limit=1)
    # then only the other fans' plays are counted: the first batch counts fan-2's two, and the next one,
    # whose claimed request held only erased events, goes on to the following request instead of reporting
    # an empty queue
    assert (first, second) == (2, 1)
    assert processing_batch_run(limit=1) == 0
    assert _queued_events() == 0
    assert _plays(tenant) == 3


def test_a_bucket_recomputed_while_events_are_queued_counts_each_event_once(tenant: Tenant) -> None:
    # given 3 processed plays in an hour, and 2 more of that hour still queued, next to another tenant's
    # queued play of the same hour
    other = TenantFactory.create(plan="enterprise")
    _requests(tenant, 1, 3, user="done")
    processing_run_pending()
    _requests(tenant, 1, 2, user="queued")
    event_batch_ingest(tenant=other, events=[make_event(at=HOUR0 + timedelta(minutes=1))], source="passport")
    # when the hour is rebuilt from the log (a repair), then processing runs
    rollup_rebuild(tenant_id=tenant.pk, start=HOUR0, end=HOUR0 + timedelta(hours=1))
    rebuilt = _plays(tenant)
    processing_run_pending()
    # then the rebuild counted only the processed plays, and processing added the queued ones once
    assert rebuilt == 3
    assert _plays(tenant) == 5
    assert _plays(other) == 1
