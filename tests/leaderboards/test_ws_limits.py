"""Live feed connection limits: per user, per share link, per client address and per Daphne process. A client
over a limit gets an `too_many_connections` error frame and close code 4429, and costs the channel layer
nothing; everyone under the limits keeps their feed. The flood tests run a real Daphne (settings.local) with
real WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django_redis import get_redis_connection
from rest_framework_simplejwt.tokens import AccessToken
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from coliseum.models import Membership, Tenant
from coliseum.rls import system_scope
from leaderboards import consumers
from leaderboards.consumers import SLOT_PREFIX, ticket_issue
from leaderboards.routing import websocket_urlpatterns
from leaderboards.selectors import board_for
from leaderboards.views import share_link_sign
from tests.browser import chromium_launch
from tests.factories import ArtistFactory, MembershipFactory, TenantFactory

from .conftest import daphne, event, ingest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

application = URLRouter(websocket_urlpatterns)
BOARD = {"metric": "plays", "window": "24h"}


def _member(tenant: Tenant | None = None) -> tuple[Membership, str]:
    with system_scope("test setup"):
        if tenant is None:
            tenant = TenantFactory.create(plan="enterprise")
            for ext, name in (("ana", "Ana"), ("bea", "Bea")):
                ArtistFactory.create(tenant=tenant, external_id=ext, name=name)
        membership = MembershipFactory.create(tenant=tenant)
    return membership, str(AccessToken.for_user(membership.user))


def _plays(tenant: Tenant, artist: str, n: int) -> None:
    at = datetime.now(UTC) - timedelta(minutes=2)
    with system_scope("test setup"):
        ingest(
            tenant,
            [
                event("play", at=at, user=f"{artist}-{i}-{time.monotonic()}", artist_id=artist)
                for i in range(n)
            ],
        )


async def _open(
    path: str, client: str = "192.0.2.10", forwarded_for: str | None = None
) -> WebsocketCommunicator:
    headers = [(b"x-forwarded-for", forwarded_for.encode())] if forwarded_for else None
    ws = WebsocketCommunicator(application, path, headers=headers)
    ws.scope["client"] = [client, 40000]  # what Daphne puts there: the peer's address
    connected, _ = await ws.connect(timeout=10)
    assert connected  # a close code can only be sent on an accepted connection
    return ws


async def _subscribed(ws: WebsocketCommunicator) -> bool:
    """Whether the connection is served: a snapshot answers its subscribe (else it was refused, 4429)."""
    await ws.send_json_to({"action": "subscribe", "board": BOARD})
    return (await ws.receive_json_from(timeout=5))["type"] == "snapshot"


async def _refused(ws: WebsocketCommunicator) -> str:
    """The limit named in the error frame of a connection closed with 4429."""
    frame = await ws.receive_json_from(timeout=5)
    assert frame["code"] == "too_many_connections"
    assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 4429}
    await ws.disconnect()  # as Daphne does once the client answers the close
    return str(frame["limit"])


async def test_a_user_over_the_per_user_limit_is_closed_with_4429(settings: Any) -> None:
    settings.LEADERBOARD_WS_MAX_PER_USER = 2
    _, token = await database_sync_to_async(_member)()
    _, colleague = await database_sync_to_async(_member)()

    first = await _open(f"/ws/leaderboards/?token={token}")
    second = await _open(f"/ws/leaderboards/?token={token}")
    third = await _open(f"/ws/leaderboards/?token={token}")
    other_user = await _open(f"/ws/leaderboards/?token={colleague}")

    assert await _refused(third) == "user"
    assert [await _subscribed(ws) for ws in (first, second, other_user)] == [True, True, True]
    for ws in (first, second, other_user):
        await ws.disconnect()


async def test_a_members_jumbotron_tickets_count_as_that_user(settings: Any) -> None:
    settings.LEADERBOARD_WS_MAX_PER_USER = 1
    membership, token = await database_sync_to_async(_member)()
    ticket = ticket_issue(tenant=membership.tenant, user_id=membership.user_id)

    by_token = await _open(f"/ws/leaderboards/?token={token}")
    by_ticket = await _open(f"/ws/leaderboards/?ticket={ticket}")

    assert await _refused(by_ticket) == "user"
    assert await _subscribed(by_token)
    await by_token.disconnect()


async def test_a_share_links_tickets_share_one_budget(settings: Any) -> None:
    settings.LEADERBOARD_WS_MAX_PER_SHARE_LINK = 2
    membership, _ = await database_sync_to_async(_member)()
    tenant = membership.tenant
    board = board_for(tenant=tenant, metric="plays", window="24h")
    expires = int(time.time()) + 3600

    def link_ticket(expires_at: int) -> str:  # what /jumbotron/ticket hands each screen of a link
        return ticket_issue(tenant=tenant, user_id=None, board=board, share_expires_at=expires_at)

    screens = [await _open(f"/ws/leaderboards/?ticket={link_ticket(expires)}") for _ in range(3)]
    another_link = await _open(f"/ws/leaderboards/?ticket={link_ticket(expires + 60)}")

    assert await _refused(screens[2]) == "share link"
    assert [await _subscribed(ws) for ws in (screens[0], screens[1], another_link)] == [True, True, True]
    for ws in (screens[0], screens[1], another_link):
        await ws.disconnect()


async def test_the_per_address_limit_reads_x_forwarded_for_only_from_trusted_proxies(settings: Any) -> None:
    settings.LEADERBOARD_WS_MAX_PER_IP = 1
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    tokens = [(await database_sync_to_async(_member)())[1] for _ in range(4)]

    # behind the trusted proxy: two clients with their own addresses, then the first one again
    first = await _open(f"/ws/leaderboards/?token={tokens[0]}", "10.0.0.2", "203.0.113.7")
    second = await _open(f"/ws/leaderboards/?token={tokens[1]}", "10.0.0.2", "203.0.113.8")
    first_again = await _open(f"/ws/leaderboards/?token={tokens[2]}", "10.0.0.2", "203.0.113.7")
    # a client that writes the header itself is still its own address
    spoofed = await _open(f"/ws/leaderboards/?token={tokens[3]}", "203.0.113.8", "198.51.100.99")

    assert await _refused(first_again) == "address"
    assert await _refused(spoofed) == "address"
    assert [await _subscribed(ws) for ws in (first, second)] == [True, True]
    for ws in (first, second):
        await ws.disconnect()


async def test_a_disconnect_frees_its_slot(settings: Any) -> None:
    settings.LEADERBOARD_WS_MAX_PER_USER = 1
    _, token = await database_sync_to_async(_member)()
    first = await _open(f"/ws/leaderboards/?token={token}")
    assert await _subscribed(first)

    await first.disconnect()
    again = await _open(f"/ws/leaderboards/?token={token}")

    assert await _subscribed(again)
    await again.disconnect()


async def test_slots_of_a_crashed_server_lapse(settings: Any) -> None:
    # given the slots of connections whose Daphne died (nobody refreshed them for a minute)
    settings.LEADERBOARD_WS_MAX_PER_USER = 2
    membership, token = await database_sync_to_async(_member)()
    stale = time.time() - 1
    get_redis_connection("default").zadd(
        f"{SLOT_PREFIX}:user:{membership.user_id}", {"dead-1": stale, "dead-2": stale}
    )

    ws = await _open(f"/ws/leaderboards/?token={token}")

    assert await _subscribed(ws)
    await ws.disconnect()


async def test_a_process_at_its_maximum_refuses_the_next_connection(settings: Any) -> None:
    settings.LEADERBOARD_WS_MAX_CONNECTIONS = consumers._process_connections + 1  # room for one more
    _, token = await database_sync_to_async(_member)()
    _, other = await database_sync_to_async(_member)()
    first = await _open(f"/ws/leaderboards/?token={token}")

    second = await _open(f"/ws/leaderboards/?token={other}")

    assert await _refused(second) == "server"
    assert await _subscribed(first)
    await first.disconnect()


# --- a real Daphne ---------------------------------------------------------------------------------------


async def _client(url: str, forwarded_for: str) -> tuple[str, ClientConnection | None]:
    """One WebSocket that subscribes: ("open", ws) when served, ("4429", None) when refused, else what
    happened (any other close code, or an error)."""
    try:
        ws = await connect(url, open_timeout=45, additional_headers={"X-Forwarded-For": forwarded_for})
        await ws.send(json.dumps({"action": "subscribe", "board": BOARD}))
        first = json.loads(await asyncio.wait_for(ws.recv(), 45))
        if first["type"] == "snapshot":
            return "open", ws
        await asyncio.wait_for(ws.wait_closed(), 15)
        return str(ws.close_code), None
    except ConnectionClosed as closed:
        return f"closed {closed.rcvd.code if closed.rcvd else None}", None
    except Exception as exc:  # reported by the caller's assertion
        return repr(exc), None


async def _update(ws: ClientConnection) -> dict[str, Any]:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if frame["type"] == "update":
            return dict(frame)


async def _still_open(ws: ClientConnection) -> bool:
    await ws.send(json.dumps({"action": "ping"}))
    try:
        while json.loads(await asyncio.wait_for(ws.recv(), 15))["type"] != "pong":
            pass
    except ConnectionClosed:
        return False
    return True


def _in_thread(fn: Callable[..., None], *args: Any) -> Any:
    return asyncio.to_thread(fn, *args)


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_a_flood_from_one_tenant_gets_4429_and_other_tenants_keep_their_feed() -> None:
    # given an Enterprise tenant whose member opens 150 connections from one address, and another tenant's
    # screens at their own addresses, through Daphne as `make run` starts it behind a trusted proxy
    _, flood_token = _member()
    viewer, viewer_token = _member()
    _plays(viewer.tenant, "ana", 1)
    env = {"DJANGO_SETTINGS_MODULE": "coliseum.settings.local", "REDIS_URL": settings.REDIS_URL}

    with daphne(None, TRUSTED_PROXIES="127.0.0.1", **env) as base:

        async def scenario() -> None:
            before, ws_before = await _client(f"{base}/ws/leaderboards/?token={viewer_token}", "198.51.100.1")
            assert before == "open"
            # when the flood arrives all at once
            flood = await asyncio.gather(
                *(_client(f"{base}/ws/leaderboards/?token={flood_token}", "203.0.113.7") for _ in range(150))
            )
            after, ws_after = await _client(f"{base}/ws/leaderboards/?token={viewer_token}", "198.51.100.2")

            # then the member's first 10 are served and the other 140 told 4429, and nothing failed (no 1011)
            assert Counter(outcome for outcome, _ in flood) == {"open": 10, "4429": 140}
            assert after == "open"
            served = [ws for _, ws in flood if ws is not None]
            assert all(await asyncio.gather(*(_still_open(ws) for ws in served)))
            # and the other tenant's screens, connected before and after the flood, get the next update
            assert ws_before is not None and ws_after is not None
            await _in_thread(_plays, viewer.tenant, "bea", 3)
            for ws in (ws_before, ws_after):
                update = await _update(ws)
                assert [(e["artist_name"], e["score"]) for e in update["entries"]] == [("Bea", 3), ("Ana", 1)]
            for ws in (ws_before, ws_after, *served):
                await ws.close()

        asyncio.run(scenario())


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_a_daphne_at_its_documented_maximum_serves_every_connection_it_accepts() -> None:
    # given a Daphne whose maximum is 150 connections, with the per-user and per-address limits off
    membership, token = _member()
    _plays(membership.tenant, "ana", 1)
    env = {"DJANGO_SETTINGS_MODULE": "coliseum.settings.local", "REDIS_URL": settings.REDIS_URL}
    env |= {
        "LEADERBOARD_WS_MAX_CONNECTIONS": "150",
        "LEADERBOARD_WS_MAX_PER_USER": "0",
        "LEADERBOARD_WS_MAX_PER_IP": "0",
    }

    with daphne(None, **env) as base:

        async def scenario() -> None:
            # when 160 clients connect and subscribe at once (every subscribe joins a group in Redis)
            outcomes = await asyncio.gather(
                *(_client(f"{base}/ws/leaderboards/?token={token}", "203.0.113.7") for _ in range(160))
            )

            # then 150 are served, the rest told 4429, and none fails for want of a Redis connection
            assert Counter(outcome for outcome, _ in outcomes) == {"open": 150, "4429": 10}
            served = [ws for _, ws in outcomes if ws is not None]
            # and every one of them receives the next update
            await _in_thread(_plays, membership.tenant, "bea", 2)
            updates = await asyncio.gather(*(_update(ws) for ws in served))
            assert all(u["entries"][0]["artist_name"] == "Bea" for u in updates)
            for ws in served:
                await ws.close()

        asyncio.run(scenario())


# Records the close code of every WebSocket the page opens (the page's own code is unchanged).
CLOSE_CODES = """(() => {
  const Native = window.WebSocket;
  window.closeCodes = [];
  function Recorded(url, protocols) {
    const socket = new Native(url, protocols);
    socket.addEventListener("close", (event) => window.closeCodes.push(event.code));
    return socket;
  }
  Recorded.prototype = Native.prototype;
  Object.assign(Recorded, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  window.WebSocket = Recorded;
})()"""


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls here are plain sync code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        chromium = chromium_launch(p)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(180)
def test_a_jumbotron_over_the_share_link_limit_says_so_and_waits_a_minute(
    live_server: Any, settings: Any, browser: Any
) -> None:
    from playwright.sync_api import expect

    # given a share link that may be on one screen at a time, already live on one
    with system_scope("test setup"):  # Playwright's greenlet has its own database connection
        tenant = TenantFactory.create(plan="enterprise")
        ArtistFactory.create(tenant=tenant, external_id="ana", name="Ana Moura")
    share = quote(share_link_sign(tenant=tenant, board=BOARD, expires_at=int(time.time()) + 3600))
    url = f"{live_server.url}/jumbotron/?share={share}"
    with daphne(None, LEADERBOARD_WS_MAX_PER_SHARE_LINK="1") as ws_base:
        settings.WEBSOCKET_BASE_URL = ws_base
        first = browser.new_page()
        first.goto(url)
        expect(first.locator("#jt-status")).to_have_attribute("data-state", "live", timeout=30_000)

        # when a second screen opens the same link
        second = browser.new_page()
        second.add_init_script(CLOSE_CODES)
        second.clock.install()
        attempts: list[str] = []
        second.on("websocket", lambda ws: attempts.append(ws.url))
        second.goto(url)

        # then it says so, and does not knock again before about a minute has passed
        expect(second.locator("#jt-notice")).to_have_text(
            "Too many screens are showing this feed right now. Trying again in a minute.", timeout=30_000
        )
        expect(second.locator("#jt-status")).to_have_attribute("data-state", "down")
        assert second.evaluate("() => window.closeCodes.at(-1)") == 4429
        refused_after = len(attempts)  # 1, or 2 if the first try was lost on the way (1006) and retried
        soon = datetime.fromtimestamp(second.evaluate("() => Date.now()") / 1000 + 1, UTC)
        second.clock.pause_at(soon)  # from here the page's time moves only when the test moves it
        second.clock.fast_forward(30_000)
        second.wait_for_timeout(2000)  # time for a reconnect the page should not make
        assert len(attempts) == refused_after

        # and once the first screen is closed, it gets the slot at its next try (45 to 75 s after the refusal)
        first.close()
        second.clock.fast_forward(50_000)
        expect(second.locator("#jt-status")).to_have_attribute("data-state", "live", timeout=30_000)
        assert len(attempts) == refused_after + 1
        expect(second.locator("#jt-notice")).to_have_text("")
        second.close()
