"""Security review (issue 16, findings 3 and 8): a filter value cannot change a board token's structure, no
entrance accepts one that is not a city, genre or currency, one bad family cannot stop the live feed or
reconcile for every tenant, and reconcile's work per tenant is bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django_redis import get_redis_connection
from hypothesis import given
from hypothesis import strategies as st

from leaderboards.boards import Board, BoardFamily
from leaderboards.publisher import SUBSCRIPTIONS_KEY, Publisher
from leaderboards.selectors import board_for, board_page
from leaderboards.services import DIRTY_KEY, FAMILIES_KEY, boards_reconcile
from tests.factories import ArtistFactory, TenantFactory

from .conftest import event, ingest
from .test_api import member_client
from .test_feed import _connect, _member

POISON = [{"genre": "pop|x"}, {"city": "Lisbon|1|2"}, {"currency": "|x|"}, {"city": "Porto\x00"}]


@given(
    city=st.text(max_size=40),
    currency=st.text(max_size=5),
    genre=st.text(max_size=40),
    show=st.none() | st.integers(1, 2**62),
)
def test_every_value_survives_a_round_trip_through_its_token(
    city: str, currency: str, genre: str, show: int | None
) -> None:
    family = BoardFamily(7, "money_spent", currency, city, show)
    board = Board(family, "24h", genre)

    assert BoardFamily.from_token(family.as_token()) == family
    assert Board.from_token(board.as_token()) == board


@pytest.mark.django_db
@pytest.mark.parametrize("params", POISON)
def test_the_leaderboard_api_refuses_a_poisoned_filter(params: dict[str, str]) -> None:
    client, _ = member_client()

    response = client.get("/api/v1/leaderboards", {"metric": "money_spent", **params})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert set(params) <= set(response.json()["error"]["details"])


@pytest.mark.django_db
@pytest.mark.parametrize("params", POISON)
def test_a_jumbotron_share_link_cannot_carry_a_poisoned_filter(params: dict[str, str]) -> None:
    client, _ = member_client()

    response = client.post("/api/v1/jumbotron/share", {"metric": "money_spent", **params}, format="json")

    assert response.status_code == 400
    assert set(params) <= set(response.json()["error"]["details"])


@pytest.mark.django_db
def test_accented_cities_and_genres_with_punctuation_are_fine() -> None:
    tenant = TenantFactory.create(plan="enterprise")

    board = board_for(tenant=tenant, metric="plays", window="24h", city="São Paulo", genre="Rock & Roll")

    assert board.family.city == "São Paulo" and board.genre == "Rock & Roll"


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_a_websocket_subscription_with_a_poisoned_genre_is_refused_and_the_socket_stays() -> None:
    _, token = await database_sync_to_async(_member)()
    ws = await _connect(f"/ws/leaderboards/?token={token}")

    await ws.send_json_to(
        {"action": "subscribe", "board": {"metric": "plays", "window": "24h", "genre": "pop|x"}}
    )
    refusal = await ws.receive_json_from(timeout=5)
    await ws.send_json_to({"action": "ping"})
    pong = await ws.receive_json_from(timeout=5)
    await ws.disconnect()

    assert refusal["type"] == "error" and refusal["message"].startswith("genre must be")
    assert pong == {"type": "pong"}
    assert not get_redis_connection("default").zrange(SUBSCRIPTIONS_KEY, 0, -1)


@pytest.mark.django_db
def test_an_unreadable_family_is_dropped_and_every_other_family_is_still_reconciled() -> None:
    tenant = TenantFactory.create(plan="pro")
    alpha = ArtistFactory.create(tenant=tenant, external_id="a", name="Alpha")
    ingest(tenant, [event("play", at=datetime.now(UTC) - timedelta(minutes=5), user="u1", artist_id="a")])
    board_page(tenant=tenant, metric="plays", window="all")  # a read registers the family for reconcile
    family = BoardFamily(tenant.pk, "plays")
    conn = get_redis_connection("default")
    # a token in the old `|` format with a poisoned city, and plain garbage, as a day-old registry holds them
    poisoned = {"5|plays||1|x|y", "not a token"}
    conn.zadd(FAMILIES_KEY, dict.fromkeys(poisoned, datetime.now(UTC).timestamp()))
    conn.zincrby(family.bucket_key("a"), 5, alpha.pk)  # drift that reconcile must repair

    repaired = boards_reconcile()

    assert repaired >= 1
    assert board_page(tenant=tenant, metric="plays", window="all")["entries"][0]["score"] == 1
    registered = {m.decode() for m in conn.zrange(FAMILIES_KEY, 0, -1)}
    assert family.as_token() in registered and not registered & poisoned


@pytest.mark.django_db
def test_an_unreadable_subscription_does_not_stop_the_publisher_for_other_boards() -> None:
    tenant = TenantFactory.create(plan="enterprise")
    ArtistFactory.create(tenant=tenant, external_id="a", name="Alpha")
    ingest(tenant, [event("play", at=datetime.now(UTC) - timedelta(minutes=5), user="u1", artist_id="a")])
    board = board_for(tenant=tenant, metric="plays", window="24h")
    conn = get_redis_connection("default")
    far = datetime.now(UTC).timestamp() + 600
    conn.zadd(SUBSCRIPTIONS_KEY, {"24h|pop|x|5|plays||1|x": far, board.as_token(): far})
    conn.sadd(DIRTY_KEY, board.family.as_token())

    messages = Publisher().tick()

    assert [m["board"] for _, m in messages] == [board.as_token()]
    assert conn.zscore(SUBSCRIPTIONS_KEY, "24h|pop|x|5|plays||1|x") is None


@pytest.mark.django_db
def test_reconcile_rebuilds_a_bounded_number_of_families_per_tenant(settings: Any) -> None:
    settings.LEADERBOARD_RECONCILE_MAX_FAMILIES = 5
    noisy, quiet = TenantFactory.create(plan="pro"), TenantFactory.create(plan="pro")
    at = datetime.now(UTC) - timedelta(minutes=5)
    for tenant in (noisy, quiet):
        ArtistFactory.create(tenant=tenant, external_id="a", name="Alpha")
        ingest(tenant, [event("play", at=at, user="u1", artist_id="a")])
    for n in range(12):  # a reader trying twelve made-up cities
        board_page(tenant=noisy, metric="plays", window="all", city=f"Nowhere {n}")
    board_page(tenant=quiet, metric="plays", window="all")

    rebuilt = boards_reconcile()

    assert rebuilt == 5 + 1
