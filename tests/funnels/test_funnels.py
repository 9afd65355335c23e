"""Funnels: ordering, the `within` window, property / artist / genre / city filters, exactness against a
brute-force per-fan walk, and the endpoint's gate, validation and tenant isolation."""

from __future__ import annotations

import json
import statistics
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coliseum.models import Tenant
from ingestion.funnels.selectors import FunnelStep, funnel_compute
from tests.factories import ArtistFactory, TenantFactory
from tests.funnels.conftest import T0, client_for, day, event, ingest

pytestmark = pytest.mark.clock

PLAY, FOLLOW, SPEND = "player.track_played", "social.artist_followed", "treasury.money_spent"
START, END = T0 - timedelta(days=1), T0 + timedelta(days=30)


def _users(body: dict[str, Any]) -> list[int]:
    return [s["users"] for s in body["steps"]]


def _funnel(tenant: Tenant, steps: list[FunnelStep], within: timedelta = timedelta(days=7), **kw: Any) -> Any:
    return funnel_compute(tenant_id=tenant.pk, steps=steps, start=START, end=END, within=within, **kw)


def test_only_steps_done_in_order_count(tenant: Tenant) -> None:
    # given fan-1 plays then follows then spends; fan-2 follows BEFORE playing; fan-3 only plays
    ingest(
        tenant,
        [
            event(PLAY, user="fan-1", at=timedelta(minutes=0)),
            event(FOLLOW, user="fan-1", at=timedelta(minutes=10)),
            event(SPEND, user="fan-1", at=timedelta(minutes=40)),
            event(FOLLOW, user="fan-2", at=timedelta(minutes=0)),
            event(PLAY, user="fan-2", at=timedelta(minutes=5)),
            event(PLAY, user="fan-3", at=timedelta(minutes=5)),
        ],
    )
    # when
    body = _funnel(tenant, [FunnelStep(PLAY), FunnelStep(FOLLOW), FunnelStep(SPEND)])
    # then
    assert _users(body) == [3, 1, 1]
    assert [s["conversion_from_previous"] for s in body["steps"]] == [None, 0.3333, 1.0]
    assert [s["conversion_from_first"] for s in body["steps"]] == [1.0, 0.3333, 0.3333]
    assert [s["median_seconds_from_previous"] for s in body["steps"]] == [None, 600.0, 1800.0]


def test_within_window_is_measured_from_the_first_step_inclusive(tenant: Tenant) -> None:
    # given fan-1 follows exactly 2 h after playing, fan-2 2 h and 1 s after
    ingest(
        tenant,
        [
            event(PLAY, user="fan-1"),
            event(FOLLOW, user="fan-1", at=timedelta(hours=2)),
            event(PLAY, user="fan-2"),
            event(FOLLOW, user="fan-2", at=timedelta(hours=2, seconds=1)),
        ],
    )
    # when / then
    assert _users(_funnel(tenant, [FunnelStep(PLAY), FunnelStep(FOLLOW)], timedelta(hours=2))) == [2, 1]
    assert _users(_funnel(tenant, [FunnelStep(PLAY), FunnelStep(FOLLOW)], timedelta(days=1))) == [2, 2]


def test_a_later_start_can_complete_the_funnel(tenant: Tenant) -> None:
    # given a play 3 days before the follow (too early) and another 1 hour before it
    ingest(
        tenant,
        [
            event(PLAY, user="fan-1"),
            event(PLAY, user="fan-1", at=timedelta(days=3) - timedelta(hours=1)),
            event(FOLLOW, user="fan-1", at=timedelta(days=3)),
        ],
    )
    # when
    body = _funnel(tenant, [FunnelStep(PLAY), FunnelStep(FOLLOW)], timedelta(days=1))
    # then the path from the later play counts, with its own time to convert
    assert _users(body) == [1, 1]
    assert body["steps"][1]["median_seconds_from_previous"] == 3600.0


def test_times_come_from_the_latest_start_reaching_the_deepest_step(tenant: Tenant) -> None:
    # given two complete attempts: 10 minutes to follow, then (an hour later) 5 minutes
    ingest(
        tenant,
        [
            event(PLAY, user="fan-1"),
            event(FOLLOW, user="fan-1", at=timedelta(minutes=10)),
            event(PLAY, user="fan-1", at=timedelta(hours=1)),
            event(FOLLOW, user="fan-1", at=timedelta(hours=1, minutes=5)),
        ],
    )
    # when
    body = _funnel(tenant, [FunnelStep(PLAY), FunnelStep(FOLLOW)])
    # then the fan counts once, timed by the most recent attempt
    assert _users(body) == [1, 1]
    assert body["steps"][1]["median_seconds_from_previous"] == 300.0


