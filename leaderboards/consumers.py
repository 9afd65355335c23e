"""The live leaderboard feed over WebSockets (Daphne).

Authentication: a JWT access token (`?token=` or the Sec-WebSocket-Protocol header, as
`["bearer", "<jwt>"]` or the bare token) or a jumbotron ticket (`?ticket=`, signed, short-lived). The tenant
is `?tenant=<slug>` when the user has several memberships. The ORM is only reached through
database_sync_to_async.

Close codes (README, WebSocket protocol): 4401 bad or expired credentials (a jumbotron gets a new ticket and
reconnects), 4403 the tenant's plan has no live feed, 4410 the share link behind the ticket expired (closed
when it expires, even mid-connection), 4429 too many connections (see Connection limits). A ticket is
checked when the connection opens; an open connection lives on (Daphne ends any WebSocket after 24 h with
1000, its --websocket_timeout).

Connection limits: each live connection holds a slot per user (a JWT's or a member's ticket), per share link
(a share ticket) and per client address (coliseum.clientaddr), counted in Redis sorted sets shared by every
Daphne process (member: the channel name, score: when the slot lapses unless refreshed), and one in this
process's count, which the channel layer's Redis pool is sized for (settings, leaderboards). A connection
over a limit is refused before it reaches the channel layer.

Client messages: {"action": "subscribe", "board": {...}, "top": N}, {"action": "unsubscribe", "board": {...}},
{"action": "ping"}. A bad message gets {"type": "error", "code", "message"} and the connection stays open."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.core import signing
from redis.commands.core import Script

from coliseum.clientaddr import scope_client_address
from coliseum.errors import ApplicationError
from coliseum.models import Membership, Show, Tenant
from coliseum.rls import in_system, in_tenant

from .boards import METRICS, WINDOW_NAMES, Board
from .gates import board_access_check, live_feed_allowed
from .publisher import MAX_TOP, board_version, publisher
from .selectors import board_for, board_ranking
from .services import redis

TICKET_SALT = "leaderboards.ws-ticket"
CLOSE_UNAUTHENTICATED = 4401
CLOSE_PLAN_REQUIRED = 4403
CLOSE_SHARE_EXPIRED = 4410
CLOSE_TOO_MANY_CONNECTIONS = 4429
PROTOCOL_MARKERS = ("bearer", "access_token", "jwt")

logger = logging.getLogger(__name__)


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


def _tenant_for_token(raw: str, slug: str | None) -> tuple[Tenant, int] | None:
    """The token's tenant and its user's id."""
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
    return found[0].tenant, found[0].user_id


@dataclass(frozen=True)
class Ticket:
    tenant: Tenant
    only_board: str | None  # the only board token it may use (share links)
    share_expires_at: int | None  # when its share link expires (share links)
    user_id: int | None = None  # the member it was issued to (None: a share link)


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
        data["u"] if isinstance(data.get("u"), int) else None,
    )


# --- connection limits -------------------------------------------------------------------------------------
SLOT_SECONDS = 60  # a slot lapses this long after its last refresh (a crashed Daphne's slots age out)
SLOT_REFRESH_SECONDS = 20
SLOT_PREFIX = "{lb:ws}"  # one hash tag: the claim script touches a connection's keys together (Redis Cluster)

# KEYS: the connection's slot sets; ARGV: member, lease seconds, then each key's limit (0: none). Drops lapsed
# slots, refuses with the 1-based index of the first full key, else takes a slot in every key. Redis's clock,
# so Daphne hosts need not agree on the time.
_CLAIM = Script(
    None,  # type: ignore[arg-type]
    b"""
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local limit = tonumber(ARGV[2 + i])
  if limit > 0 and not redis.call('ZSCORE', key, ARGV[1]) and redis.call('ZCARD', key) >= limit then
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + tonumber(ARGV[2]), ARGV[1])
  redis.call('EXPIRE', key, ARGV[2])
end
return 0
""",
)
# The same keys and member: push the lapse time on (a slot that lapsed is taken again: the connection lives).
_REFRESH = Script(
    None,  # type: ignore[arg-type]
    b"""
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + tonumber(ARGV[2]), ARGV[1])
  redis.call('EXPIRE', key, ARGV[2])
