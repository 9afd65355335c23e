"""Attribution: last touch within the lookback, late touches, lookback edges, per-tenant lookback, erasure,
tenant isolation, exactness under any arrival order (hypothesis), and the endpoint."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coliseum.models import Tenant
from ingestion.funnels.models import AttributedConversion
from ingestion.funnels.selectors import attributed_revenue
from ingestion.funnels.services import attribution_apply, attribution_settings_update, attributions_erase_user
from tests.factories import TenantFactory
from tests.funnels.conftest import T0, client_for, day, event, ingest

pytestmark = pytest.mark.clock

PLAY, SHARE, FOLLOW, SPEND = (
    "player.track_played",
    "social.track_shared",
    "social.artist_followed",
    "treasury.money_spent",
)


def _apply(tenant: Tenant, events: list[dict[str, Any]]) -> None:
    attribution_apply(tenant_id=tenant.pk, events=ingest(tenant, events))


def _touches(tenant: Tenant) -> dict[str, str | None]:
    """conversion event id -> its touch's event id."""
    return dict(
        AttributedConversion.objects.filter(tenant=tenant).values_list(
            "conversion_event_id", "touch_event_id"
        )
    )


def test_a_conversion_is_credited_to_the_last_touch_of_that_artist(tenant: Tenant) -> None:
    # given a play, then a share, of a1; a later play of a2; then a purchase concerning a1
    play = event(PLAY, at=timedelta(hours=-5))
    share = event(SHARE, at=timedelta(hours=-3))
    other_artist = event(PLAY, at=timedelta(hours=-1), artist_id="a2")
    spend = event(SPEND, amount_minor=2500, currency="EUR")
    # when
    _apply(tenant, [play, share, other_artist, spend])
    # then
    row = AttributedConversion.objects.get(tenant=tenant)
    assert (row.conversion_event_id, row.touch_event_id) == (spend["event_id"], share["event_id"])
    assert (row.touch_type, row.source, row.amount_minor, row.currency) == (SHARE, "direct", 2500, "EUR")


def test_a_late_touch_before_an_attributed_conversion_reattributes_it(tenant: Tenant) -> None:
    # given a vote attributed to a play two days before it
    play = event(PLAY, at=timedelta(days=-2))
    vote = event("coliseum.vote_cast")
    _apply(tenant, [play, vote])
    assert _touches(tenant) == {vote["event_id"]: play["event_id"]}
    # when a follow from one hour before the vote arrives late, then an even older share
    follow = event(FOLLOW, at=timedelta(hours=-1))
    _apply(tenant, [follow])
    _apply(tenant, [event(SHARE, at=timedelta(days=-1))])
    # then the follow, the closest touch before the vote, holds it
    assert _touches(tenant) == {vote["event_id"]: follow["event_id"]}
    # and a touch AFTER the conversion changes nothing
    _apply(tenant, [event(PLAY, at=timedelta(minutes=1))])
    assert _touches(tenant) == {vote["event_id"]: follow["event_id"]}


def test_lookback_edges_are_inclusive_at_30_days(tenant: Tenant) -> None:
    # given two fans whose only touch is exactly 30 days / 30 days and 1 second before the purchase
    edge = event(PLAY, user="fan-1", at=timedelta(days=-30))
    spend_1 = event(SPEND, user="fan-1")
    spend_2 = event(SPEND, user="fan-2")
    _apply(tenant, [edge, spend_1, spend_2])
    # when fan-2's touch arrives late, just outside the window
    _apply(tenant, [event(PLAY, user="fan-2", at=timedelta(days=-30, seconds=-1))])
    # then
    assert _touches(tenant) == {spend_1["event_id"]: edge["event_id"], spend_2["event_id"]: None}


def test_the_lookback_is_configurable_per_tenant(tenant: Tenant) -> None:
    # given a tenant with a 7-day lookback
    attribution_settings_update(tenant_id=tenant.pk, lookback_days=7)
    inside = event(PLAY, user="fan-1", at=timedelta(days=-7))
    spend_1, spend_2 = event(SPEND, user="fan-1"), event(SPEND, user="fan-2")
    # when
    _apply(tenant, [inside, event(PLAY, user="fan-2", at=timedelta(days=-8)), spend_1, spend_2])
    # then
    assert _touches(tenant) == {spend_1["event_id"]: inside["event_id"], spend_2["event_id"]: None}


def test_changing_the_lookback_re_decides_stored_conversions(tenant: Tenant) -> None:
    # given a purchase whose only touch is 10 days earlier (attributed under the default 30 days)
    play = event(PLAY, at=timedelta(days=-10))
    spend = event(SPEND)
    _apply(tenant, [play, spend])
    # when the lookback shrinks to 7 days, then grows back to 30
    attribution_settings_update(tenant_id=tenant.pk, lookback_days=7)
    shrunk = _touches(tenant)
    attribution_settings_update(tenant_id=tenant.pk, lookback_days=30)
    # then
    assert shrunk == {spend["event_id"]: None}
    assert _touches(tenant) == {spend["event_id"]: play["event_id"]}


