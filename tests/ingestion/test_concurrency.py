"""Races and crashes with real connections and real processes: parallel replays, a worker killed mid-batch,
four worker processes over one stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection, connections

from coliseum.models import Tenant
from coliseum.rls import system_scope, tenant_scope
from ingestion.catalog import METRICS
from ingestion.selectors import rollup_totals
from ingestion.services import event_batch_ingest, processing_run_pending
from ingestion.services.erasure import subject_erase
from tests.factories import TenantFactory
from tests.ingestion.conftest import HOUR0
from tests.ingestion.recount import recount

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def live_tenant(raw_tables_cleanup: None) -> Tenant:
    """Committed data (other connections and processes see it); raw tables emptied afterwards."""
    return TenantFactory.create(plan="enterprise")


def _stream(n: int, seed: int = 0) -> list[dict[str, Any]]:
    events = []
    for i in range(n):
        j = (i * 7919 + seed) % 97
        if j % 3 == 0:
            type_, props = (
                "coliseum.vote_cast",
                {"artist_id": f"a{j % 4}", "show_id": "s1", "round": 1 + j % 2},
            )
        else:
            type_, props = (
                "player.track_played",
                {"track_id": "t", "artist_id": f"a{j % 4}", "duration_seconds": j},
            )
        events.append(
            {
                "event_id": str(uuid.uuid4()),
                "type": type_,
                "occurred_at": (HOUR0 + timedelta(minutes=(i * 13) % 300, seconds=i % 60)).isoformat(),
                "user_id": f"u{i % 23}",
                "properties": props,
            }
        )
    return events


def _assert_exact(tenant: Tenant) -> None:
    expected = recount(tenant_id=tenant.pk)
    for metric in METRICS:
        got = rollup_totals(tenant_id=tenant.pk, metric=metric, start=None, end=None)
        assert got == expected.get(metric, {}), metric


def _queued_events() -> int:
    """Events waiting in the processing queue (a queue row holds one request's)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(event_count), 0) FROM ingestion_pending")
        return int(cursor.fetchone()[0])


def _wait_for(watcher: psycopg.Connection[Any], condition: str, what: str) -> None:
    """Until a session of the test database waits as `condition` (on pg_stat_activity) says."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # (an autocommit connection: pg_stat_activity is a snapshot inside a transaction)
        row = watcher.execute(
            f"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND {condition}"  # noqa: S608
        ).fetchone()
        if row and row[0]:
            return
        time.sleep(0.05)
    pytest.fail(f"never saw {what}")


def _worker_env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "coliseum.settings.test",
        "DATABASE_URL": f"postgres:///{connection.settings_dict['NAME']}",
        "PYTHONUNBUFFERED": "1",
    }


def test_parallel_replays_of_one_batch_log_it_once(live_tenant: Tenant) -> None:
    # given one batch sent by 4 clients at the same moment
    batch = _stream(200)
    barrier = threading.Barrier(4)
    results = []

    def send() -> None:
        barrier.wait()
        try:
            with tenant_scope(live_tenant.pk):  # a thread of its own: its own connection, as a request would
                results.append(event_batch_ingest(tenant=live_tenant, events=batch, source="passport"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then exactly one copy is logged, and the four answers add up
    assert sum(r.accepted for r in results) == 200
    assert sum(r.duplicates for r in results) == 600
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM ingestion_event WHERE tenant_id = %s",
            [live_tenant.pk],
        )
        assert cursor.fetchone() == (200, 200)
    processing_run_pending()
    _assert_exact(live_tenant)


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(live_tenant: Tenant) -> None:
    # given pending events, and the rollup table locked so a worker stalls inside its batch transaction
    event_batch_ingest(tenant=live_tenant, events=_stream(300), source="passport")
    dsn = f"dbname={connection.settings_dict['NAME']}"
    with psycopg.connect(dsn) as blocker, psycopg.connect(dsn, autocommit=True) as watcher:
        blocker.execute("LOCK TABLE ingestion_rollup_hourly IN EXCLUSIVE MODE")
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "process_events", "--quiet", "--batch-size", "100"],
            cwd=ROOT,
            env=_worker_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # wait until the worker has claimed a batch and is stuck on the lock
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                # (a separate autocommit connection: pg_stat_activity is a snapshot inside a transaction)
                row = watcher.execute(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%ingestion_rollup_hourly%'"
                ).fetchone()
                if row:
                    stalled = row[0]
                    break
                time.sleep(0.1)
            else:
                pytest.fail("the worker never reached the rollup upsert")
            # when it is killed mid-transaction
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
        finally:
            if worker.poll() is None:
                worker.kill()
        blocker.rollback()
        # (its server session ends once it finds the client gone; until then its rows stay locked)
        deadline = time.monotonic() + 30
        while watcher.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [stalled]).fetchone():
            assert time.monotonic() < deadline, "the killed worker's session never ended"
            time.sleep(0.05)
    # then its batch is pending again and a rerun gives exact totals
    assert _queued_events() == 300
    assert processing_run_pending() == 300
    _assert_exact(live_tenant)


@pytest.mark.slow
def test_four_worker_processes_over_one_stream_give_exact_totals(live_tenant: Tenant) -> None:
    # given a stream arriving while four processors run
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "process_events",
                "--quiet",
                "--follow",
                "--batch-size",
                "50",
                "--max-seconds",
                "120",
            ],
            cwd=ROOT,
            env=_worker_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    try:
        stream = _stream(3000, seed=5)
        for i in range(0, len(stream), 250):
            event_batch_ingest(tenant=live_tenant, events=stream[i : i + 250], source="passport")
            # a replay of the previous chunk with shifted times: duplicates must not count
            if i:
                event_batch_ingest(tenant=live_tenant, events=stream[i - 250 : i], source="passport")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if _queued_events() == 0:
                break
            time.sleep(0.2)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        errors = [w.communicate(timeout=30)[1] for w in workers]
    # then the queue drained, no worker failed, and totals are exact
    assert all(b"Traceback" not in e for e in errors), errors
    assert _queued_events() == 0
    _assert_exact(live_tenant)


def test_a_batch_waiting_on_an_erasure_does_not_count_the_erased_fans_events(live_tenant: Tenant) -> None:
    # given one request with the subject's plays and another fan's, still queued
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "type": "player.track_played",
            "occurred_at": (HOUR0 + timedelta(minutes=i)).isoformat(),
            "user_id": "subject" if i < 3 else "fan-2",
            "properties": {"track_id": "t", "artist_id": "a1", "duration_seconds": 10},
        }
        for i in range(5)
    ]
    assert event_batch_ingest(tenant=live_tenant, events=events, source="passport").accepted == 5
    results: dict[str, Any] = {}

    def erase() -> None:
        try:
            with system_scope("test: the privacy job"):
                results["erased"] = subject_erase(tenant_id=live_tenant.pk, user_id="subject").events
        finally:
            connections.close_all()

    def process() -> None:
        try:
            with system_scope("test: a processing worker"):
                results["processed"] = processing_run_pending()
        finally:
            connections.close_all()

    dsn = f"dbname={connection.settings_dict['NAME']}"
    with psycopg.connect(dsn) as blocker, psycopg.connect(dsn, autocommit=True) as watcher:
        # and an erasure of the subject that holds the tenant's lock and has deleted their log rows, but not
        # committed (it is held up by a lock on the traits table, which it deletes from next)
        blocker.execute("LOCK TABLE ingestion_person IN EXCLUSIVE MODE")
        eraser = threading.Thread(target=erase)
        eraser.start()
        _wait_for(watcher, "wait_event_type = 'Lock' AND query LIKE '%ingestion_person%'", "the erasure wait")
        # when a worker claims the queue row meanwhile: it waits for the tenant's lock
        worker = threading.Thread(target=process)
        worker.start()
        _wait_for(watcher, "wait_event = 'advisory'", "the worker wait for the tenant's lock")
        # and the erasure then commits
        blocker.rollback()
        eraser.join(timeout=60)
        worker.join(timeout=60)
    # then the worker counted only the other fan's plays, and every total equals a recount of the log
    assert results == {"erased": 3, "processed": 2}
    assert _queued_events() == 0
    assert sum(rollup_totals(tenant_id=live_tenant.pk, metric="plays", start=None, end=None).values()) == 2
    _assert_exact(live_tenant)
