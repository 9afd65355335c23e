"""Ingest load moves the health figures (events/s, rejects, lag) and the lag alert fires and recovers."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient

from coliseum.ops.alerts import alerts_evaluate
from coliseum.ops.health import health_snapshot
from ingestion.services import event_batch_ingest, processing_run_pending
from tests.factories import TenantFactory, UserFactory
from tests.ops.conftest import Webhook


def _plays(n: int) -> list[dict[str, Any]]:
    now = timezone.now().isoformat()
    return [
        {
            "event_id": str(uuid.uuid4()),
            "type": "player.track_played",
            "occurred_at": now,
            "user_id": f"fan-{i % 5}",
            "properties": {"track_id": "t1", "artist_id": "artist-1", "duration_seconds": 30},
        }
        for i in range(n)
    ]


@pytest.mark.django_db(transaction=True)  # lag is measured with now(): it needs real commits between steps
def test_ingest_load_moves_health_figures_and_the_lag_alert_fires_and_recovers(
    settings: SettingsWrapper, alert_webhook: Webhook
) -> None:
    settings.ALERT_WEBHOOK_URL = alert_webhook.url
    settings.OPS_ALERT_INGEST_LAG_SECONDS = 0.5
    tenant = TenantFactory.create()
    staff = APIClient()
    staff.force_authenticate(UserFactory.create(is_staff=True))
    # given 30 good events and 2 malformed ones, left unprocessed for over a second
    result = event_batch_ingest(tenant=tenant, events=[*_plays(30), {"type": "nope"}, {}], source="passport")
    assert (result.accepted, len(result.rejected)) == (30, 2)
    time.sleep(1.2)
    # when the operator looks at health
    ingest = staff.get("/api/v1/admin/health").json()["ingest"]
    # then the accepted, rate, reject and lag figures moved
    assert ingest["accepted_1m"] == 30
    assert ingest["events_per_second_1m"] == 0.5
    assert ingest["rejected_5m"] == 2
    assert ingest["pending"] == 30
    assert ingest["lag_seconds"] >= 1.0
    # and the lag alert fires once
    assert [t.rule for t in alerts_evaluate(snapshot=health_snapshot(ping_workers=False))] == [
        "ingest_lag_seconds"
    ]
    assert alerts_evaluate(snapshot=health_snapshot(ping_workers=False)) == []
    # when the processor catches up
    processing_run_pending()
    # then the lag is gone and the alert recovers once
    assert staff.get("/api/v1/admin/health").json()["ingest"]["lag_seconds"] == 0.0
    recovered = alerts_evaluate(snapshot=health_snapshot(ping_workers=False))
    assert [(t.rule, t.state) for t in recovered] == [("ingest_lag_seconds", "recovered")]
    assert [p["text"].split()[1] for p in alert_webhook.posts] == ["FIRING", "RECOVERED"]
