"""Board reads: rank a board from Redis (rebuilding from the rollups when needed), page it, place an artist,
and rank a show's rounds.

Ranking is standard competition ranking ("1224") by score, ties ordered by artist name (then id). Artists
whose score over the window is zero are not on the board. A computed ranking is cached for
LEADERBOARD_CACHE_SECONDS; `generated_at` says when it was computed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Required, TypedDict, Unpack

import orjson
from django.conf import settings

from coliseum.errors import ApplicationError
from coliseum.models import Artist, Show, Tenant

from .boards import (
    ALL_TIME,
    MONEY_METRICS,
    Board,
    BoardFamily,
    filter_value_problem,
    window_buckets,
    window_start,
)
from .services import board_family_ensure_built, redis


@dataclass(frozen=True, slots=True)
class Ranking:
    generated_at: str
    entries: list[dict[str, Any]]  # rank, artist_id, artist_name, score, previous_rank
    fresh_until: float = 0.0  # time.monotonic() until which this copy may be served; 0: not cached


@dataclass(frozen=True, slots=True)
class BoardPage:
    body: dict[str, Any]  # the leaderboard API's answer
    fresh_until: float  # that of the ranking it pages (leaderboards/fast.py keeps the rendered body as long)


def _cache_ms() -> int:
    return int(float(getattr(settings, "LEADERBOARD_CACHE_SECONDS", 1.0)) * 1000)


def board_for(
    *,
    tenant: Tenant,
    metric: str,
    window: str,
    city: str | None = None,
    genre: str | None = None,
    show_id: int | None = None,
    currency: str | None = None,
) -> Board:
    """The board these filters name. Every entrance (API, WebSocket, share links) comes through here, so the
    filter values are checked here too: a value that is not a city, genre or currency is refused (400)."""
    problems = {
        field: [problem]
        for field, value in (("city", city), ("genre", genre), ("currency", currency))
        if value and (problem := filter_value_problem(field, value))
    }
    if problems:
        message = " ".join(f"{field} {texts[0]}" for field, texts in problems.items())
        raise ApplicationError(message, code="invalid", details=problems)
    money_currency = (currency or tenant.reporting_currency).upper() if metric in MONEY_METRICS else ""
    family = BoardFamily(tenant.pk, metric, money_currency, city or "", show_id)
    return Board(family, window, (genre or "").strip())


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _window_scores(board: Board) -> dict[int, int]:
    family, window = board.family, board.window
    conn = redis()
    now = datetime.now(UTC)
    if family.metric == "unique_listeners":
        # Distinct fans do not add up over buckets: read the exact figure from the rollups, cached briefly.
        key = family.window_key(window)
        cached = conn.zrange(key, 0, -1, withscores=True)
        if cached or conn.exists(f"{key}:empty"):
            return {int(_decode(m)): int(s) for m, s in cached}
        from ingestion.selectors import rollup_totals

        totals = rollup_totals(
            tenant_id=family.tenant_id,
            metric="unique_listeners",
            start=window_start(window, now),
            end=None,
            city=family.city or None,
            show_id=family.show_id,
        )
        ttl = int(float(getattr(settings, "LEADERBOARD_UNIQUE_CACHE_SECONDS", 5.0)) * 1000)
        totals = {a: v for a, v in totals.items() if v}
        pipe = conn.pipeline(transaction=False)
        if totals:
            pipe.zadd(key, {str(a): v for a, v in totals.items()})
            pipe.pexpire(key, ttl)
        else:
            pipe.set(f"{key}:empty", 1, px=ttl)
        pipe.execute()
        return totals
    if window == "all":
        board_family_ensure_built(family=family, granularity=ALL_TIME)
        raw = conn.zrange(family.bucket_key(ALL_TIME), 0, -1, withscores=True)
    else:
        granularity, buckets = window_buckets(window, now)
        board_family_ensure_built(family=family, granularity=granularity)
        key = family.window_key(window)
        pipe = conn.pipeline(transaction=False)
        pipe.zunionstore(key, [family.bucket_key(granularity, b) for b in buckets])
        pipe.pexpire(key, max(_cache_ms(), 100))
        pipe.zrange(key, 0, -1, withscores=True)
        raw = pipe.execute()[-1]
    return {int(_decode(m)): int(s) for m, s in raw if int(s) != 0}


def _previous_ranks(board: Board, ranks: dict[int, int]) -> dict[int, int]:
    """The ranks of the last published snapshot. Snapshots rotate every LEADERBOARD_SNAPSHOT_SECONDS:
    `previous_rank` is where the artist stood one to two snapshot periods ago."""
    conn = redis()
    prev_key, cur_key, rot_key = board.family.snapshot_keys(board.window, board.genre)
    pipe = conn.pipeline(transaction=False)
    pipe.exists(rot_key)
    pipe.hgetall(prev_key)
    rotated_recently, previous = pipe.execute()
    if not rotated_recently:
        period = int(getattr(settings, "LEADERBOARD_SNAPSHOT_SECONDS", 60))
        current = conn.hgetall(cur_key)
        if current:
            previous = current
        pipe = conn.pipeline(transaction=True)
        pipe.delete(prev_key, cur_key)
        if previous:
            pipe.hset(prev_key, mapping=previous)
            pipe.expire(prev_key, 86400)
        if ranks:
            pipe.hset(cur_key, mapping={str(a): r for a, r in ranks.items()})
            pipe.expire(cur_key, 86400)
        pipe.set(rot_key, 1, ex=period)
        pipe.execute()
    return {int(_decode(a)): int(_decode(r)) for a, r in previous.items()}


# Per-process copy of recently computed rankings: a hot board is read from memory, not even from Redis,
# for at most LEADERBOARD_CACHE_SECONDS (the same staleness bound as the shared Redis copy).
_local: dict[str, tuple[float, Ranking]] = {}
_LOCAL_MAX = 512


def board_ranking(*, board: Board, fresh: bool = False) -> Ranking:
    """The whole ranked board (cached briefly unless `fresh`)."""
    cache_key = board.family.ranking_key(board.window, board.genre)
    cache_ms = _cache_ms()
    now = time.monotonic()
    if not fresh and cache_ms > 0:
        hit = _local.get(cache_key)
        if hit is not None and hit[0] > now:
            return hit[1]
    conn = redis()
    if not fresh and cache_ms > 0:
        cached = conn.get(cache_key)
        if cached:
            data = orjson.loads(cached)
            until = now + min(cache_ms, max(0, conn.pttl(cache_key))) / 1000
            return _remember(cache_key, Ranking(data["generated_at"], data["entries"], until))
    scores = _window_scores(board)
    artists = Artist.objects.filter(tenant_id=board.family.tenant_id, pk__in=list(scores)).values_list(
        "pk", "name", "genres"
    )
    genre = board.genre.casefold()
    rows = [
        (pk, name, scores[pk])
        for pk, name, genres in artists
        if not genre or any(g.casefold() == genre for g in genres)
    ]
    rows.sort(key=lambda r: (-r[2], r[1], r[0]))
    ranks: dict[int, int] = {}
    rank = 0
    for index, (pk, _name, score) in enumerate(rows):
        if index == 0 or score != rows[index - 1][2]:
            rank = index + 1
        ranks[pk] = rank
    previous = _previous_ranks(board, ranks)
    entries = [
        {
            "rank": ranks[pk],
            "artist_id": pk,
            "artist_name": name,
            "score": score,
            "previous_rank": previous.get(pk),
        }
        for pk, name, score in rows
    ]
    generated_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    if cache_ms <= 0:
        return Ranking(generated_at, entries)
    conn.set(cache_key, orjson.dumps({"generated_at": generated_at, "entries": entries}), px=cache_ms)
    return _remember(cache_key, Ranking(generated_at, entries, now + cache_ms / 1000))


def _remember(key: str, ranking: Ranking) -> Ranking:
    if len(_local) >= _LOCAL_MAX:
        _local.clear()
    _local[key] = (ranking.fresh_until, ranking)
    return ranking


class BoardQuery(TypedDict, total=False):
    """board_page's parameters besides the tenant (metric and window are required)."""

    metric: Required[str]
    window: Required[str]
    city: str | None
    genre: str | None
    show_id: int | None
    page: int
    page_size: int
    artist_id: int | None
    currency: str | None


