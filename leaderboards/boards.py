"""What a board is, which time buckets a window covers, and the Redis key scheme.

A *family* is everything that decides which events count: tenant, metric, currency (money metrics only),
city and show. Every key of one family carries the same `{...}` hash tag, so ZUNIONSTORE over its buckets
works on Redis Cluster. The window and the genre filter are applied when a board is read: the window picks
buckets, the genre keeps the artists whose `Artist.genres` contains it (the decided semantics)."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

METRICS = (
    "plays",
    "listen_seconds",
    "unique_listeners",
    "votes",
    "attendance",
    "money_spent",
    "money_earned",
    "follows",
    "shares",
)
MONEY_METRICS = frozenset({"money_spent", "money_earned"})
# unique_listeners is not additive over buckets: it is read exactly from the rollups (see selectors).
BUCKETED_METRICS = frozenset(METRICS) - {"unique_listeners"}

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
HOURLY = "h"
DAILY = "d"
ALL_TIME = "a"
GRANULARITY_SIZE = {HOURLY: HOUR, DAILY: DAY}
# window -> (granularity, length in units). "all" reads the all-time key.
WINDOWS: dict[str, tuple[str, int]] = {
    "1h": (HOURLY, 1),
    "24h": (HOURLY, 24),
    "7d": (DAILY, 7),
    "30d": (DAILY, 30),
    "90d": (DAILY, 90),
}
WINDOW_NAMES = (*WINDOWS, "all")
# How long a bucket must live: the longest window of its granularity plus one bucket (windows start on the
# bucket boundary at or before now - length) plus a margin for clock skew between hosts.
BUCKET_RETENTION = {HOURLY: 25 * HOUR + timedelta(minutes=15), DAILY: 91 * DAY + timedelta(hours=6)}
GLOBAL_PREFIX = "lb"


def floor_to(moment: datetime, granularity: str) -> datetime:
    moment = moment.astimezone(UTC)
    if granularity == HOURLY:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def window_start(window: str, now: datetime) -> datetime | None:
    """A rolling window starts at the bucket boundary at or before `now - length`: it covers between its
    nominal length and one bucket more (1h: 60-120 minutes; 7d: 7-8 days). None for "all"."""
    if window == "all":
        return None
    granularity, units = WINDOWS[window]
    return floor_to(now - units * GRANULARITY_SIZE[granularity], granularity)


def window_buckets(window: str, now: datetime) -> tuple[str, list[datetime]]:
    granularity, _ = WINDOWS[window]
    start = window_start(window, now)
    assert start is not None
    step = GRANULARITY_SIZE[granularity]
    last = floor_to(now, granularity)
    buckets = []
    while start <= last:
        buckets.append(start)
        start += step
    return granularity, buckets


def live_buckets(granularity: str, now: datetime) -> list[datetime]:
    """Every bucket some window of this granularity may read now (what a rebuild must fill)."""
    longest = "24h" if granularity == HOURLY else "90d"
    return window_buckets(longest, now)[1]


def bucket_expires_at(granularity: str, bucket_start: datetime) -> datetime:
    return bucket_start + BUCKET_RETENTION[granularity]


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class BoardFamily:
    tenant_id: int
    metric: str
    currency: str = ""  # money metrics only
    city: str = ""  # "" = every city
    show_id: int | None = None

    @property
    def tag(self) -> str:
        # The city is hashed: it is free text and could contain braces or spaces.
        city = _digest(self.city) if self.city else "-"
        show = str(self.show_id) if self.show_id is not None else "-"
        return f"{{{GLOBAL_PREFIX}:{self.tenant_id}:{self.metric}:{self.currency or '-'}:{city}:{show}}}"

    def bucket_key(self, granularity: str, bucket_start: datetime | None = None) -> str:
        if granularity == ALL_TIME:
            return f"{self.tag}:a"
        assert bucket_start is not None
        stamp = bucket_start.strftime("%Y%m%d%H" if granularity == HOURLY else "%Y%m%d")
        return f"{self.tag}:{granularity}:{stamp}"

    def built_key(self, granularity: str) -> str:
        return f"{self.tag}:built:{granularity}"

    def window_key(self, window: str) -> str:
        return f"{self.tag}:w:{window}"

    def ranking_key(self, window: str, genre: str) -> str:
        return f"{self.tag}:r:{window}:{_digest(genre) if genre else '-'}"

    def snapshot_keys(self, window: str, genre: str) -> tuple[str, str, str]:
        base = f"{self.tag}:s:{window}:{_digest(genre) if genre else '-'}"
        return f"{base}:prev", f"{base}:cur", f"{base}:rot"

    def describe(self) -> dict[str, object]:
        """What the family counts, in the API's words (the audit log shows this)."""
        return {
            "metric": self.metric,
            "currency": self.currency or None,
            "city": self.city or None,
            "show_id": self.show_id,
        }

    def as_token(self) -> str:
        """A compact id for the dirty set and the families registry: a JSON array, so that no value (a city
        is free text) can change the token's structure."""
        return _token_dump([self.tenant_id, self.metric, self.currency, self.show_id, self.city])

    @classmethod
    def from_token(cls, token: str) -> BoardFamily:
        """Raises BadToken for anything as_token did not write (an older format, a corrupted entry)."""
        fields = _token_load(token, 5)
        tenant_id, metric, currency, show_id, city = fields
        if (
            not isinstance(tenant_id, int)
            or metric not in METRICS
            or not isinstance(currency, str)
            or not (show_id is None or isinstance(show_id, int))
            or not isinstance(city, str)
        ):
            raise BadToken(token)
        return cls(tenant_id, metric, currency, city, show_id)


