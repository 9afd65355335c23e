"""Brute-force recount of every metric from the raw log: the reference the rollups must equal."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import orjson
from django.db import connection


def recount(
    *, tenant_id: int, start: datetime | None = None, end: datetime | None = None, currency: str = "USD"
) -> dict[str, dict[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id, type, occurred_at, user_id, artist_id, show_id, currency, amount_minor, "
            "properties FROM ingestion_event WHERE tenant_id = %s",
            [tenant_id],
        )
        rows = cursor.fetchall()
        cursor.execute("SELECT show_id, artist_id FROM coliseum_show_lineup")
        lineups: dict[int, list[int]] = defaultdict(list)
        for show, artist in cursor.fetchall():
            lineups[show].append(artist)

    def inside(t: datetime) -> bool:
        hour = t.replace(minute=0, second=0, microsecond=0)
        return (start is None or hour >= start) and (end is None or hour < end)

    out: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    listeners: dict[int, set[str]] = defaultdict(set)
    first_votes: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for event_id, type_, occurred, user, artist, show, cur, amount, raw_props in rows:
        props = orjson.loads(raw_props) if isinstance(raw_props, str) else raw_props
        if type_ == "coliseum.vote_cast":
            key = (show, props["round"], user)
            candidate = (occurred, event_id, artist, props["weight"])
            if key not in first_votes or candidate[:2] < first_votes[key][:2]:
                first_votes[key] = candidate
            continue
        if not inside(occurred):
            continue
        if type_ == "player.track_played":
            out["plays"][artist] += 1
            out["listen_seconds"][artist] += props["duration_seconds"]
            listeners[artist].add(user)
        elif type_ == "concierto.event_attended":
            for a in [artist] if artist else lineups.get(show, []):
                out["attendance"][a] += 1
        elif type_ == "treasury.money_spent" and artist and cur == currency:
            out["money_spent"][artist] += amount
        elif type_ == "social.artist_followed":
            out["follows"][artist] += 1
        elif type_ == "social.track_shared":
            out["shares"][artist] += 1
    for occurred, _eid, artist, weight in first_votes.values():
        if inside(occurred):
            out["votes"][artist] += weight
    out["unique_listeners"] = {a: len(users) for a, users in listeners.items()}
    return {m: {a: v for a, v in values.items() if v} for m, values in out.items()}
