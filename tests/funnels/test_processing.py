"""Attribution runs inside the processor's batch transaction: ingesting and processing is enough."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coliseum.models import Tenant
from ingestion.funnels.models import AttributedConversion
from ingestion.services import event_batch_ingest, processing_run_pending
from tests.funnels.conftest import event

pytestmark = pytest.mark.clock


def test_processing_attributes_conversions_and_late_touches(tenant: Tenant) -> None:
    # given a play and a purchase, ingested and processed (no direct call of attribution)
    play = event("player.track_played", at=timedelta(days=-3))
    spend = event("treasury.money_spent", amount_minor=900, currency="EUR")
    event_batch_ingest(tenant=tenant, events=[play, spend], source="passport")
    processing_run_pending()
    row = AttributedConversion.objects.get(tenant=tenant)
    assert (row.touch_event_id, row.amount_minor) == (play["event_id"], 900)
    # when a share from an hour before the purchase arrives late
    share = event("social.track_shared", at=timedelta(hours=-1))
    event_batch_ingest(tenant=tenant, events=[share], source="passport")
    processing_run_pending()
    # then the processor re-attributed the purchase
    row.refresh_from_db()
    assert (row.touch_event_id, row.touch_type) == (share["event_id"], "social.track_shared")