def test_property_filters_select_the_events_of_a_step(tenant: Tenant) -> None:
    # given shares on two channels, then a follow
    ingest(
        tenant,
        [
            event("social.track_shared", user="fan-1", channel="whatsapp"),
            event(FOLLOW, user="fan-1", at=timedelta(minutes=1)),
            event("social.track_shared", user="fan-2", channel="sms"),
            event(FOLLOW, user="fan-2", at=timedelta(minutes=1)),
        ],
    )
    # when
    body = _funnel(tenant, [FunnelStep("social.track_shared", "channel", "whatsapp"), FunnelStep(FOLLOW)])
    # then
    assert _users(body) == [1, 1]
    assert body["steps"][0]["filter"] == {"channel": "whatsapp"}


def test_artist_filter_applies_to_steps_that_carry_an_artist_only(tenant: Tenant) -> None:
    # given fan-1 views tickets (no artist) then spends on a1; fan-2 spends on a2
    ingest(
        tenant,
        [
            event("concierto.ticket_viewed", user="fan-1"),
            event(SPEND, user="fan-1", at=timedelta(minutes=1), artist_id="a1"),
            event("concierto.ticket_viewed", user="fan-2"),
            event(SPEND, user="fan-2", at=timedelta(minutes=1), artist_id="a2"),
        ],
    )
    a1 = tenant.artists.get(external_id="a1")
    # when
    body = _funnel(tenant, [FunnelStep("concierto.ticket_viewed"), FunnelStep(SPEND)], artist_ids=[a1.pk])
    # then both fans enter (the first step has no artist), only fan-1 converts
    assert _users(body) == [2, 1]


