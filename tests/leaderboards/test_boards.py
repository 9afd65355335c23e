"""Boards against a brute-force ranking of the raw events: every window, filter combinations, late and
duplicate events, the incremental path, a Redis flush mid-stream and the reconcile job."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django_redis import get_redis_connection

from coliseum.models import Artist, Show, Tenant
from leaderboards.boards import BoardFamily
from leaderboards.selectors import artist_rank, board_page
from leaderboards.services import boards_reconcile
from tests.factories import ArtistFactory, ShowFactory, TenantFactory

from .conftest import event, ingest

pytestmark = [pytest.mark.django_db, pytest.mark.clock]

WINDOW_SPAN = {
    "1h": (timedelta(hours=1), "hour"),
    "24h": (timedelta(hours=24), "hour"),
    "7d": (timedelta(days=7), "day"),
    "30d": (timedelta(days=30), "day"),
    "90d": (timedelta(days=90), "day"),
}
CITIES = ("Lisbon", "Porto", "Faro")


def _window_start(window: str, now: datetime) -> datetime | None:
    """Independent of leaderboards.boards: the bucket boundary at or before now - length."""
    if window == "all":
        return None
    length, unit = WINDOW_SPAN[window]
    moment = now - length
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if unit == "day" else moment


def brute_force(
    events: list[dict[str, Any]],
    artists: dict[str, Artist],
    shows: dict[str, Show],
    *,
    metric: str,
    window: str,
    city: str | None = None,
    genre: str | None = None,
    show: str | None = None,
    currency: str = "USD",
) -> list[tuple[int, str, int]]:
    """(rank, artist name, score) straight from the raw events: duplicates dropped, a fan's earliest vote
    per show and round counted, 1224 ranking with ties by name."""
    seen: set[str] = set()
    unique: list[dict[str, Any]] = []
    for e in events:
        if e["event_id"] not in seen:
            seen.add(e["event_id"])
            unique.append(e)
    counted_votes: dict[tuple[str, int, str], dict[str, Any]] = {}
    for e in unique:
        if e["type"] == "coliseum.vote_cast":
            p = e["properties"]
            key = (p["show_id"], p["round"], e["user_id"])
            best = counted_votes.get(key)
            if best is None or e["occurred_at"] < best["occurred_at"]:
                counted_votes[key] = e
    counted_ids = {e["event_id"] for e in counted_votes.values()}
    start = _window_start(window, datetime.now(UTC))
    scores: dict[str, int] = defaultdict(int)
    listeners: dict[str, set[str]] = defaultdict(set)
    for e in unique:
        p = e["properties"]
        at = datetime.fromisoformat(e["occurred_at"])
        if start is not None and at < start:
            continue
        if city and p.get("city") != city:
            continue
        if show and p.get("show_id") != show:
            continue
        ext = p["artist_id"]
        if metric == "plays" and e["type"] == "player.track_played":
            scores[ext] += 1
        elif metric == "listen_seconds" and e["type"] == "player.track_played":
            scores[ext] += p["duration_seconds"]
        elif metric == "unique_listeners" and e["type"] == "player.track_played":
            listeners[ext].add(e["user_id"])
        elif metric == "votes" and e["event_id"] in counted_ids:
            scores[ext] += p.get("weight", 1)
        elif metric == "money_earned" and e["type"] == "treasury.money_earned" and p["currency"] == currency:
            scores[ext] += p["amount_minor"]
    for ext, fans in listeners.items():
        scores[ext] = len(fans)
    rows = [
        (artists[ext].name, score)
        for ext, score in scores.items()
        if score and (not genre or genre in artists[ext].genres)
    ]
    rows.sort(key=lambda r: (-r[1], r[0]))
    ranked: list[tuple[int, str, int]] = []
    for i, (name, score) in enumerate(rows):
        rank = ranked[-1][0] if i and score == rows[i - 1][1] else i + 1
        ranked.append((rank, name, score))
    return ranked


def served(tenant: Tenant, **kwargs: Any) -> list[tuple[int, str, int]]:
    body = board_page(tenant=tenant, page_size=100, **kwargs)
    return [(e["rank"], e["artist_name"], e["score"]) for e in body["entries"]]


def _world(tenant: Tenant) -> tuple[dict[str, Artist], dict[str, Show]]:
    genres = [["rock"], ["pop"], ["rock", "indie"], ["jazz"], ["pop", "rock"], ["indie"]]
    artists = {
        f"a{i}": ArtistFactory.create(tenant=tenant, external_id=f"a{i}", name=name, genres=genres[i])
        for i, name in enumerate(["Ayla", "Bruno", "Carmen", "Dina", "Eli", "Fado Trio"])
    }
    shows = {f"s{i}": ShowFactory.create(tenant=tenant, external_id=f"s{i}") for i in range(2)}
    return artists, shows


def _random_events(rng: random.Random, now: datetime, count: int, max_age: timedelta) -> list[dict[str, Any]]:
    out = []
    for _ in range(count):
        # Minutes precision keeps the earliest vote unambiguous; at least a minute in the past.
        age = timedelta(minutes=rng.randint(1, int(max_age.total_seconds() // 60)))
        if rng.random() < 0.4:  # plenty of recent events so short windows are not empty
            age = timedelta(minutes=rng.randint(1, 30 * 60))
        at = (now - age).replace(second=rng.randint(0, 59), microsecond=rng.randint(0, 999_999))
        artist = f"a{rng.randint(0, 5)}"
        city = rng.choice(CITIES)
        show = rng.choice(["s0", "s1", None])
        user = f"fan-{rng.randint(1, 25)}"
        kind = rng.choice(["play", "play", "vote", "earn"])
        if kind == "vote":
            out.append(
                event(
                    "vote",
                    at=at,
                    user=user,
                    artist_id=artist,
                    show_id=show or "s0",
                    city=city,
                    round=rng.randint(1, 2),
                    weight=rng.choice([1, 1, 2]),
                )
            )
        elif kind == "earn":
            out.append(
                event(
                    "earn",
                    at=at,
                    user=user,
                    artist_id=artist,
                    city=city,
                    show_id=show,
                    amount_minor=rng.randint(100, 5000),
                    currency=rng.choice(["USD", "USD", "EUR"]),
                )
            )
        else:
            out.append(
                event(
                    "play",
                    at=at,
                    user=user,
                    artist_id=artist,
                    city=city,
                    show_id=show,
                    duration_seconds=rng.randint(30, 300),
                )
            )
    return out


BOARDS: list[dict[str, Any]] = [
    {"metric": m, "window": w}
    for m in ("plays", "listen_seconds", "unique_listeners", "votes", "money_earned")
    for w in ("1h", "24h", "7d", "30d", "90d", "all")
] + [
    {"metric": "plays", "window": "24h", "city": "Lisbon"},
    {"metric": "plays", "window": "90d", "genre": "rock"},
    {"metric": "plays", "window": "7d", "show": "s1", "city": "Porto"},
    {"metric": "votes", "window": "all", "show": "s0"},
    {"metric": "votes", "window": "30d", "city": "Faro", "genre": "pop", "show": "s0"},
    {"metric": "unique_listeners", "window": "90d", "city": "Porto", "genre": "indie"},
    {"metric": "listen_seconds", "window": "all", "show": "s0", "genre": "rock"},
    {"metric": "money_earned", "window": "all", "currency": "EUR"},
    {"metric": "money_earned", "window": "30d", "currency": "EUR", "city": "Lisbon"},
]


def _check_all(
    tenant: Tenant, events: list[dict[str, Any]], artists: dict[str, Artist], shows: dict[str, Show]
):
    for spec in BOARDS:
        show_ext = spec.get("show")
        kwargs = {k: v for k, v in spec.items() if k != "show"}
        expected = brute_force(events, artists, shows, show=show_ext, **kwargs)
        got = served(tenant, show_id=shows[show_ext].pk if show_ext else None, **kwargs)
        assert got == expected, spec


def test_every_board_equals_a_brute_force_ranking_through_late_duplicate_events_and_a_redis_flush() -> None:
    # given a tenant with six artists, two shows and 100 days of plays, votes and money
    tenant = TenantFactory.create(plan="enterprise")
    artists, shows = _world(tenant)
    rng = random.Random(4)
    now = datetime.now(UTC)
    first = _random_events(rng, now, 160, timedelta(days=100))
    ingest(tenant, first)
    # then every board (built from the rollups on first read) matches
    _check_all(tenant, first, artists, shows)

    # when more events arrive: duplicates of earlier ones, late ones (inside and beyond the 7-day horizon),
    # and earlier votes that displace counted ones; the boards are now updated incrementally
    late = _random_events(rng, now - timedelta(days=3), 40, timedelta(days=20))
    duplicates = rng.sample(first, 25)
    second = _random_events(rng, now, 60, timedelta(days=2)) + late + duplicates
    rng.shuffle(second)
    ingest(tenant, second)
    everything = first + second
    # then
    _check_all(tenant, everything, artists, shows)

    # when Redis is flushed mid-stream and events keep coming
    get_redis_connection("default").flushdb()
    third = _random_events(rng, now, 30, timedelta(hours=5))
    ingest(tenant, third)
    # then the boards rebuild transparently from the rollups with the same answers
    _check_all(tenant, everything + third, artists, shows)


def test_ranking_is_1224_with_ties_by_artist_name_and_zero_scores_left_out() -> None:
    tenant = TenantFactory.create(plan="pro")
    names = {"a1": "Zed", "a2": "Abba", "a3": "Mika", "a4": "Nobody"}
    for ext, name in names.items():
        ArtistFactory.create(tenant=tenant, external_id=ext, name=name)
    now = datetime.now(UTC) - timedelta(minutes=5)
    plays = {"a1": 3, "a2": 3, "a3": 1}
    ingest(
        tenant, [event("play", at=now, user=f"u{i}", artist_id=a) for a, n in plays.items() for i in range(n)]
    )

    body = board_page(tenant=tenant, metric="plays", window="24h")

    assert [(e["rank"], e["artist_name"], e["score"]) for e in body["entries"]] == [
        (1, "Abba", 3),
        (1, "Zed", 3),
        (3, "Mika", 1),
    ]
    assert body["total_artists"] == 3
    assert body["generated_at"].endswith("Z")


def test_paging_and_the_artist_block_with_two_neighbours_each_side() -> None:
    tenant = TenantFactory.create(plan="pro")
    now = datetime.now(UTC) - timedelta(minutes=5)
    events = []
    for i in range(8):
        ArtistFactory.create(tenant=tenant, external_id=f"x{i}", name=f"Artist {i}")
        events += [event("play", at=now, user=f"u{j}", artist_id=f"x{i}") for j in range(10 - i)]
    ingest(tenant, events)
    target = Artist.objects.get(tenant=tenant, external_id="x4")

    body = board_page(tenant=tenant, metric="plays", window="7d", page=2, page_size=3, artist_id=target.pk)

    assert [e["artist_name"] for e in body["entries"]] == ["Artist 3", "Artist 4", "Artist 5"]
    assert body["artist"]["rank"] == 5 and body["artist"]["score"] == 6
    assert [n["artist_name"] for n in body["artist"]["neighbors"]] == [
        "Artist 2",
        "Artist 3",
        "Artist 5",
        "Artist 6",
    ]
    assert artist_rank(tenant=tenant, metric="plays", window="7d", artist_id=target.pk) == (5, 6)


def test_previous_rank_reports_the_last_snapshot(settings: Any) -> None:
    settings.LEADERBOARD_SNAPSHOT_SECONDS = 60
    tenant = TenantFactory.create(plan="pro")
    a = ArtistFactory.create(tenant=tenant, external_id="a", name="Alpha")
    b = ArtistFactory.create(tenant=tenant, external_id="b", name="Beta")
    now = datetime.now(UTC) - timedelta(minutes=5)
    ingest(tenant, [event("play", at=now, user="u1", artist_id="a")])
    first = board_page(tenant=tenant, metric="plays", window="24h")
    assert [e["previous_rank"] for e in first["entries"]] == [None]

    # when Beta overtakes Alpha and the snapshot period has passed
    ingest(tenant, [event("play", at=now, user=f"u{i}", artist_id="b") for i in range(3)])
    family = BoardFamily(tenant.pk, "plays")
    get_redis_connection("default").delete(family.snapshot_keys("24h", "")[2])  # the period elapsed
    body = board_page(tenant=tenant, metric="plays", window="24h")

    # then Alpha shows it was first, Beta that it was not on the board
    assert [(e["artist_id"], e["rank"], e["previous_rank"]) for e in body["entries"]] == [
        (b.pk, 1, None),
        (a.pk, 2, 1),
    ]


def test_reconcile_repairs_drift_from_the_rollups() -> None:
    tenant = TenantFactory.create(plan="pro")
    a = ArtistFactory.create(tenant=tenant, external_id="a", name="Alpha")
    now = datetime.now(UTC) - timedelta(minutes=5)
    ingest(tenant, [event("play", at=now, user="u1", artist_id="a")])
    assert served(tenant, metric="plays", window="all") == [(1, "Alpha", 1)]
    # given drift (an increment applied twice, say)
    get_redis_connection("default").zincrby(BoardFamily(tenant.pk, "plays").bucket_key("a"), 5, a.pk)
    assert served(tenant, metric="plays", window="all") == [(1, "Alpha", 6)]

    repaired = boards_reconcile()

    assert repaired >= 1
    assert served(tenant, metric="plays", window="all") == [(1, "Alpha", 1)]


def test_boards_never_mix_tenants() -> None:
    mine, theirs = TenantFactory.create(plan="pro"), TenantFactory.create(plan="pro")
    ArtistFactory.create(tenant=mine, external_id="a", name="Mine")
    ArtistFactory.create(tenant=theirs, external_id="a", name="Theirs")
    now = datetime.now(UTC) - timedelta(minutes=5)
    ingest(theirs, [event("play", at=now, user="u", artist_id="a")])

    assert served(mine, metric="plays", window="24h") == []
    assert served(theirs, metric="plays", window="24h") == [(1, "Theirs", 1)]


def test_the_reconcile_task_repairs_a_board() -> None:
    from leaderboards.tasks import reconcile

    tenant = TenantFactory.create(plan="pro")
    a = ArtistFactory.create(tenant=tenant, external_id="a", name="Alpha")
    ingest(tenant, [event("play", at=datetime.now(UTC) - timedelta(minutes=5), user="u1", artist_id="a")])
    assert served(tenant, metric="plays", window="24h") == [(1, "Alpha", 1)]
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    get_redis_connection("default").zincrby(BoardFamily(tenant.pk, "plays").bucket_key("h", hour), 4, a.pk)

    reconcile()

    assert served(tenant, metric="plays", window="24h") == [(1, "Alpha", 1)]
