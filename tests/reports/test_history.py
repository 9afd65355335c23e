"""A change against the previous period needs history covering that whole period: a tenant with one day of
data before this week is "not enough history", not "+4,900%"."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from coliseum.models import Artist, Tenant
from ingestion.services import event_batch_ingest, processing_run_pending
from reports.data import artist_report_data, tenant_report_data
from reports.rendering import Branding, render_pdf
from tests.factories import TenantFactory
from tests.reports.conftest import pdf_text, rasterise_first_page

pytestmark = pytest.mark.django_db


def _plays(tenant: Tenant, times: list[datetime], prefix: str) -> None:
    events = [
        {
            "event_id": f"{prefix}-{n}",
            "type": "player.track_played",
            "occurred_at": at.isoformat(),
            "user_id": f"fan-{n}",
            "properties": {"track_id": "t1", "artist_id": "a1", "duration_seconds": 60},
        }
        for n, at in enumerate(times)
    ]
    result = event_batch_ingest(tenant=tenant, events=events, source="import")
    assert not result.rejected, result.rejected
    processing_run_pending()


def _week() -> tuple[date, date]:
    today = datetime.now(UTC).date()
    return today - timedelta(days=6), today


def _noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


@pytest.fixture
def young_tenant() -> Tenant:
    """Data from the previous week's last day only, then 50 plays this week (the old "+4,900%")."""
    tenant = TenantFactory.create(plan="enterprise", name="New Club", reporting_currency="EUR")
    start, _ = _week()
    _plays(tenant, [_noon(start - timedelta(days=1))], "old")
    _plays(tenant, [_noon(start + timedelta(days=i % 6)) for i in range(50)], "new")
    return tenant


def test_a_tenant_younger_than_the_previous_period_gets_no_percentage(young_tenant: Tenant) -> None:
    start, end = _week()

    data = tenant_report_data(tenant=young_tenant, start_day=start, end_day=end)

    assert data["totals"]["plays"] == 50 and data["previous_totals"]["plays"] == 1
    assert data["change"]["plays"] == {"absolute": 49, "percent": None, "enough_history": False}
    assert data["previous_period"]["enough_history"] is False
    assert all(m["percent"] is None for m in data["top_movers"])


def test_history_covering_the_previous_period_gives_the_percentage(young_tenant: Tenant) -> None:
    start, end = _week()
    _plays(young_tenant, [_noon(start - timedelta(days=30))], "older")

    data = tenant_report_data(tenant=young_tenant, start_day=start, end_day=end)

    assert data["change"]["plays"] == {"absolute": 49, "percent": 4900.0, "enough_history": True}
    assert data["previous_period"]["enough_history"] is True


def test_the_pdf_says_not_enough_history_instead_of_a_huge_percentage(
    young_tenant: Tenant, tmp_path: Path
) -> None:
    start, end = _week()
    artist = Artist.objects.get(tenant=young_tenant, external_id="a1")
    data: dict[str, Any] = artist_report_data(
        tenant=young_tenant, artist_id=artist.pk, start_day=start, end_day=end
    )

    pdf = render_pdf(data, Branding(qr_url="https://coliseum.test/r/token"))
    rasterise_first_page(pdf, "report_not_enough_history")
    text = pdf_text(pdf, tmp_path)

    flat = " ".join(text.split())
    assert "not enough history: the data starts after this period began" in flat
    assert "not enough history to compare" in flat
    assert "4,900" not in text and "4900" not in text
