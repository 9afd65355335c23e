"""Alerts fire once per firing and once on recovery: log, webhook (Slack-compatible)."""

from __future__ import annotations

import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient

from coliseum.ops.alerts import alerts_evaluate
from coliseum.ops.health import health_snapshot
from coliseum.ops.redis import broker_redis
from tests.ops.conftest import Webhook

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.ops.urls_boom")]


def _evaluate() -> list[str]:
    return [f"{t.rule}:{t.state}" for t in alerts_evaluate(snapshot=health_snapshot(ping_workers=False))]


def test_error_rate_alert_fires_once_and_recovers_once(
    settings: SettingsWrapper, web: Client, alert_webhook: Webhook, staff_client: APIClient
) -> None:
    settings.ALERT_WEBHOOK_URL = alert_webhook.url
    settings.OPS_ALERT_MIN_REQUESTS = 1
    # given a burst of errors
    for _ in range(3):
        assert web.get("/api/v1/kpis/boom").status_code == 500
    # when the evaluator runs twice
    assert _evaluate() == ["api_error_rate:firing"]
    assert _evaluate() == []
    # then the webhook heard it once, and the health endpoint lists it
    assert len(alert_webhook.posts) == 1
    assert "FIRING" in alert_webhook.posts[0]["text"]
    assert "5xx" in alert_webhook.posts[0]["text"]
    firing = staff_client.get("/api/v1/admin/health").json()
    assert [a["rule"] for a in firing["alerts"]] == ["api_error_rate"]
    assert firing["status"] == "degraded"
    # when enough good requests bring the share under 2% (3 of 200 is 1.5%)
    for _ in range(197):
        web.get("/api/v1/kpis/fine")
    assert _evaluate() == ["api_error_rate:recovered"]
    assert _evaluate() == []
    # then exactly one recovery message followed
    assert len(alert_webhook.posts) == 2
    assert "RECOVERED" in alert_webhook.posts[1]["text"]
    assert staff_client.get("/api/v1/admin/health").json()["alerts"] == []


def test_too_few_requests_do_not_fire_the_error_rate_alert(settings: SettingsWrapper, web: Client) -> None:
    settings.OPS_ALERT_MIN_REQUESTS = 20
    web.get("/api/v1/kpis/boom")
    assert _evaluate() == []


def test_queue_depth_alert_uses_its_configurable_threshold(
    settings: SettingsWrapper, alert_webhook: Webhook
) -> None:
    settings.ALERT_WEBHOOK_URL = alert_webhook.url
    settings.OPS_ALERT_QUEUE_DEPTH = 3
    broker = broker_redis()
    assert broker is not None
    broker.lpush("reports", "a", "b", "c")
    assert _evaluate() == []  # 3 is not above 3
    broker.lpush("reports", "d")
    assert _evaluate() == ["celery_queue_depth:firing"]
    assert "'reports' holds 4 messages" in alert_webhook.posts[0]["text"]
    broker.delete("reports")
    assert _evaluate() == ["celery_queue_depth:recovered"]
    assert len(alert_webhook.posts) == 2


def test_an_unreachable_webhook_does_not_break_evaluation(settings: SettingsWrapper, web: Client) -> None:
    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:9/nothing-listens-here"
    settings.OPS_ALERT_MIN_REQUESTS = 1
    web.get("/api/v1/kpis/boom")
    assert _evaluate() == ["api_error_rate:firing"]


def test_alerts_go_to_sentry_when_it_is_configured(settings: SettingsWrapper, web: Client) -> None:
    import sentry_sdk
    from sentry_sdk.envelope import Envelope
    from sentry_sdk.transport import Transport

    captured: list[str] = []

    class CapturingTransport(Transport):
        def capture_envelope(self, envelope: Envelope) -> None:
            for item in envelope.items:
                event = item.get_event()
                if event and event.get("message"):
                    captured.append(str(event["message"]))

    # given Sentry configured (its HTTP transport replaced by one that keeps the messages)
    settings.SENTRY_DSN = "http://public@127.0.0.1:9/1"
    settings.OPS_ALERT_MIN_REQUESTS = 1
    sentry_sdk.init(dsn=settings.SENTRY_DSN, transport=CapturingTransport, default_integrations=False)
    try:
        web.get("/api/v1/kpis/boom")
        # when the error-rate alert fires and is evaluated again
        _evaluate()
        _evaluate()
        sentry_sdk.flush()
    finally:
        sentry_sdk.init(dsn=None)
    # then Sentry got the firing message once
    assert len(captured) == 1
    assert captured[0].startswith(":rotating_light: FIRING API 5xx rate")


def test_an_unmeasurable_figure_neither_fires_nor_recovers(
    settings: SettingsWrapper, alert_webhook: Webhook
) -> None:
    settings.ALERT_WEBHOOK_URL = alert_webhook.url
    settings.OPS_ALERT_QUEUE_DEPTH = 1
    broker = broker_redis()
    assert broker is not None
    broker.lpush("celery", "a", "b")
    assert _evaluate() == ["celery_queue_depth:firing"]
    # when the queue depth cannot be measured (a broker we cannot LLEN), the alert stays as it was
    settings.CELERY_BROKER_URL = "amqp://guest@127.0.0.1:5672//"
    assert _evaluate() == []
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    broker.delete("celery")
    assert _evaluate() == ["celery_queue_depth:recovered"]
    assert len(alert_webhook.posts) == 2