def test_a_campaign_context_makes_any_event_with_the_artist_a_touch(tenant: Tenant) -> None:
    # given a merch view carrying a campaign, after an ordinary play
    campaign = event(
        "concierto.merch_viewed",
        at=timedelta(hours=-1),
        artist_id="a1",
        context={"campaign": {"source": "newsletter"}},
    )
    spend = event(SPEND)
    # when
    _apply(tenant, [event(PLAY, at=timedelta(hours=-2)), campaign, spend])
    # then
    row = AttributedConversion.objects.get(tenant=tenant)
    assert (row.touch_event_id, row.touch_type, row.source) == (
        campaign["event_id"],
        "concierto.merch_viewed",
        "newsletter",
    )


def test_other_fans_and_other_tenants_never_touch_a_conversion(tenant: Tenant) -> None:
    # given another tenant's fan-1 plays a1 (same external ids), and fan-2 of this tenant plays a1
    other = TenantFactory.create(plan="pro")
    _apply(other, [event(PLAY, at=timedelta(hours=-1))])
    spend = event(SPEND)
    # when
    _apply(tenant, [event(PLAY, user="fan-2", at=timedelta(hours=-1)), spend])
    # then
    assert _touches(tenant) == {spend["event_id"]: None}
    assert AttributedConversion.objects.filter(tenant=other).count() == 0


def test_erasing_a_fan_removes_their_attributions_only(tenant: Tenant) -> None:
    # given two fans with attributed purchases
    _apply(
        tenant,
        [
            event(PLAY, user="fan-1", at=timedelta(hours=-1)),
            event(SPEND, user="fan-1"),
            event(PLAY, user="fan-2", at=timedelta(hours=-1)),
            event(SPEND, user="fan-2"),
        ],
    )
    # when
    deleted = attributions_erase_user(tenant_id=tenant.pk, user_id="fan-1")
    # then
    assert deleted == 1
    assert list(AttributedConversion.objects.filter(tenant=tenant).values_list("user_id", flat=True)) == [
        "fan-2"
    ]


def test_an_erased_fans_touches_credit_none_of_their_later_conversions(tenant: Tenant) -> None:
    # given a fan's play, processed (recorded as a touch)
    _apply(tenant, [event(PLAY, user="fan-1", at=timedelta(hours=-1))])
    # when the fan is erased, and a purchase of theirs arrives afterwards
    attributions_erase_user(tenant_id=tenant.pk, user_id="fan-1")
    spend = event(SPEND, user="fan-1")
    _apply(tenant, [spend])
    # then the purchase is not credited to the erased play
    assert _touches(tenant) == {spend["event_id"]: None}


_KINDS = [PLAY, SHARE, FOLLOW, SPEND, "coliseum.vote_cast"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["u1", "u2"]),
            st.sampled_from(_KINDS),
            st.sampled_from(["a1", "a2"]),
            st.integers(-40, 0),
        ),
        min_size=2,
        max_size=16,
    ),
    batch_size=st.integers(1, 3),
    data=st.randoms(use_true_random=False),
)
def test_attribution_is_exact_whatever_the_arrival_order(
    db: Any, rows: list[tuple[str, str, str, int]], batch_size: int, data: Any
) -> None:
    # given events on a coarse day grid (ties common), arriving in a random order in several batches
    tenant = TenantFactory.create(plan="pro")
    events = [event(kind, user=u, artist_id=a, at=timedelta(days=d)) for u, kind, a, d in rows]
    shuffled = list(events)
    data.shuffle(shuffled)
    # when
    for i in range(0, len(shuffled), batch_size):
        _apply(tenant, shuffled[i : i + batch_size])
    # then each conversion holds the brute-force last touch: same fan and artist, within 30 days before it
    expected: dict[str, str | None] = {}
    for conv, (u, kind, a, d) in zip(events, rows, strict=True):
        if kind in (SPEND, "coliseum.vote_cast"):
            candidates = [
                (dt, t["event_id"].encode())
                for t, (tu, tk, ta, dt) in zip(events, rows, strict=True)
                if tk in (PLAY, SHARE, FOLLOW) and tu == u and ta == a and d - 30 <= dt <= d
            ]
            expected[conv["event_id"]] = max(candidates)[1].decode() if candidates else None
    assert _touches(tenant) == expected


