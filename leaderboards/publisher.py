"""The live feed's publisher: turns "this family got new events" into at most one push per board per
LEADERBOARD_PUSH_INTERVAL seconds.

Processor workers (any number) only SADD the families they touched to `lb:dirty`. Each Daphne process runs
one publisher loop while it has WebSocket clients; the loops elect one leader with a Redis lock, so whatever
the number of processes a board is computed and pushed once. The leader drains the dirty set, recomputes the
subscribed boards of those families (skipping boards pushed less than an interval ago: they stay pending),
and group_sends the new top 100 when it changed. Consumers cut it to each client's `top` N and send only
when that slice changed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from coliseum.ops.requests import counter_incr
from coliseum.rls import in_system

from .boards import GLOBAL_PREFIX, BadToken, Board
from .selectors import board_ranking
from .services import DIRTY_KEY, redis

logger = logging.getLogger(__name__)

SUBSCRIPTIONS_KEY = f"{GLOBAL_PREFIX}:subs"  # zset: board token -> expires at (refreshed by its process)
LOCK_KEY = f"{GLOBAL_PREFIX}:publisher"
MAX_TOP = 100


def push_interval() -> float:
    return float(getattr(settings, "LEADERBOARD_PUSH_INTERVAL", 1.0))


def version_key(board: Board) -> str:
    return f"{board.family.tag}:v:{board.window}:{board.group_name}"


def board_version(board: Board) -> int:
    value = redis().get(version_key(board))
    return int(value or 0)


class Publisher:
    def __init__(self) -> None:
        self.identity = uuid.uuid4().hex
        self.local: Counter[str] = Counter()  # board tokens subscribed in this process
        self.pending: set[str] = set()  # dirty families not pushed yet (coalesced)
        self.last_push: dict[str, float] = {}
        self.last_top: dict[str, list[tuple[int, int, int]]] = {}
        self.last_refresh = 0.0
        self.clients = 0
        self.task: asyncio.Task[None] | None = None

    # -- subscriptions of this process ---------------------------------------------------------------
    def subscribe(self, board: Board) -> None:
        token = board.as_token()
        self.local[token] += 1
        if self.local[token] == 1:
            redis().zadd(SUBSCRIPTIONS_KEY, {token: time.time() + 60})

    def unsubscribe(self, board: Board) -> None:
        token = board.as_token()
        self.local[token] -= 1
        if self.local[token] <= 0:
            del self.local[token]

    # -- the loop --------------------------------------------------------------------------------------
    def attach(self) -> None:
        loop = asyncio.get_running_loop()
        if self.task is not None and (self.task.done() or self.task.get_loop() is not loop):
            self.task, self.clients = None, 0  # a previous event loop ended (tests) or the task died
        self.clients += 1
        if self.task is None:
            self.task = loop.create_task(self.run())

    async def detach(self) -> None:
        self.clients -= 1
        if self.clients <= 0 and self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
            self.task = None
            self.clients = 0
            with contextlib.suppress(Exception):
                await database_sync_to_async(self.release)()

    def release(self) -> None:
        conn = redis()
        if conn.get(LOCK_KEY) in (self.identity, self.identity.encode()):
            conn.delete(LOCK_KEY)

    async def run(self) -> None:
        layer = get_channel_layer()
        assert layer is not None
        tick = min(0.1, push_interval() / 2)
        while True:
            try:
                messages = await database_sync_to_async(in_system)("board publisher, every tenant", self.tick)
                for group, message in messages:
                    await layer.group_send(group, message)
                if messages:
                    await database_sync_to_async(counter_incr)(name="board_pushes", amount=len(messages))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("leaderboard publisher tick failed")
                await asyncio.sleep(1)
            await asyncio.sleep(tick)

    def tick(self) -> list[tuple[str, dict[str, Any]]]:
        conn = redis()
        now = time.time()
        if now - self.last_refresh > 10 and self.local:
            conn.zadd(SUBSCRIPTIONS_KEY, {token: now + 60 for token in list(self.local)})
            self.last_refresh = now
        if not conn.set(LOCK_KEY, self.identity, nx=True, px=3000):
            if conn.get(LOCK_KEY) not in (self.identity, self.identity.encode()):
                return []
            conn.pexpire(LOCK_KEY, 3000)
        drained = conn.spop(DIRTY_KEY, 10_000) or []
        self.pending.update(d.decode() if isinstance(d, bytes) else d for d in drained)
        if not self.pending:
            return []
        conn.zremrangebyscore(SUBSCRIPTIONS_KEY, "-inf", now)
        by_family: dict[str, list[Board]] = {}
        for raw in conn.zrange(SUBSCRIPTIONS_KEY, 0, -1):
            try:
                board = Board.from_token(raw.decode() if isinstance(raw, bytes) else raw)
            except BadToken:  # one unreadable subscription must not stop every tenant's feed
                logger.warning("live feed: unreadable subscription dropped: %r", raw[:200])
                conn.zrem(SUBSCRIPTIONS_KEY, raw)
                continue
            by_family.setdefault(board.family.as_token(), []).append(board)
        interval = push_interval()
        still_pending: set[str] = set()
        messages: list[tuple[str, dict[str, Any]]] = []
        for family_token in self.pending:
            for board in by_family.get(family_token, []):
                token = board.as_token()
                if now - self.last_push.get(token, 0.0) < interval:
                    still_pending.add(family_token)
                    continue
                try:
                    message = self.board_message(board)
                except Exception:  # isolate: the other boards of this tick still go out
                    logger.exception("live feed: board %s not published", token[:200])
                    continue
                if message is not None:
                    self.last_push[token] = now
                    messages.append((board.group_name, message))
        self.pending = still_pending
        return messages

    def board_message(self, board: Board) -> dict[str, Any] | None:
        entries = board_ranking(board=board, fresh=True).entries[:MAX_TOP]
        token = board.as_token()
        top = [(e["artist_id"], e["rank"], e["score"]) for e in entries]
        if self.last_top.get(token) == top:
            return None
        self.last_top[token] = top
        version = int(redis().incr(version_key(board)))
        return {"type": "board.update", "board": token, "entries": entries, "version": version}


publisher = Publisher()
