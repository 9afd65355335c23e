"""GET /api/v1/admin/health: the figures move when load and errors are injected."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from coliseum.ops.redis import broker_redis
from tests.factories import MembershipFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.ops.urls_boom")]


def test_health_is_for_staff_only(api_client: APIClient) -> None:
    assert api_client.get("/api/v1/admin/health").status_code == 401
    owner = MembershipFactory.create().user
    api_client.force_authenticate(owner)
    response = api_client.get("/api/v1/admin/health")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_health_reports_database_redis_queues_and_thresholds(staff_client: APIClient) -> None:
    body = staff_client.get("/api/v1/admin/health").json()
    assert body["database"]["ok"] is True
    assert body["redis"]["ok"] is True
    assert set(body["celery"]["queues"]) == {"celery", "ingest", "reports"}
    assert body["celery"]["live_workers"] == 0  # no worker runs during tests
    assert body["thresholds"] == {
        "api_error_rate": 0.02,
        "celery_queue_depth": 1000.0,
        "api_p95_seconds": 30.0,
        "ingest_lag_seconds": 60.0,
    }
    assert body["alerts"] == []
    assert body["status"] == "ok"


def test_injected_load_and_errors_move_the_api_figures(staff_client: APIClient, web: Client) -> None:
    # given a quiet system
    before = staff_client.get("/api/v1/admin/health").json()["api"]["groups"]
    assert before["kpis"]["requests"] == 0
    # when 6 KPI requests succeed, 2 fail with a 500 and 3 ingest requests succeed
    for _ in range(6):
        assert web.get("/api/v1/kpis/fine").status_code == 200
    for _ in range(2):
        assert web.get("/api/v1/kpis/boom").status_code == 500
    for _ in range(3):
        assert web.get("/webhooks/fine").status_code == 200
    # then the health figures count them per group, with the 5xx share and latency percentiles
    api = staff_client.get("/api/v1/admin/health").json()["api"]
    kpis = api["groups"]["kpis"]
    assert (kpis["requests"], kpis["errors_5xx"]) == (8, 2)
    assert kpis["error_rate"] == 0.25
    assert (
        kpis["p50_seconds"] is not None and kpis["p50_seconds"] <= kpis["p95_seconds"] <= kpis["p99_seconds"]
    )
    assert api["groups"]["ingest"]["requests"] == 3
    assert api["groups"]["ingest"]["errors_5xx"] == 0
    # the health requests themselves count under "admin"
    assert api["groups"]["admin"]["requests"] >= 1
    assert api["errors_5xx"] == 2
    assert api["requests"] >= 12


def test_queue_depth_follows_the_broker_queue(staff_client: APIClient) -> None:
    broker = broker_redis()
    assert broker is not None
    broker.lpush("ingest", *[f"msg-{i}" for i in range(5)])
    queues = staff_client.get("/api/v1/admin/health").json()["celery"]["queues"]
    assert queues["ingest"] == 5
    assert queues["reports"] == 0
