"""The processor's claim and drain: a batch takes at most its size whatever the queue table's statistics say,
and a drain that finds a backlog asks for a helper once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import connection

from coliseum.models import Tenant
from ingestion.selectors import rollup_totals
from ingestion.services import event_batch_ingest, processing_batch_run, processing_run_pending
from tests.ingestion.conftest import HOUR0, make_event


def _pending() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ingestion_pending")
        return int(cursor.fetchone()[0])


def test_a_batch_claims_at_most_its_size_after_the_queue_was_analyzed_empty(tenant: Tenant) -> None:
    # given a queue whose statistics say it is empty (autovacuum analyzes a drained queue often), which once
    # made the planner re-run the locking subquery per queue row and claim everything in one "batch"
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ingestion_pending")
    # and 50 plays queued after that
    events = [make_event(user=f"fan-{i}", at=HOUR0 + timedelta(seconds=i)) for i in range(50)]
    event_batch_ingest(tenant=tenant, events=events, source="passport")
    # when one batch of 20 is processed
    claimed = processing_batch_run(limit=20)
    # then it took 20 events, counted them, and left the other 30 queued
    assert claimed == 20
    assert _pending() == 30
    assert sum(rollup_totals(tenant_id=tenant.pk, metric="plays", start=None, end=None).values()) == 20
    # and the next batches take the rest exactly once
    assert processing_batch_run(limit=20) + processing_batch_run(limit=20) == 30
    assert _pending() == 0
    assert sum(rollup_totals(tenant_id=tenant.pk, metric="plays", start=None, end=None).values()) == 50


def test_a_drain_asks_for_help_once_when_it_finds_a_backlog(tenant: Tenant, settings: Any) -> None:
    # given a backlog of 25 events and batches of 10
    settings.INGEST_PROCESS_BATCH_SIZE = 10
    events = [make_event(user=f"fan-{i}", at=HOUR0 + timedelta(seconds=i)) for i in range(25)]
    event_batch_ingest(tenant=tenant, events=events, source="passport")
    calls: list[int] = []
    # when one drain processes it
    processed = processing_run_pending(on_backlog=lambda: calls.append(_pending()))
    # then it asked for a helper once, after its first (full) batch, and drained everything
    assert calls == [15]
    assert processed == 25
    assert _pending() == 0


def test_a_drain_without_a_backlog_asks_for_no_help(tenant: Tenant) -> None:
    event_batch_ingest(tenant=tenant, events=[make_event()], source="passport")
    calls: list[int] = []
    assert processing_run_pending(on_backlog=lambda: calls.append(1)) == 1
    assert calls == []
