"""Rollups and KPIs equal a brute-force recount from the raw log, over random streams with duplicates, late
and out-of-order events, interleaved processing, and events older than the late horizon (backfill path)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coliseum.models import Artist
from ingestion.catalog import METRICS
from ingestion.selectors import kpi_series, rollup_totals
from ingestion.services import event_batch_ingest, processing_run_pending
from tests.factories import ArtistFactory, ShowFactory, TenantFactory
from tests.ingestion.recount import recount

NOW_HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
ARTISTS = ["a1", "a2", "a3"]
SHOWS = ["s1", "s2"]


@st.composite
def event_strategy(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["play", "play", "vote", "vote", "money", "attend", "follow", "share"]))
    # mostly the last few hours, some 10 days back (beyond the 7-day horizon: backfill path)
    age = draw(st.one_of(st.integers(0, 5 * 60), st.integers(10 * 24 * 60, 10 * 24 * 60 + 120)))
    at = NOW_HOUR - timedelta(minutes=age) + timedelta(seconds=draw(st.integers(0, 59)))
    artist = draw(st.sampled_from(ARTISTS))
    show = draw(st.sampled_from(SHOWS))
    props: dict[str, Any]
    if kind == "play":
        type_, props = "player.track_played", {"track_id": "t", "artist_id": artist, "duration_seconds": 30}
    elif kind == "vote":
        type_ = "coliseum.vote_cast"
        props = {
            "artist_id": artist,
            "show_id": show,
            "round": draw(st.integers(1, 2)),
            "weight": draw(st.integers(1, 3)),
        }
    elif kind == "money":
        type_ = "treasury.money_spent"
        props = {
            "amount_minor": draw(st.integers(1, 999)),
            "currency": draw(st.sampled_from(["USD", "EUR"])),
            "reason": "tip",
            "artist_id": artist,
        }
    elif kind == "attend":
        type_ = "concierto.event_attended"
        props = {"show_id": show, "city": "Lisbon"}
        if draw(st.booleans()):
            props["artist_id"] = artist
    elif kind == "follow":
        type_, props = "social.artist_followed", {"artist_id": artist}
    else:
        type_, props = "social.track_shared", {"track_id": "t", "artist_id": artist, "channel": "x"}
    return {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "occurred_at": at.isoformat(),
        "user_id": draw(st.sampled_from(["u1", "u2", "u3", "u4"])),
        "properties": props,
    }


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    events=st.lists(event_strategy(), min_size=1, max_size=60),
    replays=st.lists(st.integers(0, 59), max_size=15),
    cuts=st.lists(st.integers(1, 59), max_size=4),
    process_between=st.booleans(),
)
def test_rollups_and_kpis_equal_a_recount(
    db: Any, events: list[dict[str, Any]], replays: list[int], cuts: list[int], process_between: bool
) -> None:
    # given a tenant with a lineup on s1, and a stream with replays (same id, other timestamp), shuffled
    tenant = TenantFactory.create(plan="enterprise")
    show = ShowFactory.create(tenant=tenant, external_id="s1")
    show.lineup.set([ArtistFactory.create(tenant=tenant, external_id=a) for a in ARTISTS[:2]])
    stream = list(events)
    for i in replays:
        original = events[i % len(events)]
        shifted = datetime.fromisoformat(original["occurred_at"]) - timedelta(minutes=7)
        stream.append({**original, "occurred_at": shifted.isoformat()})
    stream.reverse()  # out of order: latest first
    bounds = [0, *sorted(set(c for c in cuts if c < len(stream))), len(stream)]
    # when ingested in batches, processing interleaved or not
    for lo, hi in pairwise(bounds):
        event_batch_ingest(tenant=tenant, events=stream[lo:hi], source="passport")
        if process_between:
            processing_run_pending()
    processing_run_pending()
    # then every metric equals the recount, all-time and over an hour-aligned range
    windows = [(None, None), (NOW_HOUR - timedelta(hours=3), NOW_HOUR)]
    for start, end in windows:
        expected = recount(tenant_id=tenant.pk, start=start, end=end, currency="USD")
        for metric in METRICS:
            if metric == "money_earned":
                continue
            got = rollup_totals(tenant_id=tenant.pk, metric=metric, start=start, end=end, currency="USD")
            assert got == expected.get(metric, {}), (metric, start)
    # and the KPI totals for one artist over the last day match too
    a1 = Artist.objects.get(tenant=tenant, external_id="a1").pk
    day_start = NOW_HOUR - timedelta(hours=23)
    kpis = kpi_series(
        tenant_id=tenant.pk,
        metrics=list(METRICS),
        period="hourly",
        start=day_start,
        end=NOW_HOUR + timedelta(hours=1),
        artist_id=a1,
        currency="USD",
    )
    expected = recount(
        tenant_id=tenant.pk, start=day_start, end=NOW_HOUR + timedelta(hours=1), currency="USD"
    )
    for metric in ("plays", "listen_seconds", "unique_listeners", "votes", "attendance", "money_spent"):
        assert kpis["totals"][metric] == expected.get(metric, {}).get(a1, 0), metric
    assert sum(point["plays"] for point in kpis["series"]) == kpis["totals"]["plays"]
    assert len(kpis["series"]) == 24
