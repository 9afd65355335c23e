"""What a tenant's code does against Coliseum from outside: sign in, call the API with a bearer token, sign a
Passport webhook as the docs say, and wait (bounded) for work that happens in the background."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import requests

T = TypeVar("T")


class TenantClient:
    """requests with the tenant member's JWT and `X-Tenant`, against the stack's base URL."""

    def __init__(self, base_url: str, *, access: str, tenant: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {access}", "X-Tenant": tenant})
        self.access = access
        self.tenant = tenant

    @classmethod
    def sign_in(cls, base_url: str, *, username: str, password: str, tenant: str) -> TenantClient:
        answer = requests.post(
            f"{base_url}/api/v1/auth/token", json={"username": username, "password": password}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        return cls(base_url, access=answer.json()["access"], tenant=tenant)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(f"{self.base_url}{path}", params=params, timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session.post(f"{self.base_url}{path}", json=body, timeout=30)

    def ok(self, path: str, **params: Any) -> Any:
        answer = self.get(path, **params)
        assert answer.status_code == 200, f"GET {path} {params}: {answer.status_code} {answer.text[:500]}"
        return answer.json()


def eventually(
    probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float = 60, every: float = 0.5
) -> T:
    """Poll `probe` until `done(value)` or the timeout; the last value either way (the caller asserts it)."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(every)
        value = probe()
    return value


# --- Passport webhook --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookKey:
    key_id: str
    secret: str


def passport_signature(secret: str, body: bytes, at: float | None = None) -> str:
    """`X-Passport-Signature: t=<unix>,v1=<hex>`: HMAC-SHA256 of "<t>.<raw body>" (README, Ingestion)."""
    t = str(int(time.time() if at is None else at))
    return f"t={t},v1={hmac.new(secret.encode(), f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"


def passport_post(base_url: str, key: WebhookKey, events: list[dict[str, Any]]) -> requests.Response:
    """One delivery, signed at send time (a retry is signed again, as a sender's retry is)."""
    body = json.dumps({"events": events}).encode()
    return requests.post(
        f"{base_url}/webhooks/passport/events",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Passport-Key": key.key_id,
            "X-Passport-Signature": passport_signature(key.secret, body),
        },
        timeout=30,
    )


def play(fan: str, artist: str, *, seconds: int, city: str, at: datetime) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "player.track_played",
        "occurred_at": at.isoformat(),
        "user_id": fan,
        "properties": {
            "track_id": f"track-{artist}",
            "artist_id": artist,
            "duration_seconds": seconds,
            "city": city,
        },
    }


def vote(fan: str, artist: str, *, show: str, round_: int, at: datetime, weight: int = 1) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "coliseum.vote_cast",
        "occurred_at": at.isoformat(),
        "user_id": fan,
        "properties": {"artist_id": artist, "show_id": show, "round": round_, "weight": weight},
    }


def minutes_ago(n: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=n)


# --- Recounts from the events a test sent ------------------------------------------------------------------


@dataclass(frozen=True)
class Play:
    fan: str
    artist: str
    seconds: int


def play_recount(plays: Iterable[Play]) -> dict[str, dict[str, int]]:
    """Per artist: plays, listen_seconds and unique_listeners, by brute force."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"plays": 0, "listen_seconds": 0})
    fans: dict[str, set[str]] = defaultdict(set)
    for p in plays:
        out[p.artist]["plays"] += 1
        out[p.artist]["listen_seconds"] += p.seconds
        fans[p.artist].add(p.fan)
    return {artist: {**totals, "unique_listeners": len(fans[artist])} for artist, totals in out.items()}


def vote_recount(votes: Iterable[tuple[datetime, str, str, int, int]]) -> dict[int, Counter[str]]:
    """(at, fan, artist, round, weight) -> round -> artist -> weighted votes; a fan's earliest vote per round
    counts (README, "Durable and exact")."""
    first: dict[tuple[str, int], tuple[datetime, str, int]] = {}
    for at, fan, artist, round_, weight in votes:
        if (fan, round_) not in first or at < first[(fan, round_)][0]:
            first[(fan, round_)] = (at, artist, weight)
    out: dict[int, Counter[str]] = defaultdict(Counter)
    for (_fan, round_), (_at, artist, weight) in first.items():
        out[round_][artist] += weight
    return out


def kpi_window() -> dict[str, str]:
    """A KPI range holding everything the suite sends (events are dated minutes before now)."""
    now = datetime.now(UTC)
    return {"from": (now - timedelta(hours=3)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}
