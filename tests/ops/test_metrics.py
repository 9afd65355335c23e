"""GET /metrics: Prometheus text that the official parser reads; guarded by a token or an allowlist."""

from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pytest_django.fixtures import Settings as SettingsWrapper

from coliseum.ops.redis import broker_redis
from coliseum.ops.requests import counter_incr

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.ops.urls_boom")]
TOKEN = "metrics-token-for-tests-0123456789"


def _samples(client: Client) -> dict[str, list[Sample]]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    families = text_string_to_metric_families(response.content.decode())
    return {family.name: family.samples for family in families}


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [
        s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (name, labels)
    return found[0]


def test_metrics_parse_and_count_requests_queues_and_board_updates(
    settings: SettingsWrapper, web: Client
) -> None:
    settings.METRICS_TOKEN = TOKEN
    # given some traffic, a queue backlog and a counter another app bumped
    for _ in range(4):
        web.get("/api/v1/kpis/fine")
    web.get("/api/v1/kpis/boom")
    broker = broker_redis()
    assert broker is not None
    broker.lpush("celery", "x", "y")
    counter_incr(name="board_updates", amount=7)
    # when Prometheus scrapes
    families = _samples(web)
    # then the histogram, counters and gauges carry those figures
    duration = families["coliseum_http_request_duration_seconds"]
    assert _value(duration, "coliseum_http_request_duration_seconds_count", group="kpis") == 5
    assert _value(duration, "coliseum_http_request_duration_seconds_bucket", group="kpis", le="+Inf") == 5
    requests = families["coliseum_http_requests"]
    assert _value(requests, "coliseum_http_requests_total", group="kpis", status="2xx") == 4
    assert _value(requests, "coliseum_http_requests_total", group="kpis", status="5xx") == 1
    assert (
        _value(families["coliseum_celery_queue_length"], "coliseum_celery_queue_length", queue="celery") == 2
    )
    assert _value(families["coliseum_board_updates"], "coliseum_board_updates_total") == 7
    up = families["coliseum_dependency_up"]
    assert _value(up, "coliseum_dependency_up", dependency="database") == 1
    assert _value(up, "coliseum_dependency_up", dependency="redis") == 1
    # and a second scrape sees the first scrape counted (counters only grow)
    again = _samples(web)["coliseum_http_requests"]
    assert _value(again, "coliseum_http_requests_total", group="other", status="2xx") >= 1


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}"])
def test_metrics_refuse_a_missing_or_wrong_token(settings: SettingsWrapper, header: str | None) -> None:
    settings.METRICS_TOKEN = TOKEN
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = Client(REMOTE_ADDR="203.0.113.9").get("/metrics", **extra)  # type: ignore[arg-type]
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "metrics_forbidden"


def test_metrics_ip_allowlist_accepts_networks_and_refuses_others(settings: SettingsWrapper) -> None:
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "192.0.2.7"]
    assert Client(REMOTE_ADDR="10.20.30.40").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="192.0.2.7").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="192.0.2.8").get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403  # loopback is not implied


def test_metrics_without_configuration_answer_nobody(settings: SettingsWrapper) -> None:
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = []
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="198.51.100.1").get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_board_updates_on_metrics_follow_processed_events(settings: SettingsWrapper, web: Client) -> None:
    import uuid
    from datetime import UTC, datetime

    from coliseum.models import Plan
    from ingestion.services import event_batch_ingest, processing_run_pending
    from tests.factories import TenantFactory

    settings.METRICS_TOKEN = TOKEN
    # given three plays of two artists, processed into the boards
    tenant = TenantFactory.create(plan=Plan.PRO)
    now = datetime.now(UTC).isoformat()
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "type": "player.track_played",
            "occurred_at": now,
            "user_id": f"fan-{i}",
            "properties": {"track_id": "t", "artist_id": artist, "duration_seconds": 60},
        }
        for i, artist in enumerate(["a1", "a1", "a2"])
    ]
    event_batch_ingest(tenant=tenant, events=events, source="passport")
    processing_run_pending()
    # when Prometheus scrapes, then the board update counter has moved
    updates = _value(_samples(web)["coliseum_board_updates"], "coliseum_board_updates_total")
    assert updates > 0
