"""The subscription page's usage figures move when the tenant really ingests events and requests reports."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from billing.selectors import usage_this_period
from coliseum.models import Plan, Role
from ingestion.services import event_batch_ingest
from tests.factories import MembershipFactory, TenantFactory


def _play(artist: str) -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "player.track_played",
        "occurred_at": datetime.now(UTC).isoformat(),
        "user_id": "fan-1",
        "properties": {"track_id": "t1", "artist_id": artist, "duration_seconds": 30},
    }


@pytest.mark.django_db
def test_accepted_events_count_towards_this_months_usage_and_duplicates_do_not():
    tenant = TenantFactory.create(plan=Plan.PRO)
    events = [_play("a1"), _play("a2")]

    event_batch_ingest(tenant=tenant, events=events, source="passport")
    event_batch_ingest(tenant=tenant, events=events, source="passport")  # a replay

    assert usage_this_period(tenant)["events"] == 2


@pytest.mark.django_db
def test_a_requested_report_counts_towards_this_months_usage(api_client, django_capture_on_commit_callbacks):
    membership = MembershipFactory.create(role=Role.OWNER, tenant=TenantFactory.create(plan=Plan.PRO))
    api_client.force_authenticate(membership.user)

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            "/api/v1/reports",
            {"kind": "tenant", "format": "json", "from": "2026-01-01", "to": "2026-01-31"},
            format="json",
        )

    assert response.status_code == 202, response.content
    assert usage_this_period(membership.tenant)["reports"] == 1
