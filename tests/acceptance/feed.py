"""A live-feed client as a venue screen or an Enterprise integration holds one: connect with the JWT to the
URL `GET /api/v1/realtime` names, subscribe to one board, then sit idle (no frames of its own, no keepalive
pings; protocol pings from the server are answered, as browsers do) and record what arrives, and when."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect


@dataclass
class IdleFeed:
    url: str
    board: dict[str, Any]
    opened_at: float = 0.0
    snapshot: dict[str, Any] | None = None
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    closed: tuple[float, int | None, str] | None = None
    open_error: str | None = None
    _connection: ClientConnection | None = None
    _thread: threading.Thread | None = None
    _arrived: threading.Condition = field(default_factory=threading.Condition)
    _exit: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def open(self, timeout: float = 30) -> None:
        self._connection = self._exit.enter_context(
            connect(self.url, ping_interval=None, open_timeout=timeout, max_size=2**20)
        )
        self.opened_at = time.monotonic()
        self._connection.send(json.dumps({"action": "subscribe", "board": self.board, "top": 10}))
        first = json.loads(self._connection.recv(timeout=timeout))
        assert first.get("type") == "snapshot", first
        self.snapshot = first
        self._thread = threading.Thread(target=self._listen, name="idle-feed", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        assert self._connection is not None
        try:
            for raw in self._connection:
                with self._arrived:
                    self.received.append((time.monotonic(), json.loads(raw)))
                    self._arrived.notify_all()
        except ConnectionClosed as closed:
            self._closed_now(
                closed.rcvd.code if closed.rcvd else None, closed.rcvd.reason if closed.rcvd else ""
            )
        else:
            rcvd = self._connection.close_code
            self._closed_now(rcvd, self._connection.close_reason or "")

    def _closed_now(self, code: int | None, reason: str) -> None:
        with self._arrived:
            self.closed = (time.monotonic() - self.opened_at, code, reason)
            self._arrived.notify_all()

    def idle_for(self) -> float:
        return time.monotonic() - self.opened_at

    def wait_update(self, after: float, timeout: float) -> dict[str, Any] | None:
        """The first `update` received after monotonic time `after`, waiting at most `timeout`."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for at, message in self.received:
                    if at >= after and message.get("type") == "update":
                        return message
                left = deadline - time.monotonic()
                if left <= 0 or self.closed is not None:
                    return None
                self._arrived.wait(left)

    def close(self) -> None:
        self._exit.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
