"""The live feed holds a venue screen's connection through idle time: a client subscribed to a board when the
stack came up (conftest's idle_feed), silent since, still receives the update an event makes after 60 s.
This scenario runs last, so the idle minute overlaps the others."""

from __future__ import annotations

import time

from .clients import WebhookKey, minutes_ago, passport_post, play
from .conftest import LIVE_FEED_BOARD
from .feed import IdleFeed
from .stack import Stack

IDLE_SECONDS = 60


def test_an_idle_websocket_receives_the_update_after_a_minute(
    stack: Stack, idle_feed: IdleFeed, webhook_key: WebhookKey
) -> None:
    # given a client subscribed to the board, idle for a whole minute
    assert idle_feed.open_error is None, idle_feed.open_error
    assert idle_feed.snapshot is not None and idle_feed.snapshot["entries"] == []
    time.sleep(max(0.0, IDLE_SECONDS - idle_feed.idle_for()))
    assert idle_feed.closed is None, (
        f"the server closed the idle connection after {idle_feed.closed[0]:.1f} s "
        f"with code {idle_feed.closed[1]} {idle_feed.closed[2]!r}"
    )
    assert [m for _, m in idle_feed.received if m.get("type") in ("update", "error")] == []

    # when a fan plays a track in the board's city
    sent_at = time.monotonic()
    sent = passport_post(
        stack.base_url,
        webhook_key,
        [play("fan-night-1", "artist-99", seconds=150, city=LIVE_FEED_BOARD["city"], at=minutes_ago(1))],
    )
    assert sent.status_code == 202, sent.text

    # then the client receives the new board
    update = idle_feed.wait_update(after=sent_at, timeout=15)
    assert update is not None, f"no update; connection closed: {idle_feed.closed}"
    assert [(e["rank"], e["artist_name"], e["score"]) for e in update["entries"]] == [(1, "artist-99", 1)]