def board_page(*, tenant: Tenant, **query: Unpack[BoardQuery]) -> dict[str, Any]:
    """The leaderboard API's answer body."""
    return board_page_timed(tenant=tenant, **query).body


def board_page_timed(
    *,
    tenant: Tenant,
    metric: str,
    window: str,
    city: str | None = None,
    genre: str | None = None,
    show_id: int | None = None,
    page: int = 1,
    page_size: int = 50,
    artist_id: int | None = None,
    currency: str | None = None,
) -> BoardPage:
    """The leaderboard API's answer body and how long it stays fresh."""
    board = board_for(
        tenant=tenant,
        metric=metric,
        window=window,
        city=city,
        genre=genre,
        show_id=show_id,
        currency=currency,
    )
    ranking = board_ranking(board=board)
    offset = (page - 1) * page_size
    body: dict[str, Any] = {
        "metric": metric,
        "window": window,
        "filters": {
            "city": board.family.city or None,
            "genre": board.genre or None,
            "show_id": show_id,
            "currency": board.family.currency or None,
        },
        "generated_at": ranking.generated_at,
        "total_artists": len(ranking.entries),
        "page": page,
        "page_size": page_size,
        "entries": ranking.entries[offset : offset + page_size],
    }
    if artist_id is not None:
        body["artist"] = _artist_block(ranking.entries, artist_id)
    return BoardPage(body, ranking.fresh_until)


