"""A fan's data-subject requests: the export completes with the fan's events, the erasure completes, and
afterwards the KPIs, the boards and the standings equal a recount of the events without that fan."""

from __future__ import annotations

from collections import Counter
from typing import Any

import requests

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

CITY = "Faro"
SHOW = "show-privacy-1"
ARTISTS = ["artist-71", "artist-72"]
FAN = "fan-erase-me"


def _figures(owner: TenantClient) -> dict[str, Any]:
    kpis = {}
    for artist in ARTISTS:
        body = owner.ok(
            "/api/v1/kpis",
            artist_id=artist,
            period="hourly",
            metrics="plays,listen_seconds,unique_listeners,votes",
            **kpi_window(),
        )
        kpis[artist] = {metric: int(value) for metric, value in body["totals"].items()}
    boards = {
        metric: {
            e["artist_name"]: e["score"]
            for e in owner.ok("/api/v1/leaderboards", metric=metric, window="24h", city=CITY)["entries"]
        }
        for metric in ("plays", "unique_listeners")
    }
    shows = owner.ok("/api/v1/shows", search=SHOW)["results"]
    show_pk = next(s["id"] for s in shows if s["external_id"] == SHOW)
    standings = {
        r["round"]: Counter({e["artist_name"]: e["votes"] for e in r["entries"]})
        for r in owner.ok(f"/api/v1/shows/{show_pk}/standings")["rounds"]
    }
    return {"kpis": kpis, "boards": boards, "standings": standings}


def _recount(plays: list[Play], ballots: list[tuple[Any, str, str, int, int]]) -> dict[str, Any]:
    totals = play_recount(plays)
    votes = vote_recount(ballots)
    zero = {"plays": 0, "listen_seconds": 0, "unique_listeners": 0}
    kpis = {a: {**totals.get(a, zero), "votes": sum(votes[r][a] for r in votes)} for a in ARTISTS}
    boards = {
        metric: {a: totals[a][metric] for a in ARTISTS if a in totals and totals[a][metric]}
        for metric in ("plays", "unique_listeners")
    }
    return {"kpis": kpis, "boards": boards, "standings": {r: c for r, c in votes.items() if +c}}


def _completed(owner: TenantClient, path: str) -> dict[str, Any]:
    return eventually(
        lambda: owner.ok(path), lambda r: r["status"] in ("completed", "failed"), timeout=90, every=1
    )


def test_a_fans_export_and_erasure_complete_and_leave_numbers_as_if_they_never_played(
    stack: Stack, owner: TenantClient, webhook_key: WebhookKey
) -> None:
    # given plays and votes of three fans; the fan to erase is artist-72's only listener
    plays = [
        Play(FAN, "artist-71", 120),
        Play(FAN, "artist-72", 240),
        Play(FAN, "artist-72", 60),
        Play("fan-stays-1", "artist-71", 90),
        Play("fan-stays-2", "artist-71", 30),
    ]
    ballots = [
        (minutes_ago(14), FAN, "artist-72", 1, 1),
        (minutes_ago(13), "fan-stays-1", "artist-71", 1, 1),
        (minutes_ago(12), "fan-stays-2", "artist-72", 1, 1),
    ]
    events = [play(p.fan, p.artist, seconds=p.seconds, city=CITY, at=minutes_ago(16)) for p in plays]
    events += [vote(f, a, show=SHOW, round_=r, at=at, weight=w) for at, f, a, r, w in ballots]
    fan_event_ids = {e["event_id"] for e in events if e["user_id"] == FAN}
    sent = passport_post(stack.base_url, webhook_key, events)
    assert (sent.status_code, sent.json()["accepted"]) == (202, len(events))
    before = _recount(plays, ballots)
    assert eventually(lambda: _figures(owner), lambda f: f == before) == before

    # when the tenant's admin exports the fan's data
    export = owner.post("/api/v1/privacy/exports", {"user_id": FAN})
    assert export.status_code == 202, export.text
    exported = _completed(owner, f"/api/v1/privacy/exports/{export.json()['id']}")

    # then the export completes and its link serves the fan's events, and no one else's
    assert exported["status"] == "completed", exported
    document = requests.get(exported["download_url"], timeout=30)
    assert document.status_code == 200
    assert all(event_id in document.text for event_id in fan_event_ids)
    assert "fan-stays-1" not in document.text

    # when the fan's data is erased
    erasure = owner.post("/api/v1/privacy/erasures", {"user_id": FAN})
    assert erasure.status_code == 202, erasure.text
    erased = _completed(owner, f"/api/v1/privacy/erasures/{erasure.json()['id']}")

    # then the erasure completes and KPIs, boards and standings equal a recount without the fan
    assert erased["status"] == "completed", erased
    after = _recount([p for p in plays if p.fan != FAN], [b for b in ballots if b[1] != FAN])
    assert eventually(lambda: _figures(owner), lambda f: f == after, timeout=30) == after
    # and the earlier export no longer serves the fan's data
    assert requests.get(exported["download_url"], timeout=30).status_code in (404, 410)