end
return 0
""",
)

_process_connections = 0  # this process's accepted connections (one event loop per Daphne process)


@dataclass(frozen=True)
class Slot:
    key: str
    limit: int
    what: str  # for the error message


def connection_slots(*, user_id: int | None, ticket: Ticket | None, address: str) -> list[Slot]:
    """The limits one connection counts against."""
    slots = []
    if user_id is not None:
        slots.append(Slot(f"{SLOT_PREFIX}:user:{user_id}", settings.LEADERBOARD_WS_MAX_PER_USER, "user"))
    elif ticket is not None and ticket.only_board is not None:
        # A share link is its tenant, board and expiry (what it signs): its tickets, renewed or not, count
        # together.
        link = hashlib.sha256(
            f"{ticket.tenant.pk}|{ticket.only_board}|{ticket.share_expires_at}".encode()
        ).hexdigest()[:32]
        slots.append(
            Slot(f"{SLOT_PREFIX}:share:{link}", settings.LEADERBOARD_WS_MAX_PER_SHARE_LINK, "share link")
        )
    if address:
        slots.append(Slot(f"{SLOT_PREFIX}:ip:{address}", settings.LEADERBOARD_WS_MAX_PER_IP, "address"))
    return slots


def slots_claim(slots: list[Slot], member: str) -> Slot | None:
    """Take a slot in each set; the first full one if any (then nothing is taken)."""
    if not slots:
        return None
    args: list[str | int] = [member, SLOT_SECONDS, *(slot.limit for slot in slots)]
    full = int(_CLAIM(keys=[slot.key for slot in slots], args=args, client=redis()))
    return slots[full - 1] if full else None


def slots_refresh(slots: list[Slot], member: str) -> None:
    if slots:
        _REFRESH(keys=[slot.key for slot in slots], args=[member, SLOT_SECONDS], client=redis())


def slots_release(slots: list[Slot], member: str) -> None:
    if slots:
        pipe = redis().pipeline(transaction=False)
        for slot in slots:
            pipe.zrem(slot.key, member)
        pipe.execute()


class LeaderboardConsumer(AsyncJsonWebsocketConsumer):
    tenant: Tenant | None = None
    only_board: str | None = None  # a share-link ticket is bound to its board
    share_expires_at: int | None = None
    expiry: asyncio.TimerHandle | None = None
    expiry_task: asyncio.Task[None] | None = None
    slots: list[Slot] = []  # replaced per connection, never mutated
    counted = False  # holds one of this process's connections
    slot_refresher: asyncio.Task[None] | None = None

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
        user_id: int | None = None
        found: Ticket | None = None
        if token:
            member = await database_sync_to_async(in_system)(
                "membership resolution", _tenant_for_token, token, slug
            )
            if member is not None:
                tenant, user_id = member
        elif ticket:
            found = await database_sync_to_async(ticket_read)(ticket)
            if found is not None:
                tenant, self.only_board = found.tenant, found.only_board
                self.share_expires_at = found.share_expires_at
                user_id = found.user_id
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
        if self.share_expires_at is not None and self.share_expires_at <= time.time():
            await self._share_expired()
            return
        address = scope_client_address(self.scope)
        if not await self._slots_claim(connection_slots(user_id=user_id, ticket=found, address=address)):
            return
        if self.share_expires_at is not None:
            loop = asyncio.get_running_loop()

            def expire() -> None:
                self.expiry_task = loop.create_task(self._share_expired())

            self.expiry = loop.call_later(self.share_expires_at - time.time(), expire)
        self.tenant = tenant
        publisher.attach()

    async def _slots_claim(self, slots: list[Slot]) -> bool:
        """Count this connection against its limits; over one, say which and close 4429 (the client waits a
        minute before it tries again). Nothing here touches the channel layer."""
        global _process_connections
        limit = int(settings.LEADERBOARD_WS_MAX_CONNECTIONS)
        full: str | None = None
        if _process_connections >= limit:
            full = "server"
        else:
            _process_connections += 1  # no await since the check: one event loop, so no race
            self.counted = True
            refused = await sync_to_async(slots_claim, thread_sensitive=False)(slots, self.channel_name)
            if refused is None:
                self.slots = slots
                self.slot_refresher = asyncio.get_running_loop().create_task(self._slots_refresh())
                return True
            full = refused.what
            _process_connections -= 1
            self.counted = False
        await self.send_json(
            {
                "type": "error",
                "code": "too_many_connections",
                "message": f"Too many live connections for this {full}. Try again later.",
                "limit": full,
            }
        )
        await self.close(code=CLOSE_TOO_MANY_CONNECTIONS)
        return False

    async def _slots_refresh(self) -> None:
        while True:
            await asyncio.sleep(SLOT_REFRESH_SECONDS)
            try:
                await sync_to_async(slots_refresh, thread_sensitive=False)(self.slots, self.channel_name)
            except Exception:  # Redis away for a moment: the next refresh tries again
                logger.warning("WebSocket slot refresh failed", exc_info=True)

    async def _share_expired(self) -> None:
        await self.send_json({"type": "error", "code": "share_expired", "message": "The share link expired."})
        await self.close(code=CLOSE_SHARE_EXPIRED)

    async def disconnect(self, code: int) -> None:
        global _process_connections
        if self.expiry is not None:
            self.expiry.cancel()
        if self.slot_refresher is not None:
            self.slot_refresher.cancel()
        if self.counted:
            self.counted = False
            _process_connections -= 1
        if self.slots:
            slots, self.slots = self.slots, []
            await sync_to_async(slots_release, thread_sensitive=False)(slots, self.channel_name)
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
