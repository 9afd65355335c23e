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
from coliseum.rls import tenant_scope
from ingestion.catalog import METRICS
from ingestion.selectors import rollup_totals
from ingestion.services import event_batch_ingest, processing_run_pending
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
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%ingestion_rollup_hourly%'"
                ).fetchone()
                if row and row[0]:
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
    # then its batch is pending again and a rerun gives exact totals
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ingestion_pending")
        assert cursor.fetchone()[0] == 300
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
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM ingestion_pending")
                if cursor.fetchone()[0] == 0:
                    break
            time.sleep(0.2)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        errors = [w.communicate(timeout=30)[1] for w in workers]
    # then the queue drained, no worker failed, and totals are exact
    assert all(b"Traceback" not in e for e in errors), errors
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ingestion_pending")
        assert cursor.fetchone()[0] == 0
    _assert_exact(live_tenant)
