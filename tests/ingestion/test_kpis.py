"""KPI endpoints end to end, and the official Segment Python library against a live server."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from rest_framework.test import APIClient

from coliseum.models import ApiKey, Artist, Tenant
from ingestion.selectors import kpi_series
from ingestion.services import event_batch_ingest, processing_run_pending
from tests.factories import MembershipFactory, TenantFactory
from tests.ingestion.conftest import HOUR0, WRITE_KEY, make_event

pytestmark = pytest.mark.clock


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
    # HOUR0 (10:00 UTC) is 05:00 or 06:00 in New York: one local day holds everything
    zone = ZoneInfo("America/New_York")
    day = HOUR0.date()
    response = _client_for(tenant).get(
        "/api/v1/kpis",
        {
            "period": "daily",
            "from": (day - timedelta(days=1)).isoformat(),
            "to": (day + timedelta(days=2)).isoformat(),
            "tz": "America/New_York",
            "metrics": "plays",
        },
    )
    body = response.json()
    assert response.status_code == 200
    assert [(p["bucket"][:10], p["plays"]) for p in body["series"]] == [
        ((day - timedelta(days=1)).isoformat(), 0),
        (day.isoformat(), 3),
        ((day + timedelta(days=1)).isoformat(), 0),
    ]
    # each bucket starts at local midnight, with New York's offset of that day
    midnight = datetime.combine(day - timedelta(days=1), time(), tzinfo=zone)
    assert datetime.fromisoformat(body["series"][0]["bucket"]) == midnight
    assert body["series"][0]["bucket"].endswith(midnight.isoformat()[-6:])


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


def _seed_purchases(tenant: Tenant) -> None:
    """Plays and purchases of two artists by four fans over three days, in two currencies: processing
    attributes each purchase to the fan's last touch of the artist (or to nothing)."""
    rng = random.Random(9)
    events = []
    for i in range(80):
        user, artist = f"fan-{rng.randrange(4)}", f"a{rng.randrange(1, 3)}"
        at = HOUR0 + timedelta(minutes=rng.randrange(0, 3 * 24 * 60))
        if rng.random() < 0.5:
            events.append(make_event(user=user, at=at, track_id="t1", artist_id=artist, duration_seconds=30))
        else:
            events.append(
                make_event(
                    "treasury.money_spent",
                    user=user,
                    at=at,
                    amount_minor=100 + i,
                    currency=rng.choice(["USD", "USD", "EUR"]),
                    reason="ticket",
                    artist_id=artist,
                )
            )
    event_batch_ingest(tenant=tenant, events=events, source="passport")
    processing_run_pending()


def _attributed_by_hour(tenant: Tenant, currency: str, artist_pk: int | None = None) -> dict[datetime, int]:
    """Brute force over the attributed conversions: money spent credited to a touch, per UTC hour."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conversion_type, touch_pk, currency, artist_id, conversion_at, amount_minor "
            "FROM funnels_attributedconversion WHERE tenant_id = %s",
            [tenant.pk],
        )
        rows = cursor.fetchall()
    out: dict[datetime, int] = {}
    for kind, touch, cur, artist, at, amount in rows:
        if kind == "treasury.money_spent" and touch is not None and cur == currency:
            if artist_pk is None or artist == artist_pk:
                hour = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
                out[hour] = out.get(hour, 0) + amount
    return out


def test_attributed_revenue_series_equals_a_brute_force_sum(tenant: Tenant) -> None:
    # given purchases, some credited to an earlier play of the same artist by the same fan
    _seed_purchases(tenant)
    by_hour = _attributed_by_hour(tenant, "USD")
    assert sum(by_hour.values()) > 0
    start, end = HOUR0, HOUR0 + timedelta(days=3)
    # when: hourly, gap-filled
    hourly = kpi_series(
        tenant_id=tenant.pk,
        metrics=["attributed_revenue", "money_spent"],
        period="hourly",
        start=start,
        end=end,
        currency="USD",
    )
    # then every bucket is the sum of that hour's attributed USD purchases, and never exceeds money spent
    assert len(hourly["series"]) == 72
    assert {
        datetime.fromisoformat(p["bucket"]): p["attributed_revenue"]
        for p in hourly["series"]
        if p["attributed_revenue"]
    } == by_hour
    assert hourly["totals"]["attributed_revenue"] == sum(by_hour.values())
    assert all(p["attributed_revenue"] <= p["money_spent"] for p in hourly["series"])
    # when: daily in New York, for one artist, in EUR
    artist = Artist.objects.get(tenant=tenant, external_id="a2")
    zone = ZoneInfo("America/New_York")
    daily = kpi_series(
        tenant_id=tenant.pk,
        metrics=["attributed_revenue"],
        period="daily",
        start=datetime.combine(HOUR0.date(), time(), tzinfo=zone),
        end=datetime.combine(HOUR0.date() + timedelta(days=4), time(), tzinfo=zone),
        tz="America/New_York",
        artist_id=artist.pk,
        currency="EUR",
    )
    # then each local day holds its hours' sums
    eur = _attributed_by_hour(tenant, "EUR", artist.pk)
    assert eur
    expected: dict[str, int] = {}
    for hour, amount in eur.items():
        day = hour.astimezone(zone).date().isoformat()
        expected[day] = expected.get(day, 0) + amount
    assert [p["bucket"][:10] for p in daily["series"]] == [
        (HOUR0.date() + timedelta(days=d)).isoformat() for d in range(4)
    ]
    assert {
        p["bucket"][:10]: p["attributed_revenue"] for p in daily["series"] if p["attributed_revenue"]
    } == (expected)
    assert daily["totals"]["attributed_revenue"] == sum(eur.values())


def test_kpi_api_offers_attributed_revenue_to_plans_with_funnels(tenant: Tenant) -> None:
    # given attributed purchases for an Enterprise tenant, and a Basic tenant
    _seed_purchases(tenant)
    window = {"from": HOUR0.isoformat(), "to": (HOUR0 + timedelta(days=3)).isoformat()}
    client = _client_for(tenant)
    # when
    series = client.get(
        "/api/v1/kpis",
        {**window, "period": "daily", "tz": "UTC", "metrics": "money_spent,attributed_revenue"},
    )
    summary = client.get("/api/v1/kpis/summary", window)
    # then both carry the metric, in the reporting currency, equal to the brute force
    expected = sum(_attributed_by_hour(tenant, "USD").values())
    assert series.status_code == 200, series.content
    assert series.json()["currency"] == "USD"
    assert series.json()["totals"]["attributed_revenue"] == expected
    assert sum(p["attributed_revenue"] for p in series.json()["series"]) == expected
    assert summary.json()["totals"]["attributed_revenue"] == expected
    # and the default series keeps its shape (the metric is asked for by name)
    assert "attributed_revenue" not in client.get("/api/v1/kpis", window).json()["totals"]
    # and a Basic tenant may not ask for it, nor sees it in the summary
    basic = _client_for(TenantFactory.create(plan="basic"))
    assert "attributed_revenue" not in basic.get("/api/v1/kpis/summary", window).json()["totals"]
    refused = basic.get("/api/v1/kpis", {**window, "metrics": "plays,attributed_revenue"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "plan_required"


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
