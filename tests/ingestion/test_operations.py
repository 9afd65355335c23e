"""Partitions, the processing trigger, health figures, retention."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.db import connection
from django_redis import get_redis_connection

from coliseum.models import Tenant
from ingestion.selectors import ingest_stats
from ingestion.services import event_batch_ingest
from ingestion.services.maintenance import (
    dedupe_keys_expire,
    partition_ensure,
    partitions_ensure,
    timescale_enabled,
)
from tests.ingestion.conftest import make_event


def _partition_of(event_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM ingestion_event WHERE event_id = %s", [event_id])
        return str(cursor.fetchone()[0])


@pytest.mark.timescale
def test_hypertable_when_timescaledb_is_installed(db: Any) -> None:
    if not timescale_enabled():
        pytest.skip("the timescaledb extension is not available on this PostgreSQL (plain partitions in use)")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = %s",
            ["ingestion_event"],
        )
        assert cursor.fetchone()[0] == 1


@pytest.mark.clock
def test_far_future_events_wait_in_default_then_move_to_their_month(tenant: Tenant) -> None:
    if timescale_enabled():
        pytest.skip("TimescaleDB manages chunks itself")
    # given an event in a month with no partition yet (May, five years from now)
    year = datetime.now(UTC).year + 5
    event = make_event(at=datetime(year, 5, 4, 12, tzinfo=UTC))
    event_batch_ingest(tenant=tenant, events=[event], source="passport")
    assert _partition_of(event["event_id"]) == "ingestion_event_default"
    # when that month's partition is created
    assert partition_ensure(month=date(year, 5, 1))
    # then the row moved into it, and nothing was lost
    assert _partition_of(event["event_id"]) == f"ingestion_event_{year}05"
    assert partitions_ensure(months_ahead=2) >= 0


def test_ingest_enqueues_one_processing_task_and_stats_count(
    tenant: Tenant, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ingestion.tasks.QUEUED_FLAG_TTL_MS", 60_000)  # a slow CI machine stays in one window
    redis = get_redis_connection("default")
    with django_capture_on_commit_callbacks(execute=True):
        event_batch_ingest(tenant=tenant, events=[make_event(), make_event()], source="passport")
    with django_capture_on_commit_callbacks(execute=True):
        event_batch_ingest(tenant=tenant, events=[make_event(), {"bad": 1}], source="passport")
    # one task queued for both requests (coalesced by the flag), on the default Celery queue
    assert redis.llen("celery") == 1
    stats = ingest_stats()
    assert stats["accepted_1m"] == 3
    assert stats["rejected_5m"] == 1
    assert stats["pending"] >= 3


def test_expired_dedupe_keys_are_dropped(tenant: Tenant) -> None:
    event_batch_ingest(tenant=tenant, events=[make_event()], source="passport")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ingestion_event_key SET received_at = now() - interval '40 days' WHERE tenant_id = %s",
            [tenant.pk],
        )
    assert dedupe_keys_expire(days=30) == 1