def _artist_block(entries: list[dict[str, Any]], artist_id: int) -> dict[str, Any]:
    index = next((i for i, e in enumerate(entries) if e["artist_id"] == artist_id), None)
    if index is None:
        return {"artist_id": artist_id, "rank": None, "score": 0, "neighbors": []}
    neighbors = entries[max(0, index - 2) : index] + entries[index + 1 : index + 3]
    entry = entries[index]
    return {"artist_id": artist_id, "rank": entry["rank"], "score": entry["score"], "neighbors": neighbors}


def artist_rank(
    *,
    tenant: Tenant,
    metric: str,
    window: str,
    artist_id: int,
    city: str | None = None,
    genre: str | None = None,
    show_id: int | None = None,
    currency: str | None = None,
) -> tuple[int, int] | None:
    """(rank, score) of an artist on a board, None when it is not on it."""
    board = board_for(
        tenant=tenant,
        metric=metric,
        window=window,
        city=city,
        genre=genre,
        show_id=show_id,
        currency=currency,
    )
    for entry in board_ranking(board=board).entries:
        if entry["artist_id"] == artist_id:
            return int(entry["rank"]), int(entry["score"])
    return None


def show_standings(*, tenant: Tenant, show: Show, round: int | None = None) -> dict[str, Any]:
    """Votes per artist per round of a live show, first vote per fan per show and round (ingestion's rule)."""
    from ingestion.selectors import show_round_votes

    assert show.tenant_id == tenant.pk
    by_round = show_round_votes(tenant_id=tenant.pk, show_id=show.pk, round=round)
    artist_ids = {a for votes in by_round.values() for a in votes}
    names = dict(Artist.objects.filter(tenant=tenant, pk__in=artist_ids).values_list("pk", "name"))
    rounds = []
    for number in sorted(by_round):
        rows = sorted(
            ((a, names.get(a, ""), v) for a, v in by_round[number].items() if a in names and v),
            key=lambda r: (-r[2], r[1], r[0]),
        )
        entries = []
        rank = 0
        for index, (pk, name, votes) in enumerate(rows):
            if index == 0 or votes != rows[index - 1][2]:
                rank = index + 1
            entries.append({"rank": rank, "artist_id": pk, "artist_name": name, "votes": votes})
        rounds.append({"round": number, "total_votes": sum(r[2] for r in rows), "entries": entries})
    return {
        "show_id": show.pk,
        "show_title": show.title,
        "round": round,
        "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "rounds": rounds,
    }
