"""The live leaderboard feed over WebSockets (Daphne).

Authentication: a JWT access token (`?token=` or the Sec-WebSocket-Protocol header, as
`["bearer", "<jwt>"]` or the bare token) or a jumbotron ticket (`?ticket=`, signed, short-lived). The tenant
is `?tenant=<slug>` when the user has several memberships. The ORM is only reached through
database_sync_to_async.

Close codes (README, WebSocket protocol): 4401 bad or expired credentials (a jumbotron gets a new ticket and
reconnects), 4403 the tenant's plan has no live feed, 4410 the share link behind the ticket expired (closed
when it expires, even mid-connection). A ticket is checked when the connection opens; an open connection
lives on (Daphne ends any WebSocket after 24 h with 1000, its --websocket_timeout).

Client messages: {"action": "subscribe", "board": {...}, "top": N}, {"action": "unsubscribe", "board": {...}},
{"action": "ping"}. A bad message gets {"type": "error", "code", "message"} and the connection stays open."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.core import signing

from coliseum.errors import ApplicationError
from coliseum.models import Membership, Show, Tenant
from coliseum.rls import in_system, in_tenant

from .boards import METRICS, WINDOW_NAMES, Board
from .gates import board_access_check, live_feed_allowed
from .publisher import MAX_TOP, board_version, publisher
from .selectors import board_for, board_ranking

TICKET_SALT = "leaderboards.ws-ticket"
CLOSE_UNAUTHENTICATED = 4401
CLOSE_PLAN_REQUIRED = 4403
CLOSE_SHARE_EXPIRED = 4410
PROTOCOL_MARKERS = ("bearer", "access_token", "jwt")


def ticket_issue(
    *, tenant: Tenant, user_id: int | None, board: Board | None = None, share_expires_at: int | None = None
) -> str:
    """A short-lived credential the jumbotron page hands to its WebSocket (no JWT in the page). A ticket
    made for a share link (no user) names its board: it can subscribe to that board only, and carries the
    link's expiry, when the connection is closed with 4410."""
    token = board.as_token() if board is not None else None
    payload = {"t": tenant.pk, "u": user_id, "b": token, "e": share_expires_at}
    return signing.dumps(payload, salt=TICKET_SALT, compress=True)


def ticket_max_age() -> int:
    return int(getattr(settings, "LEADERBOARD_TICKET_SECONDS", 600))


@dataclass
class Subscription:
    board: Board
    top: int
    last_sent: list[tuple[int, int, int]] = field(default_factory=list)


def _tenant_for_token(raw: str, slug: str | None) -> Tenant | None:
    from rest_framework_simplejwt.exceptions import TokenError
    from rest_framework_simplejwt.settings import api_settings
    from rest_framework_simplejwt.tokens import AccessToken

    try:
        token = AccessToken(raw)  # type: ignore[arg-type]
    except TokenError:
        return None
    user_id = token.get(api_settings.USER_ID_CLAIM)
    memberships = Membership.objects.select_related("tenant").filter(user_id=user_id, user__is_active=True)
    if slug:
        memberships = memberships.filter(tenant__slug=slug)
    found = list(memberships[:2])
    if len(found) != 1:
        return None
    return found[0].tenant


@dataclass(frozen=True)
class Ticket:
    tenant: Tenant
    only_board: str | None  # the only board token it may use (share links)
    share_expires_at: int | None  # when its share link expires (share links)


def ticket_read(raw: str) -> Ticket | None:
    """What a valid, unexpired ticket allows."""
    try:
        data = signing.loads(raw, salt=TICKET_SALT, max_age=ticket_max_age())
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("t"), int):
        return None
    tenant = Tenant.objects.filter(pk=data["t"]).first()
    if tenant is None:
        return None
    board = data.get("b")
    shared = data.get("u") is None
    expires = data.get("e")
    return Ticket(
        tenant,
        board if isinstance(board, str) and shared else None,
        expires if isinstance(expires, int) and shared else None,
    )