def _brute_force(tenant: Tenant, steps: list[FunnelStep], within: timedelta) -> tuple[list[int], list[Any]]:
    """The definition, walked per fan over the raw log rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT user_id, occurred_at, id, type, properties FROM ingestion_event WHERE tenant_id = %s",
            [tenant.pk],
        )
        rows = cursor.fetchall()
    per_user: dict[str, list[tuple[datetime, int, str, dict[str, Any]]]] = {}
    for user, at, pk, type_, props in rows:
        per_user.setdefault(user, []).append(
            (at, pk, type_, props if isinstance(props, dict) else json.loads(props))
        )

    def matches(step: FunnelStep, row: tuple[datetime, int, str, dict[str, Any]]) -> bool:
        return row[2] == step.type and (step.prop is None or str(row[3].get(step.prop)) == step.value)

    reached = [0] * len(steps)
    gaps: list[list[float]] = [[] for _ in steps]
    for events in per_user.values():
        events.sort(key=lambda r: (r[0], r[1]))
        best: tuple[int, int, list[datetime]] | None = None
        for i, row in enumerate(events):
            if not (matches(steps[0], row) and START <= row[0] < END):
                continue
            times, j = [row[0]], i
            for step in steps[1:]:
                nxt = next((k for k in range(j + 1, len(events)) if matches(step, events[k])), None)
                if nxt is None or events[nxt][0] > row[0] + within:
                    break
                times.append(events[nxt][0])
                j = nxt
            if best is None or len(times) >= best[0]:
                best = (len(times), i, times)
        if best is None:
            continue
        for k in range(best[0]):
            reached[k] += 1
            if k:
                gaps[k].append((best[2][k] - best[2][k - 1]).total_seconds())
    medians = [round(statistics.median(g), 3) if g else None for g in gaps[1:]]
    return reached, medians


_TYPES = [PLAY, FOLLOW, "social.track_shared"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["u1", "u2", "u3"]), st.sampled_from(_TYPES), st.integers(0, 60)),
        min_size=1,
        max_size=30,
    ),
    steps=st.lists(st.sampled_from([*_TYPES, "social.track_shared:channel=sms"]), min_size=2, max_size=4),
    within_hours=st.sampled_from([1, 6, 24]),
)
def test_funnel_equals_a_brute_force_walk(
    db: Any, rows: list[tuple[str, str, int]], steps: list[str], within_hours: int
) -> None:
    # given a fresh tenant and random events on a coarse grid (ties in time are common)
    tenant = TenantFactory.create(plan="pro")
    ingest(
        tenant,
        [
            event(t, user=u, at=timedelta(hours=h), channel="sms")
            if h % 2 and "shared" in t
            else event(t, user=u, at=timedelta(hours=h))
            for u, t, h in rows
        ],
    )
    parsed = [FunnelStep(s.split(":")[0], "channel", "sms") if ":" in s else FunnelStep(s) for s in steps]
    within = timedelta(hours=within_hours)
    # when
    body = _funnel(tenant, parsed, within)
    # then
    reached, medians = _brute_force(tenant, parsed, within)
    assert _users(body) == reached
    assert [s["median_seconds_from_previous"] for s in body["steps"][1:]] == medians


def test_funnel_endpoint_end_to_end_with_genre_and_city(tenant: Tenant) -> None:
    # given a rock artist and a jazz artist; fans play, then attend in Lisbon or Porto
    ArtistFactory.create(tenant=tenant, external_id="a1", genres=["rock"])
    ArtistFactory.create(tenant=tenant, external_id="a2", genres=["jazz"])
    ingest(
        tenant,
        [
            event(PLAY, user="fan-1", city="Lisbon"),
            event("concierto.event_attended", user="fan-1", at=timedelta(hours=1), artist_id="a1"),
            event(PLAY, user="fan-2", city="Lisbon"),
            event("concierto.event_attended", user="fan-2", at=timedelta(hours=1), city="Porto"),
            event(PLAY, user="fan-3", city="Lisbon", artist_id="a2"),
            event(PLAY, user="fan-4", city="Porto"),
        ],
    )
    # when
    response = client_for(tenant).get(
        "/api/v1/funnels",
        {
            "steps": f"{PLAY},concierto.event_attended",
            "from": day(-7),
            "to": day(2),
            "within": "2h",
            "genre": "rock",
            "city": "Lisbon",
        },
    )
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert _users(body) == [2, 1]
    assert body["within_seconds"] == 7200
    assert body["steps"][1]["conversion_from_previous"] == 0.5


def test_funnels_need_the_pro_plan(db: Any) -> None:
    # given a Basic tenant
    basic = TenantFactory.create(plan="basic")
    # when
    response = client_for(basic).get("/api/v1/funnels", {"steps": f"{PLAY},{FOLLOW}"})
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "plan_required"
    assert response.json()["error"]["details"]["required_plan"] == "pro"


def test_bad_parameters_are_refused_with_the_error_envelope(tenant: Tenant) -> None:
    client = client_for(tenant)
    bad = [
        {"steps": PLAY},
        {"steps": ",".join([PLAY] * 7)},
        {"steps": f"{PLAY},no.such_type"},
        {"steps": f"{PLAY},{FOLLOW}:nope=1"},
        {"steps": f"{PLAY},{FOLLOW}", "within": "7 days"},
        {"steps": f"{PLAY},{FOLLOW}", "within": "91d"},
        {"steps": f"{PLAY},{FOLLOW}", "from": "yesterday"},
        {"steps": f"{PLAY},{FOLLOW}", "from": "2026-11-10", "to": "2026-11-01"},
        {"steps": f"{PLAY},{FOLLOW}", "from": "2024-01-01", "to": "2026-01-01"},
        {"steps": f"{PLAY}:track_id=a\x00b,{FOLLOW}"},
        {"steps": f"{PLAY},{FOLLOW}", "city": "Lis\x00bon"},
    ]
    for params in bad:
        response = client.get("/api/v1/funnels", params)
        assert response.status_code == 400, params
        assert set(response.json()["error"]) == {"code", "message", "details"}


def test_another_tenants_artist_and_events_are_invisible(tenant: Tenant) -> None:
    # given another tenant whose fans complete the funnel, and whose artist is b1
    other = TenantFactory.create(plan="pro")
    ingest(other, [event(PLAY, user="fan-1"), event(FOLLOW, user="fan-1", at=timedelta(minutes=1))])
    ArtistFactory.create(tenant=other, external_id="b1")
    client = client_for(tenant)
    # when / then
    params = {"steps": f"{PLAY},{FOLLOW}", "from": day(-7), "to": day(2)}
    assert _users(client.get("/api/v1/funnels", params).json()) == [0, 0]
    missing = client.get("/api/v1/funnels", {**params, "artist_id": "b1"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "artist_not_found"
