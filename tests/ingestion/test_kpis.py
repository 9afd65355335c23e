"""KPI endpoints end to end, and the official Segment Python library against a live server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from coliseum.models import ApiKey, Tenant
from ingestion.services import event_batch_ingest, processing_run_pending
from tests.factories import MembershipFactory, TenantFactory
from tests.ingestion.conftest import HOUR0, WRITE_KEY, make_event


def _client_for(tenant: Tenant) -> APIClient:
    membership = MembershipFactory.create(tenant=tenant, role="viewer")
    client = APIClient()
    client.force_authenticate(membership.user)
    client.credentials(HTTP_X_TENANT=tenant.slug)
    return client


def _seed(tenant: Tenant) -> None:
    events = [
        make_event(user="u1", at=HOUR0 + timedelta(minutes=1)),
        make_event(user="u2", at=HOUR0 + timedelta(minutes=2)),
        make_event(user="u1", at=HOUR0 + timedelta(hours=2, minutes=3)),
        make_event("social.artist_followed", user="u3", at=HOUR0 + timedelta(hours=2), artist_id="a1"),
        make_event(
            "treasury.money_spent", at=HOUR0, amount_minor=250, currency="USD", reason="tip", artist_id="a1"
        ),
        make_event(
            "treasury.money_spent", at=HOUR0, amount_minor=999, currency="EUR", reason="tip", artist_id="a1"
        ),
    ]
    event_batch_ingest(tenant=tenant, events=events, source="passport")
    processing_run_pending()


def test_hourly_series_is_gap_filled_with_exact_totals(tenant: Tenant) -> None:
    _seed(tenant)
    response = _client_for(tenant).get(
        "/api/v1/kpis",
        {
            "artist_id": "a1",
            "period": "hourly",
            "from": HOUR0.isoformat(),
            "to": (HOUR0 + timedelta(hours=4)).isoformat(),
            "metrics": "plays,unique_listeners,follows,money_spent",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert [p["plays"] for p in body["series"]] == [2, 0, 1, 0]
    assert [p["unique_listeners"] for p in body["series"]] == [2, 0, 1, 0]
    assert body["totals"] == {"plays": 3, "unique_listeners": 2, "follows": 1, "money_spent": 250}
    assert body["artist"] == {"id": "a1", "name": "a1"}


def test_daily_series_follows_the_requested_time_zone(tenant: Tenant) -> None:
    _seed(tenant)
    # 10:00 UTC on Nov 20 is 05:00 in New York: one local day holds everything
    response = _client_for(tenant).get(
        "/api/v1/kpis",
        {
            "period": "daily",
            "from": "2026-11-19",
            "to": "2026-11-22",
            "tz": "America/New_York",
            "metrics": "plays",
        },
    )
    body = response.json()
    assert response.status_code == 200
    assert [(p["bucket"][:10], p["plays"]) for p in body["series"]] == [
        ("2026-11-19", 0),
        ("2026-11-20", 3),
        ("2026-11-21", 0),
    ]
    assert body["series"][0]["bucket"].endswith("-05:00")


def test_kpi_errors_and_tenant_isolation(tenant: Tenant) -> None:
    _seed(tenant)
    other = TenantFactory.create(plan="enterprise")
    event_batch_ingest(
        tenant=other,
        events=[make_event(user="x", track_id="t", artist_id="other-artist", duration_seconds=1)],
        source="passport",
    )
    client = _client_for(tenant)
    assert client.get("/api/v1/kpis", {"artist_id": "other-artist"}).status_code == 404
    assert client.get("/api/v1/kpis", {"metrics": "plays,bogus"}).status_code == 400
    assert client.get("/api/v1/kpis", {"from": "yesterday"}).status_code == 400
    assert (
        client.get("/api/v1/kpis", {"period": "hourly", "from": "2020-01-01", "to": "2026-01-01"}).status_code
        == 400
    )
    basic = TenantFactory.create(plan="basic")
    gated = _client_for(basic).get("/api/v1/kpis", {"period": "hourly"})
    assert gated.status_code == 403
    assert gated.json()["error"]["code"] == "plan_required"
    assert APIClient().get("/api/v1/kpis").status_code == 401


def test_summary_gives_totals_and_movers(tenant: Tenant) -> None:
    _seed(tenant)
    response = _client_for(tenant).get(
        "/api/v1/kpis/summary", {"from": HOUR0.isoformat(), "to": (HOUR0 + timedelta(days=1)).isoformat()}
    )
    body = response.json()
    assert response.status_code == 200
    assert body["totals"]["plays"] == 3
    assert body["totals"]["money_spent"] == 250  # reporting currency USD
    assert body["movers"]["items"][0] == {
        "artist_id": "a1",
        "name": "a1",
        "value": 3,
        "previous": 0,
        "change": 3,
    }


def test_ingestion_endpoints_are_in_the_openapi_schema(db: Any) -> None:
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    paths = response.json()["paths"] if response["Content-Type"].startswith("application/json") else None
    if paths is None:
        import yaml  # type: ignore[import-untyped]

        paths = yaml.safe_load(response.content)["paths"]
    for path in (
        "/webhooks/passport/events",
        "/v1/track",
        "/v1/identify",
        "/v1/batch",
        "/v1/import",
        "/api/v1/events/catalog",
        "/api/v1/kpis",
        "/api/v1/kpis/summary",
    ):
        assert path in paths, path


@pytest.mark.slow
def test_official_segment_library_delivers_events_to_the_kpis(
    live_server: Any, raw_tables_cleanup: None
) -> None:
    from segment.analytics.client import Client

    tenant = TenantFactory.create(plan="enterprise")
    ApiKey.objects.create(
        tenant=tenant, kind="write", key_id="wk_segment_lib", secret_digest=_digest(WRITE_KEY)
    )
    errors: list[Any] = []
    analytics = Client(
        write_key=WRITE_KEY,
        host=live_server.url,
        sync_mode=True,
        gzip=True,
        on_error=lambda e, b: errors.append(e),
    )
    played_at = datetime.now(UTC) - timedelta(minutes=5)
    for user in ("fan-a", "fan-b", "fan-a"):
        analytics.track(
            user_id=user,
            event="player.track_played",
            properties={"trackId": "t1", "artistId": "lib-artist", "durationSeconds": 42},
            timestamp=played_at,
        )
    analytics.identify(user_id="fan-a", traits={"favourite": "fado"})
    analytics.flush()
    assert errors == []
    processing_run_pending()
    client = _client_for(tenant)
    body = client.get("/api/v1/kpis", {"artist_id": "lib-artist", "period": "daily", "tz": "UTC"}).json()
    assert body["totals"]["plays"] == 3
    assert body["totals"]["unique_listeners"] == 2
    assert body["totals"]["listen_seconds"] == 126


def _digest(raw: str) -> str:
    from coliseum.crypto import digest_secret

    return digest_secret(raw)
