"""End to end with a real Celery worker and no beat: events sent over the webhook, in a stream of requests
spanning several coalescing windows, all reach the rollups through the tasks those windows enqueued."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from coliseum.crypto import encrypt_secret
from coliseum.models import ApiKey
from ingestion.selectors import rollup_totals
from tests.factories import TenantFactory
from tests.ingestion.conftest import HOUR0, WEBHOOK_SECRET, make_event
from tests.ingestion.test_http import post_webhook
from tests.processes import celery_worker


def _queued_events() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(event_count), 0) FROM ingestion_pending")
        return int(cursor.fetchone()[0])


def _wait_until_drained(worker: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _queued_events():
        assert worker.poll() is None, log.read_text()[-2000:]
        time.sleep(0.2)
    assert _queued_events() == 0, log.read_text()[-2000:]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_real_worker_processes_every_request_without_the_sweep(
    raw_tables_cleanup: None, tmp_path: Path
) -> None:
    # given a Celery worker on this test's database and Redis, and no beat (so no sweep catches stragglers)
    tenant = TenantFactory.create(plan="enterprise")

    key = ApiKey.objects.create(
        tenant=tenant,
        kind="webhook",
        key_id=f"pk_{tenant.slug}",
        secret_encrypted=encrypt_secret(WEBHOOK_SECRET),
    )
    log = tmp_path / "worker.log"
    with celery_worker("celery,ingest", log) as worker:
        # when single-event requests arrive every 20 ms for about a second (several 200 ms windows)
        client = Client()
        # (a first event, once processed, shows the worker is consuming)
        assert post_webhook(client, key, make_event(user="fan-first", at=HOUR0)).status_code == 202
        sent = 1
        _wait_until_drained(worker, log)
        for i in range(50):
            event = make_event(user=f"fan-{i}", at=HOUR0, track_id="t1", artist_id="a1", duration_seconds=10)
            assert post_webhook(client, key, event).status_code == 202
            sent += 1
            time.sleep(0.02)

        # then every event is counted once, and nothing is left in the queue
        _wait_until_drained(worker, log)
        plays = rollup_totals(tenant_id=tenant.pk, metric="plays", start=None, end=None)
        assert sum(plays.values()) == sent
