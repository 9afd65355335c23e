"""The WebSocket feed: authentication, plan gate, protocol, updates after ingestion, coalescing.

Uses channels' real Redis layer (settings.test points it at this suite's Redis DB)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken

from coliseum.models import Membership
from coliseum.rls import system_scope
from leaderboards.routing import websocket_urlpatterns
from tests.factories import ArtistFactory, MembershipFactory, TenantFactory

from .conftest import event, ingest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

application = URLRouter(websocket_urlpatterns)
BOARD = {"metric": "plays", "window": "24h"}


# The helpers run on database_sync_to_async's thread, whose connection the autouse system scope of
# tests/conftest.py does not cover: they act as the system explicitly (the consumer under test does not).


def _member(plan: str = "enterprise") -> tuple[Membership, str]:
    with system_scope("test setup"):
        membership = MembershipFactory.create(tenant=TenantFactory.create(plan=plan))
        for ext, name in (("ana", "Ana"), ("bea", "Bea")):
            ArtistFactory.create(tenant=membership.tenant, external_id=ext, name=name)
    return membership, str(AccessToken.for_user(membership.user))


async def _connect(path: str, protocols: list[str] | None = None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, subprotocols=protocols)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


def _plays(membership: Membership, artist: str, n: int) -> None:
    now = datetime.now(UTC) - timedelta(minutes=2)
    with system_scope("test setup"):
        ingest(
            membership.tenant,
            [event("play", at=now, user=f"{artist}-{i}", artist_id=artist) for i in range(n)],
        )


async def test_subscribe_gets_a_snapshot_then_an_update_after_events_are_processed() -> None:
    membership, token = await database_sync_to_async(_member)()
    await database_sync_to_async(_plays)(membership, "ana", 2)
    ws = await _connect(f"/ws/leaderboards/?token={token}")

    await ws.send_json_to({"action": "subscribe", "board": BOARD, "top": 5})
    snapshot = await ws.receive_json_from(timeout=5)
    assert snapshot["type"] == "snapshot"
    assert [(e["artist_name"], e["score"]) for e in snapshot["entries"]] == [("Ana", 2)]

    await database_sync_to_async(_plays)(membership, "bea", 3)
    update = await ws.receive_json_from(timeout=5)

    assert update["type"] == "update"
    assert [(e["rank"], e["artist_name"], e["score"]) for e in update["entries"]] == [
        (1, "Bea", 3),
        (2, "Ana", 2),
    ]
    assert update["version"] > snapshot["version"]
    await ws.disconnect()


async def test_updates_are_coalesced_to_one_push_per_interval(settings: Any) -> None:
    settings.LEADERBOARD_PUSH_INTERVAL = 1.5
    membership, token = await database_sync_to_async(_member)()
    ws = await _connect(f"/ws/leaderboards/?token={token}")
    await ws.send_json_to({"action": "subscribe", "board": BOARD, "top": 10})
    await ws.receive_json_from(timeout=5)

    # three batches in quick succession
    for _ in range(3):
        await database_sync_to_async(_plays)(membership, "ana", 1)
    first = await ws.receive_json_from(timeout=5)
    # then at most one more push carries the rest, not one per batch
    frames = [first]
    while not await ws.receive_nothing(timeout=2.5, interval=0.05):
        frames.append(await ws.receive_json_from(timeout=1))

    assert 1 <= len(frames) <= 2
    assert frames[-1]["entries"][0]["score"] == 3
    await ws.disconnect()


async def test_token_in_the_websocket_protocol_header_is_accepted() -> None:
    _, token = await database_sync_to_async(_member)()
    ws = WebsocketCommunicator(application, "/ws/leaderboards/", subprotocols=["bearer", token])
    connected, protocol = await ws.connect()
    assert connected and protocol == "bearer"

    await ws.send_json_to({"action": "ping"})

    assert await ws.receive_json_from(timeout=5) == {"type": "pong"}
    await ws.disconnect()


async def test_bad_credentials_close_with_4401() -> None:
    ws = await _connect("/ws/leaderboards/?token=not-a-jwt")

    assert (await ws.receive_json_from())["code"] == "not_authenticated"
    assert (await ws.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4401}


async def test_tenants_without_the_live_feed_are_closed_with_4403() -> None:
    _, token = await database_sync_to_async(_member)("pro")
    ws = await _connect(f"/ws/leaderboards/?token={token}")

    assert (await ws.receive_json_from())["code"] == "plan_required"
    assert (await ws.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4403}


BAD_FRAMES = [
    ("{not json", "malformed_json"),
    ("[1, 2]", "bad_message"),
    ('{"action": "dance"}', "unknown_action"),
    ('{"action": "subscribe", "board": {"metric": "likes", "window": "24h"}}', "invalid_board"),
    ('{"action": "subscribe", "board": {"metric": "plays", "window": "24h"}, "top": 500}', "invalid_top"),
    (
        '{"action": "subscribe", "board": {"metric": "plays", "window": "24h", "show_id": 999999}}',
        "not_found",
    ),
    ('{"action": "unsubscribe", "board": {"metric": "plays", "window": "24h"}}', "not_subscribed"),
]


async def test_a_bad_message_gets_an_error_frame_and_the_connection_stays() -> None:
    _, token = await database_sync_to_async(_member)()
    ws = await _connect(f"/ws/leaderboards/?token={token}")

    for frame, code in BAD_FRAMES:
        await ws.send_to(text_data=frame)
        error = await ws.receive_json_from(timeout=5)
        assert error["type"] == "error" and error["code"] == code, frame

    await ws.send_json_to({"action": "ping"})
    assert await ws.receive_json_from(timeout=5) == {"type": "pong"}
    await ws.disconnect()


async def test_subscriptions_per_connection_are_limited_and_unsubscribe_frees_one(settings: Any) -> None:
    settings.LEADERBOARD_MAX_SUBSCRIPTIONS = 2
    _, token = await database_sync_to_async(_member)()
    ws = await _connect(f"/ws/leaderboards/?token={token}")
    for window in ("24h", "7d"):
        await ws.send_json_to({"action": "subscribe", "board": {"metric": "plays", "window": window}})
        assert (await ws.receive_json_from(timeout=5))["type"] == "snapshot"

    await ws.send_json_to({"action": "subscribe", "board": {"metric": "plays", "window": "30d"}})
    refused = await ws.receive_json_from(timeout=5)
    await ws.send_json_to({"action": "unsubscribe", "board": {"metric": "plays", "window": "7d"}})
    unsubscribed = await ws.receive_json_from(timeout=5)
    await ws.send_json_to({"action": "subscribe", "board": {"metric": "plays", "window": "30d"}})
    accepted = await ws.receive_json_from(timeout=5)

    assert refused["code"] == "too_many_subscriptions"
    assert unsubscribed["type"] == "unsubscribed"
    assert accepted["type"] == "snapshot"
    await ws.disconnect()


async def test_a_share_link_ticket_subscribes_to_its_own_board_only() -> None:
    from leaderboards.consumers import ticket_issue
    from leaderboards.selectors import board_for

    membership, _ = await database_sync_to_async(_member)()
    tenant = membership.tenant
    shared = board_for(tenant=tenant, metric="votes", window="24h")
    ticket = ticket_issue(tenant=tenant, user_id=None, board=shared)
    ws = await _connect(f"/ws/leaderboards/?ticket={ticket}")

    await ws.send_json_to({"action": "subscribe", "board": BOARD})
    refused = await ws.receive_json_from(timeout=5)
    await ws.send_json_to({"action": "subscribe", "board": {"metric": "votes", "window": "24h"}})
    accepted = await ws.receive_json_from(timeout=5)

    assert refused["code"] == "board_not_shared"
    assert accepted["type"] == "snapshot"
    await ws.disconnect()


async def test_a_share_link_ticket_is_closed_with_4410_when_its_link_expires() -> None:
    from leaderboards.consumers import ticket_issue
    from leaderboards.selectors import board_for

    membership, _ = await database_sync_to_async(_member)()
    board = board_for(tenant=membership.tenant, metric="plays", window="24h")
    soon = ticket_issue(
        tenant=membership.tenant, user_id=None, board=board, share_expires_at=int(time.time()) + 2
    )
    gone = ticket_issue(
        tenant=membership.tenant, user_id=None, board=board, share_expires_at=int(time.time()) - 1
    )

    open_until_expiry = await _connect(f"/ws/leaderboards/?ticket={soon}")
    await open_until_expiry.send_json_to({"action": "subscribe", "board": BOARD})
    assert (await open_until_expiry.receive_json_from(timeout=5))["type"] == "snapshot"
    expired_at_connect = await _connect(f"/ws/leaderboards/?ticket={gone}")

    assert (await open_until_expiry.receive_json_from(timeout=10))["code"] == "share_expired"
    assert await open_until_expiry.receive_output(timeout=5) == {"type": "websocket.close", "code": 4410}
    assert (await expired_at_connect.receive_json_from(timeout=5))["code"] == "share_expired"
    assert await expired_at_connect.receive_output(timeout=5) == {"type": "websocket.close", "code": 4410}
    for ws in (open_until_expiry, expired_at_connect):
        await ws.disconnect()  # as Daphne does once the client answers the close: the consumer cleans up