@dataclass(frozen=True, slots=True)
class Board:
    """A board as clients name it: a family, a window and an optional genre."""

    family: BoardFamily
    window: str
    genre: str = ""

    def describe(self) -> dict[str, object]:
        return {
            "metric": self.family.metric,
            "window": self.window,
            "city": self.family.city or None,
            "genre": self.genre or None,
            "show_id": self.family.show_id,
            "currency": self.family.currency or None,
        }

    @property
    def group_name(self) -> str:
        """Channels group for the live feed (ASCII alphanumerics, hyphens, periods; < 100 chars)."""
        token = f"{self.family.as_token()}|{self.window}|{self.genre}"
        return f"lb.{self.family.tenant_id}.{_digest(token)}{_digest(token[::-1])}"

    def as_token(self) -> str:
        return _token_dump([self.window, self.genre, self.family.as_token()])

    @classmethod
    def from_token(cls, token: str) -> Board:
        """Raises BadToken for anything as_token did not write."""
        window, genre, family = _token_load(token, 3)
        if window not in WINDOWS or not isinstance(genre, str) or not isinstance(family, str):
            raise BadToken(token)
        return cls(BoardFamily.from_token(family), window, genre)


class BadToken(ValueError):
    """A stored family or board token that cannot be read back: skipped and dropped by its reader, so one bad
    entry never stops the publisher or reconcile for everyone else."""


def _token_dump(fields: list[object]) -> str:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def _token_load(token: str, size: int) -> list[Any]:
    try:
        fields = json.loads(token)
    except ValueError:
        raise BadToken(token) from None
    if not isinstance(fields, list) or len(fields) != size:
        raise BadToken(token)
    return fields


# What a board filter value may be, at every entrance (API, WebSocket, share links): city and genre are
# printable text of bounded length without the characters that delimit or quote (\ | { } < > ");
# a currency is three ASCII letters.
FILTER_MAX_LENGTH = {"city": 128, "genre": 64}
_FORBIDDEN = frozenset('|{}<>"\\')
_CURRENCY = re.compile(r"[A-Za-z]{3}")


def filter_value_problem(field: str, value: str) -> str | None:
    """Why `value` cannot be the board filter `field` ("city", "genre" or "currency"), or None if it can."""
    if field == "currency":
        return None if _CURRENCY.fullmatch(value) else "must be a three-letter currency code, such as EUR."
    limit = FILTER_MAX_LENGTH[field]
    if len(value) > limit:
        return f"must be at most {limit} characters."
    for char in value:
        if char in _FORBIDDEN or (unicodedata.category(char)[0] in "CZ" and char != " "):
            return 'must be printable text without control characters or any of | { } < > " \\.'
    return None


def families_touched(
    *, tenant_id: int, metric: str, currency: str, city: str, show_id: int | None
) -> list[BoardFamily]:
    """The families one event counts in: with and without its city, with and without its show."""
    cities = ("", city) if city else ("",)
    shows: tuple[int | None, ...] = (None, show_id) if show_id is not None else (None,)
    currency = currency if metric in MONEY_METRICS else ""
    return [BoardFamily(tenant_id, metric, currency, c, s) for c in cities for s in shows]
