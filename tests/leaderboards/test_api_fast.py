"""The leaderboard API's hot path (leaderboards/fast.py) against its reference, the DRF view: the same status,
bytes and rate-limit headers for the same request, counting as the view counts, and the freshness and
revocation bounds the README states."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from billing.selectors import usage_this_period
from billing.services import entitlement_override_set
from coliseum.models import Artist, Membership, Role, Show, Tenant
from tests.factories import ArtistFactory, MembershipFactory, ShowFactory, TenantFactory

from .conftest import event, ingest

pytestmark = pytest.mark.django_db
URL = "/api/v1/leaderboards"


def member_client(
    plan: str = "enterprise", role: str = Role.VIEWER, tenant: Tenant | None = None
) -> tuple[APIClient, Membership]:
    membership = MembershipFactory.create(tenant=tenant or TenantFactory.create(plan=plan), role=role)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(membership.user)}")
    return client, membership


def both(client: APIClient, settings: Any, params: dict[str, Any], **headers: str) -> tuple[Any, Any]:
    """(hot path's answer, DRF view's answer) to the same request."""
    settings.LEADERBOARD_FAST_PATH = True
    fast = client.get(URL, params, headers=headers)
    settings.LEADERBOARD_FAST_PATH = False
    reference = client.get(URL, params, headers=headers)
    settings.LEADERBOARD_FAST_PATH = True
    return fast, reference


def assert_same(fast: Any, reference: Any) -> None:
    assert (fast.status_code, fast.content) == (reference.status_code, reference.content)
    assert fast["Content-Type"] == reference["Content-Type"] == "application/json"
    assert (fast["Allow"], fast["Vary"]) == (reference["Allow"], reference["Vary"])


def _catalog(tenant: Tenant) -> tuple[dict[str, Artist], Show]:
    """Artists in three genres (one name the JSON renderer must escape), plays in two cities, votes at a show,
    money in two currencies, from a minute to 50 days ago."""
    names = {"ana": "Ana", "bea": "Béa", "cai": "Cai\u2028Line", "dov": "Dov"}
    genres = {"ana": ["rock"], "bea": ["pop"], "cai": ["rock", "indie"], "dov": ["jazz"]}
    artists = {
        ext: ArtistFactory.create(tenant=tenant, external_id=ext, name=name, genres=genres[ext])
        for ext, name in names.items()
    }
    show = ShowFactory.create(tenant=tenant, external_id="battle")
    now = datetime.now(UTC)
    events = []
    for i, (ext, age) in enumerate(
        [("ana", 1), ("ana", 90), ("bea", 2), ("bea", 3), ("bea", 60 * 30), ("cai", 5), ("dov", 60 * 24 * 50)]
    ):
        at = now - timedelta(minutes=age)
        city = "Porto" if i % 3 == 0 else "Lisbon"
        events.append(event("play", at=at, user=f"u{i}", artist_id=ext, city=city))
        events.append(event("vote", at=at, user=f"u{i}", artist_id=ext, show_id="battle", city=city))
        currency = "EUR" if i % 2 else "USD"
        events.append(
            event(
                "earn",
                at=at,
                user=f"u{i}",
                artist_id=ext,
                city=city,
                amount_minor=100 * (i + 1),
                currency=currency,
            )
        )
    ingest(tenant, events)
    return artists, show


def test_the_hot_path_answers_the_views_bytes_across_the_parameters(settings: Any) -> None:
    settings.LEADERBOARD_CACHE_SECONDS = 30  # both paths page the same computed ranking
    client, membership = member_client()
    artists, show = _catalog(membership.tenant)
    ana, cai = artists["ana"].pk, artists["cai"].pk
    queries: list[dict[str, Any]] = [
        {},
        {"metric": "plays", "window": "24h"},
        {"metric": "plays", "time_window": "7d"},
        {"metric": "plays", "window": "1h", "time_window": "all"},
        {"metric": "listen_seconds", "window": "30d", "city": "Lisbon"},
        {"metric": "unique_listeners", "window": "90d"},
        {"metric": "plays", "window": "all", "genre": "rock", "artist_id": cai},
        {"metric": "plays", "window": "all", "genre": "  Rock  "},
        {"metric": "votes", "window": "7d", "show_id": show.pk},
        {"metric": "money_earned", "window": "all", "currency": "eur"},
        {"metric": "money_earned", "window": "all"},
        {"metric": "plays", "window": "7d", "page": 2, "page_size": 2},
        {"metric": "plays", "window": "7d", "page": 3, "page_size": 2, "artist_id": ana},
        {"metric": "plays", "window": "7d", "page": 50, "page_size": 2},
        {"metric": "plays", "window": "7d", "artist_id": ArtistFactory.create(tenant=membership.tenant).pk},
        {"metric": "plays", "window": "24h", "unknown": "ignored", "page": ""},
        {"metric": "plays", "window": "24h", "tenant": membership.tenant.slug},
    ]
    for params in queries:
        fast, reference = both(client, settings, params)
        assert fast.status_code == 200, (params, fast.content)
        assert_same(fast, reference)
        # and it was the hot path that answered (its lean middleware chain adds no X-Frame-Options)
        assert "X-Frame-Options" not in fast and "X-Frame-Options" in reference, params
    # the renderer's escaping of U+2028 is kept
    assert b"Cai\\u2028Line" in client.get(URL, {"window": "all"}).content


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"metric": "likes"}, 400),
        ({"window": "2h"}, 400),
        ({"page_size": 101}, 400),
        ({"page": 0}, 400),
        ({"show_id": "abc"}, 400),
        ({"currency": "EURO"}, 400),
        ({"city": "x" * 129}, 400),
        ({"format": "api"}, 404),
    ],
)
def test_bad_parameters_get_the_views_answer(settings: Any, params: dict[str, Any], status: int) -> None:
    client, _ = member_client()

    fast, reference = both(client, settings, params)

    assert fast.status_code == status
    assert_same(fast, reference)


def test_another_tenants_show_or_artist_gets_the_views_404(settings: Any) -> None:
    client, _ = member_client()
    other = TenantFactory.create(plan="enterprise")
    show, artist = ShowFactory.create(tenant=other), ArtistFactory.create(tenant=other)

    for params in ({"show_id": show.pk}, {"artist_id": artist.pk}, {"artist_id": 2**62}):
        fast, reference = both(client, settings, params)
        assert fast.status_code == 404
        assert_same(fast, reference)


@pytest.mark.parametrize(
    "params",
    [
        {"window": "all"},
        {"window": "24h", "city": "Lisbon"},
        {"window": "24h", "page": 2, "page_size": 10},
        {"window": "7d", "page_size": 11},
    ],
)
def test_plan_refusals_are_the_views(settings: Any, params: dict[str, Any]) -> None:
    client, _ = member_client(plan="basic")

    fast, reference = both(client, settings, params)

    assert fast.status_code == 403 and fast.json()["error"]["code"] == "plan_required"
    assert_same(fast, reference)


def test_callers_who_are_not_members_get_the_views_answers(settings: Any) -> None:
    client, membership = member_client()
    stranger = TenantFactory.create(plan="enterprise")
    MembershipFactory.create(user=membership.user)  # a second tenant
    tampered = APIClient()
    tampered.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(membership.user)}x")

    cases = [
        (client, {}, {"X-Tenant": stranger.slug}, 404),  # not a member of the tenant named
        (client, {"tenant": "nope"}, {}, 404),
        (client, {}, {}, 400),  # two memberships and no tenant named
        (tampered, {}, {}, 401),
        (APIClient(), {}, {}, 401),
    ]
    for caller, params, headers, status in cases:
        fast, reference = both(caller, settings, params, **headers)
        assert fast.status_code == status, (params, headers, fast.content)
        assert_same(fast, reference)
    fast, reference = both(client, settings, {}, **{"X-Tenant": membership.tenant.slug})
    assert fast.status_code == 200


def test_a_warm_read_costs_no_query_and_each_read_counts_as_an_api_call(settings: Any) -> None:
    settings.LEADERBOARD_CACHE_SECONDS = 30
    client, membership = member_client()
    _catalog(membership.tenant)
    assert client.get(URL, {"window": "7d"}).status_code == 200

    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            assert client.get(URL, {"window": "7d"}).status_code == 200

    assert len(queries) == 0
    assert usage_this_period(membership.tenant)["api_calls"] == 4


def test_the_rate_limit_answers_the_views_429_and_counts_exactly(settings: Any) -> None:
    client, membership = member_client()
    entitlement_override_set(tenant=membership.tenant, name="api_requests_per_minute", value=3, reason="test")
    if time.time() % 60 > 58:  # keep the five requests in one rate-limit minute (waits 2 s at most)
        time.sleep(60.05 - time.time() % 60)

    answers = [client.get(URL).status_code for _ in range(3)]
    fast, reference = both(client, settings, {})

    assert answers == [200, 200, 200]
    assert fast.status_code == 429 and fast.json()["error"]["code"] == "rate_limited"
    assert_same(fast, reference)
    assert abs(int(fast["Retry-After"]) - int(reference["Retry-After"])) <= 1
    assert fast["X-RateLimit-Reset"] == reference["X-RateLimit-Reset"]
    assert usage_this_period(membership.tenant)["api_calls"] == 5


def _read_then_play_until_expired(settings: Any) -> tuple[APIClient, Any, Any]:
    """A 1 s hot-read cache; a board read (one play), a second read from cache, another play, and a wait until
    the first read's page has expired. Returns the client and both reads."""
    settings.LEADERBOARD_CACHE_SECONDS = 1.0
    client, membership = member_client()
    ArtistFactory.create(tenant=membership.tenant, external_id="ana", name="Ana")
    at = datetime.now(UTC) - timedelta(minutes=2)
    ingest(membership.tenant, [event("play", at=at, user="u", artist_id="ana")])
    first = client.get(URL)
    computed = time.monotonic()
    again = client.get(URL)
    ingest(membership.tenant, [event("play", at=at, user="v", artist_id="ana")])
    time.sleep(max(0.0, computed + 1.05 - time.monotonic()))
    return client, first, again


