"""The minute job: one history point per minute for the console, and alert evaluation."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient

from audit.tasks import ops_tick
from coliseum.ops.history import history_read, history_record
from coliseum.ops.requests import current_minute, request_record

pytestmark = pytest.mark.django_db


def test_the_tick_records_last_minutes_requests_once_per_minute(settings: SettingsWrapper) -> None:
    settings.OPS_WORKER_PING_TIMEOUT = 0.1
    if time.time() % 60 > 55:  # keep "the last full minute" the same minute for the whole test
        time.sleep(61 - time.time() % 60)
    # given 4 requests, one a 500, in the last full minute
    last_minute = (current_minute() - 1) * 60 + 1
    for status in (200, 200, 200, 500):
        request_record(group="kpis", status=status, seconds=0.05, now=last_minute)
    # when the job runs twice in the same minute
    first = ops_tick()
    ops_tick()
    # then the history holds one point for that minute with those figures
    points = [p for p in history_read() if p["t"] == first["point"]["t"]]
    assert len(points) == 1
    assert points[0]["requests"] == 4
    assert points[0]["error_rate"] == 0.25
    assert points[0]["p95_s"] is not None


def test_history_keeps_24_hours_only() -> None:
    now = time.time()
    minute = current_minute(now)
    history_record(point={"t": (minute - 25 * 60) * 60, "requests": 1})
    history_record(point={"t": (minute - 2) * 60, "requests": 2})
    assert [p["requests"] for p in history_read(now=now)] == [2]


def test_the_dashboard_endpoint_serves_figures_and_history_to_staff_only(
    staff_client: APIClient, web: Client
) -> None:
    history_record(point={"t": (current_minute() - 1) * 60, "requests": 3, "error_rate": 0.0})
    body = staff_client.get("/api/v1/admin/dashboard").json()
    assert body["health"]["database"]["ok"] is True
    assert [p["requests"] for p in body["history"]] == [3]
    assert web.get("/api/v1/admin/dashboard").status_code in (401, 403)


def test_the_tick_records_the_deepest_queue_and_the_live_workers(settings: SettingsWrapper) -> None:
    from coliseum.ops.redis import broker_redis

    settings.OPS_WORKER_PING_TIMEOUT = 0.1
    # given 3 tasks waiting on the ingest queue, 1 on reports, and no worker running
    broker = broker_redis()
    assert broker is not None
    broker.rpush("ingest", "a", "b", "c")
    broker.rpush("reports", "d")
    try:
        # when the job runs
        point = ops_tick()["point"]
    finally:
        broker.delete("ingest", "reports")
    # then the point holds the deepest queue (what the queue alert compares) and the live worker count
    assert point["queue_depth"] == 3
    assert point["workers"] == 0
    assert history_read()[-1]["queue_depth"] == 3
