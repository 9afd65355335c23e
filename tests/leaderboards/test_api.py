"""The leaderboard, standings, realtime and jumbotron-share endpoints, end to end through the API client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from coliseum.models import Artist, Membership, Role, Tenant
from tests.factories import ArtistFactory, MembershipFactory, ShowFactory, TenantFactory, UserFactory

from .conftest import event, ingest

pytestmark = pytest.mark.django_db


def member_client(plan: str = "enterprise", role: str = Role.OWNER) -> tuple[APIClient, Membership]:
    membership = MembershipFactory.create(tenant=TenantFactory.create(plan=plan), role=role)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(membership.user)}")
    return client, membership


def _plays(tenant: Tenant, counts: dict[str, int], city: str = "Lisbon") -> dict[str, Artist]:
    artists = {ext: ArtistFactory.create(tenant=tenant, external_id=ext, name=ext.title()) for ext in counts}
    now = datetime.now(UTC) - timedelta(minutes=3)
    ingest(
        tenant,
        [
            event("play", at=now, user=f"u{i}", artist_id=ext, city=city)
            for ext, n in counts.items()
            for i in range(n)
        ],
    )
    return artists


def test_leaderboard_answers_the_documented_body() -> None:
    client, membership = member_client()
    artists = _plays(membership.tenant, {"ana": 3, "bea": 1})

    response = client.get(
        "/api/v1/leaderboards",
        {"metric": "plays", "time_window": "24h", "artist_id": str(artists["bea"].pk)},
    )

    assert response.status_code == 200
    body = response.json()
    assert body["metric"] == "plays" and body["window"] == "24h"
    assert body["total_artists"] == 2
    assert body["entries"] == [
        {"rank": 1, "artist_id": artists["ana"].pk, "artist_name": "Ana", "score": 3, "previous_rank": None},
        {"rank": 2, "artist_id": artists["bea"].pk, "artist_name": "Bea", "score": 1, "previous_rank": None},
    ]
    assert body["artist"]["rank"] == 2
    assert [n["artist_name"] for n in body["artist"]["neighbors"]] == ["Ana"]
    assert set(body["filters"]) == {"city", "genre", "show_id", "currency"}


def test_city_filter_and_money_currency() -> None:
    client, membership = member_client()
    _plays(membership.tenant, {"ana": 2})
    _plays(membership.tenant, {"bea": 1}, city="Porto")

    response = client.get("/api/v1/leaderboards", {"metric": "plays", "window": "7d", "city": "Porto"})

    assert [e["artist_name"] for e in response.json()["entries"]] == ["Bea"]
    money = client.get("/api/v1/leaderboards", {"metric": "money_earned", "window": "all", "currency": "eur"})
    assert money.status_code == 200
    assert money.json()["filters"]["currency"] == "EUR"


@pytest.mark.parametrize(
    ("params", "needed"),
    [
        ({"window": "all"}, "Pro"),
        ({"window": "24h", "city": "Lisbon"}, "Pro"),
        ({"window": "24h", "page": 2, "page_size": 10}, "Pro"),
    ],
)
def test_basic_plan_gates_answer_plan_required_naming_the_cheapest_plan(
    params: dict[str, Any], needed: str
) -> None:
    client, _ = member_client(plan="basic")

    response = client.get("/api/v1/leaderboards", {"metric": "plays", **params})

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "plan_required"
    assert needed in error["message"]


def test_basic_plan_gets_its_ten_places_by_default() -> None:
    client, membership = member_client(plan="basic")
    _plays(membership.tenant, {f"a{i:02d}": 1 for i in range(12)})

    body = client.get("/api/v1/leaderboards", {"metric": "plays", "window": "24h"}).json()

    assert body["page_size"] == 10 and len(body["entries"]) == 10 and body["total_artists"] == 12


@pytest.mark.parametrize(
    "params",
    [
        {"metric": "likes"},
        {"window": "2h"},
        {"page_size": 101},
        {"page": 0},
        {"show_id": "abc"},
        {"currency": "EURO"},
    ],
)
def test_bad_query_parameters_answer_400_in_the_envelope(params: dict[str, Any]) -> None:
    client, _ = member_client()

    response = client.get("/api/v1/leaderboards", params)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_another_tenants_show_or_artist_answers_404() -> None:
    client, _ = member_client()
    other = TenantFactory.create(plan="enterprise")
    show, artist = ShowFactory.create(tenant=other), ArtistFactory.create(tenant=other)

    assert client.get("/api/v1/leaderboards", {"show_id": show.pk}).status_code == 404
    assert client.get("/api/v1/leaderboards", {"artist_id": artist.pk}).status_code == 404
    assert client.get(f"/api/v1/shows/{show.pk}/standings").status_code == 404


def test_anonymous_callers_are_refused() -> None:
    response = APIClient().get("/api/v1/leaderboards")

    assert response.status_code == 401
    assert "error" in response.json()


def test_standings_count_a_fans_first_vote_per_show_and_round() -> None:
    client, membership = member_client()
    tenant = membership.tenant
    show = ShowFactory.create(tenant=tenant, external_id="battle")
    ana = ArtistFactory.create(tenant=tenant, external_id="ana", name="Ana")
    bea = ArtistFactory.create(tenant=tenant, external_id="bea", name="Bea")
    t0 = datetime.now(UTC) - timedelta(minutes=30)

    def vote(user: str, artist: str, minutes: int, round_: int = 1) -> dict[str, Any]:
        return event(
            "vote",
            at=t0 + timedelta(minutes=minutes),
            user=user,
            artist_id=artist,
            show_id="battle",
            round=round_,
        )

    # fan1 votes Ana then Bea (second ignored); fan2 votes Bea; fan3's late-arriving EARLIER vote for Ana wins
    ingest(
        tenant,
        [vote("fan1", "ana", 1), vote("fan1", "bea", 2), vote("fan2", "bea", 3), vote("fan3", "bea", 9)],
    )
    ingest(tenant, [vote("fan3", "ana", 4), vote("fan1", "bea", 5, round_=2)])

    body = client.get(f"/api/v1/shows/{show.pk}/standings").json()
    round_one = client.get(f"/api/v1/shows/{show.pk}/standings", {"round": 1}).json()

    assert [(r["round"], [(e["artist_name"], e["votes"]) for e in r["entries"]]) for r in body["rounds"]] == [
        (1, [("Ana", 2), ("Bea", 1)]),
        (2, [("Bea", 1)]),
    ]
    assert [r["round"] for r in round_one["rounds"]] == [1]
    # and the votes board agrees with the standings
    board = client.get(
        "/api/v1/leaderboards", {"metric": "votes", "window": "24h", "show_id": str(show.pk)}
    ).json()
    assert [(e["artist_id"], e["score"]) for e in board["entries"]] == [(ana.pk, 2), (bea.pk, 2)]


def test_realtime_tells_where_the_websocket_is(settings: Any) -> None:
    client, _ = member_client()

    assert client.get("/api/v1/realtime").json()["leaderboards_ws"] == "ws://testserver/ws/leaderboards/"
    settings.WEBSOCKET_BASE_URL = "wss://live.example.test"
    assert client.get("/api/v1/realtime").json() == {
        "leaderboards_ws": "wss://live.example.test/ws/leaderboards/",
        "live_feed": True,
    }


def test_share_link_needs_an_analyst_on_enterprise() -> None:
    viewer, _ = member_client(role=Role.VIEWER)
    pro, _ = member_client(plan="pro")
    analyst, _ = member_client(role=Role.ANALYST)

    assert viewer.post("/api/v1/jumbotron/share", {}, format="json").status_code == 403
    assert pro.post("/api/v1/jumbotron/share", {}, format="json").json()["error"]["code"] == "plan_required"
    response = analyst.post("/api/v1/jumbotron/share", {"metric": "votes", "expires_in": 3600}, format="json")
    assert response.status_code == 201
    assert "/jumbotron/?share=" in response.json()["url"]


def test_every_leaderboard_endpoint_is_in_the_openapi_schema() -> None:
    user = UserFactory.create(is_staff=True)
    client = APIClient()
    client.force_authenticate(user)

    paths = client.get("/api/schema/", {"format": "json"}).json()["paths"]

    for path in (
        "/api/v1/leaderboards",
        "/api/v1/shows/{show_id}/standings",
        "/api/v1/realtime",
        "/api/v1/jumbotron/share",
        "/jumbotron/standings",
    ):
        assert path in paths, path


def test_a_hot_board_read_costs_no_per_artist_queries(
    settings: Any, django_assert_max_num_queries: Any
) -> None:
    settings.LEADERBOARD_CACHE_SECONDS = 30
    client, membership = member_client()
    _plays(membership.tenant, {f"a{i:02d}": 1 + i % 4 for i in range(30)})
    assert client.get("/api/v1/leaderboards", {"window": "7d"}).status_code == 200  # computes and caches

    # then a warm read is the JWT user and the membership lookups, whatever the board's size
    with django_assert_max_num_queries(2):
        response = client.get("/api/v1/leaderboards", {"window": "7d"})
    assert response.json()["total_artists"] == 30