def test_generated_at_advances_once_the_hot_read_cache_expires(settings: Any) -> None:
    client, first, again = _read_then_play_until_expired(settings)

    later = client.get(URL)

    assert again.content == first.content  # the cached answer, generated_at unchanged
    assert later.json()["generated_at"] > first.json()["generated_at"]
    assert [e["score"] for e in later.json()["entries"]] == [2]


def test_a_removed_membership_is_refused_once_the_caller_cache_expires(settings: Any) -> None:
    settings.LEADERBOARD_AUTH_CACHE_SECONDS = 1.0
    client, membership = member_client()
    assert client.get(URL).status_code == 200
    cached = time.monotonic()

    membership.delete()
    time.sleep(max(0.0, cached + 1.05 - time.monotonic()))
    after = client.get(URL)

    assert after.status_code == 403 and after.json()["error"]["code"] == "no_tenant"


def test_a_plan_change_applies_once_the_caller_cache_expires(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.LEADERBOARD_AUTH_CACHE_SECONDS = 1.0
    client, membership = member_client(plan="pro")
    assert client.get(URL, {"window": "all"}).status_code == 200
    cached = time.monotonic()

    with django_capture_on_commit_callbacks(execute=True):
        entitlement_override_set(
            tenant=membership.tenant, name="leaderboard_windows", value=["24h"], reason="test"
        )
    time.sleep(max(0.0, cached + 1.05 - time.monotonic()))
    refused = client.get(URL, {"window": "all"})

    assert refused.status_code == 403 and refused.json()["error"]["code"] == "plan_required"


def test_without_the_caller_cache_a_removed_membership_is_refused_at_once(settings: Any) -> None:
    settings.LEADERBOARD_AUTH_CACHE_SECONDS = 0
    client, membership = member_client()
    assert client.get(URL).status_code == 200

    membership.delete()

    assert client.get(URL).status_code == 403


def test_a_read_arriving_while_an_expired_page_is_recomputed_gets_the_previous_copy_at_once(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leaderboards import fast

    client, first, _ = _read_then_play_until_expired(settings)

    recompute = fast.board_page_timed
    recomputes: list[int] = []
    during: list[Any] = []

    def slow_recompute(**kwargs: Any) -> Any:
        recomputes.append(1)
        if len(recomputes) == 1:  # another screen's read arrives while this request recomputes the page
            during.append(client.get(URL))
        return recompute(**kwargs)

    monkeypatch.setattr(fast, "board_page_timed", slow_recompute)
    later = client.get(URL)

    assert len(recomputes) == 1  # the second read did not recompute the page as well
    assert during[0].status_code == 200 and during[0].content == first.content  # the previous copy
    assert later.json()["generated_at"] > first.json()["generated_at"]
    assert [e["score"] for e in later.json()["entries"]] == [2]