def test_attribution_endpoint_groups_conversions_and_revenue(tenant: Tenant) -> None:
    # given purchases after a play and after a campaign-tagged follow, and an unattributed vote
    _apply(
        tenant,
        [
            event(PLAY, user="fan-1", at=timedelta(hours=-1)),
            event(SPEND, user="fan-1", amount_minor=1000, currency="EUR"),
            event(FOLLOW, user="fan-2", at=timedelta(hours=-1), context={"campaign": {"source": "tiktok"}}),
            event(SPEND, user="fan-2", amount_minor=500, currency="USD"),
            event(SPEND, user="fan-2", amount_minor=700, currency="USD", at=timedelta(minutes=1)),
            event("coliseum.vote_cast", user="fan-3"),
        ],
    )
    client = client_for(tenant)
    window = {"from": day(-31), "to": day(2), "artist_id": "a1"}
    # when
    by_type = client.get("/api/v1/attribution", {**window, "group_by": "touch_type"})
    by_source = client.get("/api/v1/attribution", {**window, "group_by": "source"})
    # then
    assert by_type.status_code == 200, by_type.content
    groups = {g["key"]: (g["conversions"], g["revenue"]) for g in by_type.json()["groups"]}
    assert groups == {PLAY: (1, {"EUR": 1000}), FOLLOW: (2, {"USD": 1200}), None: (1, {})}
    sources = {g["key"]: g["conversions"] for g in by_source.json()["groups"]}
    assert sources == {"direct": 1, "tiktok": 2, None: 1}


def test_attributed_revenue_counts_attributed_money_per_currency(tenant: Tenant) -> None:
    # given two attributed purchases in EUR, one in USD, and an unattributed one
    _apply(
        tenant,
        [
            event(PLAY, user="fan-1", at=timedelta(hours=-1)),
            event(SPEND, user="fan-1", amount_minor=1000, currency="EUR"),
            event(SPEND, user="fan-1", amount_minor=250, currency="EUR", at=timedelta(minutes=2)),
            event(SPEND, user="fan-1", amount_minor=300, currency="USD", at=timedelta(minutes=3)),
            event(SPEND, user="fan-2", amount_minor=9999, currency="EUR"),
        ],
    )
    # when
    revenue = attributed_revenue(
        tenant_id=tenant.pk, start=T0 - timedelta(days=1), end=T0 + timedelta(days=1)
    )
    # then
    assert revenue == {"EUR": 1250, "USD": 300}


def test_attribution_endpoint_gate_validation_and_isolation(tenant: Tenant) -> None:
    # given a basic tenant, and another tenant's artist
    basic = TenantFactory.create(plan="basic")
    other = TenantFactory.create(plan="pro")
    _apply(other, [event(PLAY, at=timedelta(hours=-1)), event(SPEND)])
    client = client_for(tenant)
    # when / then
    assert client_for(basic).get("/api/v1/attribution").status_code == 403
    assert client.get("/api/v1/attribution", {"group_by": "city"}).status_code == 400
    assert client.get("/api/v1/attribution", {"artist_id": "a1"}).status_code == 404
    assert client.get("/api/v1/attribution", {"from": day(-31), "to": day(2)}).json()["groups"] == []


def test_openapi_schema_lists_both_endpoints(tenant: Tenant) -> None:
    response = client_for(tenant).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/funnels" in paths and "/api/v1/attribution" in paths


def test_an_operator_sets_the_lookback_in_the_admin(tenant: Tenant, client: Any) -> None:
    # given an operator
    from django.contrib.auth import get_user_model

    from ingestion.funnels.models import AttributionSettings

    operator = get_user_model().objects.create_superuser("ops", "ops@example.test", "correct-horse-battery")
    client.force_login(operator)
    # when
    response = client.post(
        "/admin/funnels/attributionsettings/add/", {"tenant": tenant.pk, "lookback_days": 14}
    )
    # then
    assert response.status_code == 302
    assert AttributionSettings.objects.get(tenant=tenant).lookback_days == 14
    assert client.get("/admin/funnels/attributedconversion/").status_code == 200


def test_applying_already_processed_events_again_changes_nothing(tenant: Tenant) -> None:
    # given a play and a purchase, processed (the processor recorded the play as a touch and credited it)
    play = event(PLAY, at=timedelta(hours=-2))
    spend = event(SPEND, amount_minor=900, currency="EUR")
    refs = ingest(tenant, [play, spend])
    assert _touches(tenant) == {spend["event_id"]: play["event_id"]}
    touches_before = _touch_rows(tenant)
    # when the same events are applied again (the touch is already recorded: the plain insert meets it)
    attribution_apply(tenant_id=tenant.pk, events=refs)
    attribution_apply(tenant_id=tenant.pk, events=refs)
    # then nothing failed, no touch is recorded twice and the credit is unchanged
    assert _touch_rows(tenant) == touches_before == 1
    assert _touches(tenant) == {spend["event_id"]: play["event_id"]}
    assert AttributedConversion.objects.get(tenant=tenant).amount_minor == 900


def _touch_rows(tenant: Tenant) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM funnels_touch WHERE tenant_id = %s", [tenant.pk])
        return int(cursor.fetchone()[0])