class LeaderboardConsumer(AsyncJsonWebsocketConsumer):
    tenant: Tenant | None = None
    only_board: str | None = None  # a share-link ticket is bound to its board
    share_expires_at: int | None = None
    expiry: asyncio.TimerHandle | None = None
    expiry_task: asyncio.Task[None] | None = None

    def _credentials(self) -> tuple[str | None, str | None, str | None, str | None]:
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        token = (query.get("token") or [None])[0]
        ticket = (query.get("ticket") or [None])[0]
        slug = (query.get("tenant") or [None])[0]
        protocol: str | None = None
        offered = [p.strip() for p in self.scope.get("subprotocols", [])]
        if not token and offered:
            if offered[0].lower() in PROTOCOL_MARKERS and len(offered) > 1:
                protocol, token = offered[0], offered[1]
            elif offered[0].count(".") == 2:
                protocol = token = offered[0]
        return token, ticket, slug, protocol

    async def connect(self) -> None:
        self.subscriptions: dict[str, Subscription] = {}
        token, ticket, slug, protocol = self._credentials()
        tenant: Tenant | None = None
        if token:
            tenant = await database_sync_to_async(in_system)(
                "membership resolution", _tenant_for_token, token, slug
            )
        elif ticket:
            found = await database_sync_to_async(ticket_read)(ticket)
            if found is not None:
                tenant, self.only_board = found.tenant, found.only_board
                self.share_expires_at = found.share_expires_at
        # Accept first: a close code can only be delivered on an open connection.
        await self.accept(subprotocol=protocol)
        if tenant is None:
            await self.send_json(
                {"type": "error", "code": "not_authenticated", "message": "Bad credentials."}
            )
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await database_sync_to_async(in_tenant)(tenant.pk, live_feed_allowed, tenant):
            await self.send_json(
                {
                    "type": "error",
                    "code": "plan_required",
                    "message": "The live feed needs the Enterprise plan.",
                }
            )
            await self.close(code=CLOSE_PLAN_REQUIRED)
            return
        if self.share_expires_at is not None:
            left = self.share_expires_at - time.time()
            if left <= 0:
                await self._share_expired()
                return
            loop = asyncio.get_running_loop()

            def expire() -> None:
                self.expiry_task = loop.create_task(self._share_expired())

            self.expiry = loop.call_later(left, expire)
        self.tenant = tenant
        publisher.attach()

    async def _share_expired(self) -> None:
        await self.send_json({"type": "error", "code": "share_expired", "message": "The share link expired."})
        await self.close(code=CLOSE_SHARE_EXPIRED)

    async def disconnect(self, code: int) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        if self.tenant is None:
            return
        for key in list(self.subscriptions):
            await self._drop(key)
        await publisher.detach()

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if self.tenant is None:
            return
        if text_data is None or len(text_data) > 8192:
            await self._error("bad_message", "Send JSON text frames of at most 8 KB.")
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self._error("malformed_json", "The message is not valid JSON.")
            return
        if not isinstance(content, dict):
            await self._error("bad_message", "The message must be a JSON object.")
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        action = content.get("action")
        try:
            if action == "ping":
                await self.send_json({"type": "pong"})
            elif action == "subscribe":
                await self._subscribe(content)
            elif action == "unsubscribe":
                board = await self._board(content.get("board"))
                if board.as_token() not in self.subscriptions:
                    raise ApplicationError("Not subscribed to that board.", code="not_subscribed")
                await self._drop(board.as_token())
                await self.send_json({"type": "unsubscribed", "board": board.describe()})
            else:
                raise ApplicationError(
                    "action must be subscribe, unsubscribe or ping.", code="unknown_action"
                )
        except ApplicationError as exc:
            await self._error(exc.code, exc.message)

    async def _error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    async def _board(self, spec: Any) -> Board:
        if not isinstance(spec, dict):
            raise ApplicationError("board must be an object with metric and window.", code="invalid_board")
        metric, window = spec.get("metric"), spec.get("window") or spec.get("time_window")
        if metric not in METRICS or window not in WINDOW_NAMES:
            raise ApplicationError(
                f"metric must be one of {', '.join(METRICS)}; window one of {', '.join(WINDOW_NAMES)}.",
                code="invalid_board",
            )
        city, genre, show_id, currency = (spec.get(k) for k in ("city", "genre", "show_id", "currency"))
        if city is not None and (not isinstance(city, str) or len(city) > 128):
            raise ApplicationError("city must be a string.", code="invalid_board")
        if genre is not None and (not isinstance(genre, str) or len(genre) > 64):
            raise ApplicationError("genre must be a string.", code="invalid_board")
        if show_id is not None and (isinstance(show_id, bool) or not isinstance(show_id, int)):
            raise ApplicationError("show_id must be an integer.", code="invalid_board")
        if currency is not None and (not isinstance(currency, str) or len(currency) != 3):
            raise ApplicationError("currency must be a 3-letter code.", code="invalid_board")
        tenant = self.tenant
        assert tenant is not None

        def check() -> Board:
            board_access_check(
                tenant=tenant, window=window, filtered=bool(city or genre or show_id), live=True
            )
            if show_id is not None and not Show.objects.filter(tenant=tenant, pk=show_id).exists():
                raise ApplicationError("No such show.", code="not_found")
            return board_for(
                tenant=tenant,
                metric=metric,
                window=window,
                city=city,
                genre=genre,
                show_id=show_id,
                currency=currency,
            )

        return await database_sync_to_async(in_tenant)(tenant.pk, check)  # type: ignore[no-any-return]

    async def _subscribe(self, content: dict[str, Any]) -> None:
        top = content.get("top", 10)
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
            raise ApplicationError(f"top must be an integer from 1 to {MAX_TOP}.", code="invalid_top")
        board = await self._board(content.get("board"))
        key = board.as_token()
        if self.only_board is not None and key != self.only_board:
            raise ApplicationError("This share link shows one board only.", code="board_not_shared")
        limit = int(getattr(settings, "LEADERBOARD_MAX_SUBSCRIPTIONS", 10))
        if key not in self.subscriptions and len(self.subscriptions) >= limit:
            raise ApplicationError(
                f"At most {limit} subscriptions per connection.", code="too_many_subscriptions"
            )
        if key not in self.subscriptions:
            await self.channel_layer.group_add(board.group_name, self.channel_name)
            await database_sync_to_async(publisher.subscribe)(board)
        subscription = Subscription(board, top)
        self.subscriptions[key] = subscription

        def snapshot() -> tuple[list[dict[str, Any]], int]:
            return board_ranking(board=board).entries[:top], board_version(board)

        assert self.tenant is not None
        entries, version = await database_sync_to_async(in_tenant)(self.tenant.pk, snapshot)
        subscription.last_sent = [(e["artist_id"], e["rank"], e["score"]) for e in entries]
        await self.send_json(
            {"type": "snapshot", "board": board.describe(), "entries": entries, "version": version}
        )

    async def _drop(self, key: str) -> None:
        subscription = self.subscriptions.pop(key)
        await self.channel_layer.group_discard(subscription.board.group_name, self.channel_name)
        publisher.unsubscribe(subscription.board)

    async def board_update(self, message: dict[str, Any]) -> None:
        """From the publisher: a board's new top 100. Forward each subscriber's slice when it changed."""
        subscription = self.subscriptions.get(message["board"])
        if subscription is None:
            return
        entries = message["entries"][: subscription.top]
        top = [(e["artist_id"], e["rank"], e["score"]) for e in entries]
        if top == subscription.last_sent:
            return
        subscription.last_sent = top
        await self.send_json(
            {
                "type": "update",
                "board": subscription.board.describe(),
                "entries": entries,
                "version": message["version"],
            }
        )
