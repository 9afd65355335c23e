"""Ingest as tenants do (a signed Passport webhook with its retries and a concurrent replay, the official
Segment Python SDK with a replayed queue), then read the KPIs, a board and a show's standings: each equals a
recount of the events sent, each event counted once."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from segment.analytics import Client

from .clients import (
    Play,
    TenantClient,
    WebhookKey,
    eventually,
    kpi_window,
    minutes_ago,
    passport_post,
    play,
    play_recount,
    vote,
    vote_recount,
)
from .stack import Stack

CITY = "Porto"
ARTISTS = ["artist-41", "artist-42", "artist-43"]
SHOW = "show-7"


def _kpi_totals(owner: TenantClient, artist: str) -> dict[str, int]:
    body = owner.ok(
        "/api/v1/kpis",
        artist_id=artist,
        period="hourly",
        metrics="plays,listen_seconds,unique_listeners,votes",
        **kpi_window(),
    )
    return {metric: int(value) for metric, value in body["totals"].items()}


def _board(owner: TenantClient, metric: str) -> dict[str, int]:
    body = owner.ok("/api/v1/leaderboards", metric=metric, window="24h", city=CITY)
    return {entry["artist_name"]: entry["score"] for entry in body["entries"]}


def test_webhook_and_sdk_events_count_once_in_kpis_board_and_standings(
    stack: Stack, owner: TenantClient, webhook_key: WebhookKey, write_key: str
) -> None:
    # given plays and battle votes from the tenant's fans, with the ids the tenant's systems use
    fans = [f"fan-{n}" for n in range(101, 109)]
    webhook_plays = [Play(fans[i % len(fans)], ARTISTS[i % 3 if i % 4 else 1], 60 + 7 * i) for i in range(24)]
    batch_a = [play(p.fan, p.artist, seconds=p.seconds, city=CITY, at=minutes_ago(20)) for p in webhook_plays]
    # a fan's later vote in a round is sent first; the earliest one counts
    ballots = [
        (minutes_ago(9), "fan-101", "artist-41", 1, 1),
        (minutes_ago(12), "fan-101", "artist-42", 1, 1),
        (minutes_ago(11), "fan-102", "artist-42", 1, 3),
        (minutes_ago(10), "fan-103", "artist-43", 1, 1),
        (minutes_ago(8), "fan-101", "artist-43", 2, 2),
        (minutes_ago(8), "fan-104", "artist-43", 2, 1),
    ]
    batch_b = [vote(f, a, show=SHOW, round_=r, at=at, weight=w) for at, f, a, r, w in ballots]
    sdk_plays = [Play(fans[(3 * i) % len(fans)], ARTISTS[(i + 1) % 3], 30 + i) for i in range(15)]

    # when the webhook delivers batch A, then retries it (its first answer was lost)
    first = passport_post(stack.base_url, webhook_key, batch_a)
    retried = passport_post(stack.base_url, webhook_key, batch_a)
    # and four deliveries of batch B race each other
    answers: list[Any] = []
    start = threading.Barrier(4)

    def deliver() -> None:
        start.wait()
        answers.append(passport_post(stack.base_url, webhook_key, batch_b))

    racers = [threading.Thread(target=deliver) for _ in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    # and the app sends plays through the Segment SDK, then replays its queue (same messageIds) after a crash
    sdk_errors: list[Exception] = []
    for _attempt in range(2):
        client = Client(
            write_key=write_key,
            host=stack.base_url,
            on_error=lambda error, _batch: sdk_errors.append(error),
            max_retries=3,
        )
        for n, p in enumerate(sdk_plays):
            client.track(
                user_id=p.fan,
                event="player.track_played",
                properties={
                    "trackId": f"track-{p.artist}",
                    "artistId": p.artist,
                    "durationSeconds": p.seconds,
                    "city": CITY,
                },
                message_id=f"ios-queue-{n}",
                timestamp=minutes_ago(15),
            )
        client.flush()
        client.shutdown()

    # then every delivery is acknowledged and each event is accepted exactly once
    assert (first.status_code, first.json()["accepted"], first.json()["rejected"]) == (202, len(batch_a), [])
    assert (retried.status_code, retried.json()["accepted"], retried.json()["duplicates"]) == (
        202,
        0,
        len(batch_a),
    )
    assert sorted(a.status_code for a in answers) == [202] * 4
    assert sum(a.json()["accepted"] for a in answers) == len(batch_b)
    assert sum(a.json()["duplicates"] for a in answers) == 3 * len(batch_b)
    assert sdk_errors == []

    # and once processed, each artist's KPIs equal the recount
    plays = play_recount(webhook_plays + sdk_plays)
    votes = vote_recount(ballots)
    expected = {
        artist: {**plays[artist], "votes": sum(votes[r][artist] for r in votes)} for artist in ARTISTS
    }
    kpis = eventually(
        lambda: {artist: _kpi_totals(owner, artist) for artist in ARTISTS},
        lambda got: got == expected,
        timeout=60,
    )
    assert kpis == expected

    # and the city's boards rank the same numbers
    assert eventually(
        lambda: _board(owner, "plays"), lambda b: b == {a: plays[a]["plays"] for a in ARTISTS}
    ) == {a: plays[a]["plays"] for a in ARTISTS}
    listeners = {a: plays[a]["unique_listeners"] for a in ARTISTS}
    assert eventually(lambda: _board(owner, "unique_listeners"), lambda b: b == listeners) == listeners

    # and the show's standings count each fan's first vote per round
    shows = owner.ok("/api/v1/shows", search=SHOW)["results"]
    show_pk = next(s["id"] for s in shows if s["external_id"] == SHOW)
    standings = owner.ok(f"/api/v1/shows/{show_pk}/standings")
    assert {
        r["round"]: Counter({e["artist_name"]: e["votes"] for e in r["entries"]}) for r in standings["rounds"]
    } == votes
