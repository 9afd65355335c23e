"""The numbers: events go through ingestion's one write path; the report's figures equal the raw counts,
GET /api/v1/kpis and GET /api/v1/leaderboards for the same period."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st
from rest_framework.test import APIClient

from coliseum.models import Artist, Role, Show
from ingestion.services import event_batch_ingest, processing_run_pending
from reports.data import artist_report_data
from tests.factories import MembershipFactory, TenantFactory
from tests.reports.conftest import pdf_text, period, rasterise_first_page, render

pytestmark = [pytest.mark.django_db, pytest.mark.clock]


@pytest.fixture(autouse=True)
def _fresh_boards(settings: Any) -> None:
    settings.LEADERBOARD_CACHE_SECONDS = 0


def _event(n: int, type_: str, at: datetime, user: str, **properties: Any) -> dict[str, Any]:
    return {"event_id": f"rep-{n}", "type": type_, "occurred_at": at.isoformat(), "user_id": user,
            "properties": properties}  # fmt: skip


@pytest.fixture
def world() -> dict[str, Any]:
    """An Enterprise tenant with two artists, one show and a known set of events over the last two days."""
    tenant = TenantFactory.create(plan="enterprise", name="Lisbon Live", reporting_currency="EUR")
    now = datetime.now(UTC).replace(microsecond=0)
    recent, older = now - timedelta(minutes=30), now - timedelta(hours=26)
    play = "player.track_played"
    events = [
        _event(1, play, recent, "f1", track_id="t1", artist_id="a1", duration_seconds=200, city="Lisbon"),
        _event(2, play, recent, "f2", track_id="t1", artist_id="a1", duration_seconds=100, city="Lisbon"),
        _event(3, play, older, "f1", track_id="t2", artist_id="a1", duration_seconds=60, city="Porto"),
        _event(4, play, older, "f3", track_id="t2", artist_id="a1", duration_seconds=60, city="Lisbon"),
        _event(5, play, recent, "f1", track_id="t9", artist_id="a2", duration_seconds=30, city="Lisbon"),
        _event(6, "coliseum.vote_cast", recent, "f1", artist_id="a1", show_id="s1", round=1, weight=2),
        _event(7, "coliseum.vote_cast", recent, "f2", artist_id="a2", show_id="s1", round=1),
        _event(8, "coliseum.vote_cast", recent, "f3", artist_id="a1", show_id="s1", round=1),
        _event(9, "treasury.money_earned", older, "f2", amount_minor=1250, currency="EUR", reason="tip",
               artist_id="a1"),
    ]  # fmt: skip
    result = event_batch_ingest(tenant=tenant, events=events, source="import")
    assert not result.rejected, result.rejected
    processing_run_pending()
    a1 = Artist.objects.get(tenant=tenant, external_id="a1")
    a1.name, a1.genres = "Maria Lua", ["fado"]
    a1.save()
    show = Show.objects.get(tenant=tenant, external_id="s1")
    show.title, show.city = "Coliseu Night", "Lisbon"
    show.save()
    show.lineup.add(a1, Artist.objects.get(tenant=tenant, external_id="a2"))
    client = APIClient()
    client.force_authenticate(MembershipFactory.create(tenant=tenant, role=Role.OWNER).user)
    return {"tenant": tenant, "client": client, "a1": a1, "show": show}


def kpi_query(start: str, end: str, **extra: str) -> dict[str, str]:
    to = (date.fromisoformat(end) + timedelta(days=1)).isoformat()
    return {"period": "daily", "from": start, "to": to, **extra}


def _report_json(client: APIClient, payload: dict[str, Any]) -> dict[str, Any]:
    report_id = client.post("/api/v1/reports", {**payload, "format": "json"}, format="json").json()["id"]
    assert render(report_id).status == "ready"
    response = client.get(f"/api/v1/reports/{report_id}/download")
    return json.loads(b"".join(response.streaming_content))  # type: ignore[attr-defined,no-any-return]


def test_artist_report_equals_raw_counts_kpis_and_leaderboard(world: dict[str, Any], tmp_path: Path) -> None:
    client: APIClient = world["client"]
    a1: Artist = world["a1"]
    start, end = period(7)
    payload = {"kind": "artist", "artist_id": a1.pk, "from": start, "to": end}

    # when the artist's JSON report is rendered
    data = _report_json(client, payload)

    # then its totals are the raw counts of what was ingested
    totals = data["totals"]
    assert totals["plays"] == 4
    assert totals["listen_seconds"] == 420
    assert totals["unique_listeners"] == 3
    assert totals["votes"] == 3  # weighted: 2 + 1
    assert totals["money_earned"] == 1250
    assert sum(day["plays"] for day in data["daily"]) == 4 and len(data["daily"]) == 7

    # and they equal what GET /api/v1/kpis answers for the same days (its `to` is exclusive)
    kpis = client.get("/api/v1/kpis", kpi_query(start, end, artist_id="a1", metrics=",".join(totals))).json()
    assert kpis["totals"] == totals
    assert [row["plays"] for row in kpis["series"]] == [day["plays"] for day in data["daily"]]
    assert [row["money_earned"] for row in kpis["series"]] == [day["money_earned"] for day in data["daily"]]

    # and the ranks are the leaderboard API's
    window = data["ranks"]["window"]
    board = client.get("/api/v1/leaderboards", {"metric": "plays", "window": window}).json()
    api_rank = next(e["rank"] for e in board["entries"] if e["artist_id"] == a1.pk)
    assert data["ranks"]["overall"]["plays"]["rank"] == api_rank == 1
    assert data["top_cities"][0] == {"city": "Lisbon", "plays": 3}
    assert data["votes_per_show"][0]["votes"] == 3

    # and the PDF of the same request prints the same figures
    report_id = client.post("/api/v1/reports", {**payload, "format": "pdf"}, format="json").json()["id"]
    render(report_id)
    pdf = b"".join(client.get(f"/api/v1/reports/{report_id}/download").streaming_content)  # type: ignore[attr-defined]
    text = pdf_text(pdf, tmp_path)
    assert "Maria Lua" in text and "EUR 12.50" in text and "Coliseu Night" in text
    rasterise_first_page(pdf, "report_artist_real_data")


def test_show_and_tenant_reports_agree_with_the_votes_and_kpis(world: dict[str, Any]) -> None:
    client: APIClient = world["client"]
    start, end = period(7)

    show = _report_json(client, {"kind": "show", "show_id": world["show"].pk, "from": start, "to": end})
    round_one = show["rounds"][0]
    assert round_one["round"] == 1
    assert {v["artist"]: v["votes"] for v in round_one["votes"]}["Maria Lua"] == 3
    assert round_one["winner"]["artist"] == "Maria Lua"
    standings = client.get(f"/api/v1/shows/{world['show'].pk}/standings").json()
    api_votes = {e["artist_id"]: e["votes"] for e in standings["rounds"][0]["entries"]}
    assert {v["artist_id"]: v["votes"] for v in round_one["votes"]} == api_votes
    assert show["totals"]["votes"] == 4

    overall = _report_json(client, {"kind": "tenant", "from": start, "to": end})
    assert overall["totals"]["plays"] == 5
    assert overall["totals"]["unique_listeners"] == 3
    kpis = client.get("/api/v1/kpis", kpi_query(start, end)).json()
    assert kpis["totals"] == overall["totals"]
    assert overall["top_artists"]["plays"][0] == {
        "artist_id": world["a1"].pk,
        "artist": "Maria Lua",
        "value": 4,
    }
    assert sum(day["events"] for day in overall["daily"]) == 5 + 4  # plays + weighted votes


def test_artist_report_attribution_equals_the_attribution_api(world: dict[str, Any], tmp_path: Path) -> None:
    # given purchases of Maria Lua's: one after a play by the same fan, one after a campaign-tagged follow,
    # one by a fan who never touched her (the votes in `world` follow plays at the same instant)
    client: APIClient = world["client"]
    now = datetime.now(UTC).replace(microsecond=0)
    spend = "treasury.money_spent"
    events = [
        _event(20, spend, now - timedelta(minutes=20), "f1", amount_minor=1500, currency="EUR",
               reason="ticket", artist_id="a1"),
        {**_event(21, "social.artist_followed", now - timedelta(minutes=15), "f5", artist_id="a1"),
         "context": {"campaign": {"source": "newsletter"}}},
        _event(22, spend, now - timedelta(minutes=10), "f5", amount_minor=700, currency="USD", reason="merch",
               artist_id="a1"),
        _event(23, spend, now - timedelta(minutes=5), "f9", amount_minor=999, currency="EUR", reason="tip",
               artist_id="a1"),
    ]  # fmt: skip
    assert not event_batch_ingest(tenant=world["tenant"], events=events, source="import").rejected
    processing_run_pending()
    start, end = period(7)
    payload = {"kind": "artist", "artist_id": world["a1"].pk, "from": start, "to": end}

    # when the artist's JSON report is rendered
    attribution = _report_json(client, payload)["attribution"]

    # then its groups are what GET /api/v1/attribution answers for the same days (its `to` is exclusive)
    window = {
        "artist_id": "a1",
        "from": start,
        "to": (date.fromisoformat(end) + timedelta(days=1)).isoformat(),
    }
    for group_by, key in (("touch_type", "by_touch_type"), ("source", "by_source")):
        api = client.get("/api/v1/attribution", {**window, "group_by": group_by})
        assert api.status_code == 200, api.content
        assert attribution[key] == api.json()["groups"]
    by_type = {g["key"]: (g["conversions"], g["revenue"]) for g in attribution["by_touch_type"]}
    assert by_type == {
        "player.track_played": (3, {"EUR": 1500}),  # f1's purchase, and the votes of f1 and f3
        "social.artist_followed": (1, {"USD": 700}),
        None: (1, {"EUR": 999}),
    }
    assert (attribution["conversions"], attribution["attributed"]) == (5, 4)
    # and the attributed revenue is the KPI's, per currency
    assert attribution["attributed_revenue"] == {"EUR": 1500, "USD": 700}
    for currency, amount in attribution["attributed_revenue"].items():
        kpis = client.get(
            "/api/v1/kpis",
            kpi_query(start, end, artist_id="a1", metrics="attributed_revenue", currency=currency, tz="UTC"),
        )
        assert kpis.json()["totals"]["attributed_revenue"] == amount

    # and the PDF has the section, with the same figures
    report_id = client.post("/api/v1/reports", {**payload, "format": "pdf"}, format="json").json()["id"]
    render(report_id)
    pdf = b"".join(client.get(f"/api/v1/reports/{report_id}/download").streaming_content)  # type: ignore[attr-defined]
    text = pdf_text(pdf, tmp_path)
    assert "Attribution" in text and "By last touch type" in text and "By source" in text
    assert "4 of 5 conversions" in text
    assert "Track played" in text and "newsletter" in text and "Unattributed" in text
    assert "EUR 15.00, USD 7.00" in text


PLAY_SPECS = st.lists(
    st.tuples(
        st.sampled_from(["a1", "a2"]),  # artist
        st.sampled_from(["f1", "f2", "f3", "f4"]),  # fan
        st.integers(min_value=0, max_value=9),  # days ago (period covers 0..6)
        st.integers(min_value=1, max_value=600),  # seconds listened
    ),
    min_size=1,
    max_size=25,
)


@hypothesis.settings(
    max_examples=8, deadline=None, suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture]
)
@hypothesis.given(plays=PLAY_SPECS)
def test_artist_totals_equal_a_brute_force_recount(plays: list[tuple[str, str, int, int]]) -> None:
    # given random plays over ten days, ingested and processed
    tenant = TenantFactory.create(plan="enterprise")
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)

    def at(days_ago: int) -> datetime:  # early in that UTC day, never in the future
        return min(midnight - timedelta(days=days_ago) + timedelta(seconds=30), now - timedelta(seconds=1))

    events = [
        _event(i, "player.track_played", at(ago), fan, track_id="t", artist_id=artist,
               duration_seconds=secs)
        for i, (artist, fan, ago, secs) in enumerate(plays)
    ]  # fmt: skip
    for e in events:
        e["event_id"] = f"{tenant.slug}-{e['event_id']}"
    assert not event_batch_ingest(tenant=tenant, events=events, source="import").rejected
    processing_run_pending()
    today = midnight.date()
    start_day = today - timedelta(days=6)

    for external in ("a1", "a2"):
        artist = Artist.objects.filter(tenant=tenant, external_id=external).first()
        if artist is None:
            continue
        # when the artist's report figures are gathered for the last seven days
        data = artist_report_data(tenant=tenant, artist_id=artist.pk, start_day=start_day, end_day=today)

        # then they are exactly the recount of the raw plays in those days
        inside = [p for p in plays if p[0] == external and p[2] <= 6]
        assert data["totals"]["plays"] == len(inside)
        assert data["totals"]["listen_seconds"] == sum(p[3] for p in inside)
        assert data["totals"]["unique_listeners"] == len({p[1] for p in inside})
        assert sum(day["plays"] for day in data["daily"]) == len(inside)
