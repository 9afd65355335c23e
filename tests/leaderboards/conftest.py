"""Leaderboard fixtures: events go through ingestion's one write path and its processor, as in production."""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest

from coliseum.models import Tenant
from ingestion.services import event_batch_ingest, processing_run_pending
from tests.processes import ROOT, process_env, process_stop

_ids = itertools.count(1)


def event(
    kind: str,
    *,
    at: datetime,
    user: str,
    event_id: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    """A Passport event (kind: play, vote, earn) with the properties the catalog asks for."""
    props: dict[str, Any] = {k: v for k, v in properties.items() if v is not None}
    if kind == "play":
        props.setdefault("track_id", "t1")
        props.setdefault("duration_seconds", 180)
        type_ = "player.track_played"
    elif kind == "vote":
        props.setdefault("round", 1)
        type_ = "coliseum.vote_cast"
    elif kind == "earn":
        props.setdefault("reason", "ticket_share")
        props.setdefault("currency", "USD")
        type_ = "treasury.money_earned"
    else:
        type_ = kind
    return {
        "event_id": event_id or f"evt-{next(_ids)}",
        "type": type_,
        "occurred_at": at.isoformat(),
        "user_id": user,
        "properties": props,
    }


def ingest(tenant: Tenant, events: list[dict[str, Any]]) -> None:
    """Ingest and process synchronously (the processor then applies the contributions to the boards)."""
    result = event_batch_ingest(tenant=tenant, events=events, source="import")
    assert not result.rejected, result.rejected
    processing_run_pending()


@pytest.fixture(autouse=True)
def _board_settings(settings: Any) -> Iterator[None]:
    settings.LEADERBOARD_CACHE_SECONDS = 0  # every read recomputes: tests see each write at once
    settings.LEADERBOARD_PUSH_INTERVAL = 0.2
    yield


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def daphne(port: int | None = None, **env: str) -> Iterator[str]:
    """A real Daphne, started as the Procfile starts it, on a free port (or `port`, to restart one) and on
    this test's database and Redis DB (its publisher sees our events). Yields its ws:// base URL; its log goes
    to a temporary file, shown if it dies at start."""
    port = port or _free_port()
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    command.append("coliseum.asgi:application")
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=ROOT, env=process_env(**env), stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(log.read().decode(errors="replace"))
                time.sleep(0.2)
            yield f"ws://127.0.0.1:{port}"
        finally:
            process_stop(process, timeout=10)
