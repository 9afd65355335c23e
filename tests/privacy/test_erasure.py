"""Erasure end to end: the API, the job, nothing left anywhere, and numbers equal to a brute-force recount."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from rest_framework.test import APIClient

from audit.models import AuditEntry
from coliseum.models import Artist, Role, Show, Tenant
from coliseum.privacy.models import PrivacyRequest
from ingestion.models import Person
from ingestion.selectors import rollup_totals, show_round_votes
from ingestion.services import processing_run_pending
from ingestion.services.retention import log_partitions, partition_archive
from leaderboards.selectors import board_page
from tests.factories import MembershipFactory

from .conftest import (
    attend,
    brute_force,
    db_rows_mentioning,
    hour_ago,
    ingest,
    month_start,
    partition_ensure,
    play,
    redis_mentions,
    rollup_all,
    vote,
)

SUBJECT = "fan-zq81x-subject"


def _seed(tenant: Tenant) -> dict[str, Any]:
    """The subject and two other fans: recent plays/votes/attendance, plus a month 30 months back that
    retention has moved to the archive."""
    h1, h2 = hour_ago(3), hour_ago(2)
    old_month = month_start(30)
    partition_ensure(old_month)
    old = datetime(old_month.year, old_month.month, 10, 12, tzinfo=UTC)
    ingest(
        tenant,
        [
            # h1: the subject is the only listener of a1; shares a2 with fan-2
            play(SUBJECT, "a1", h1 + timedelta(minutes=1)),
            play(SUBJECT, "a1", h1 + timedelta(minutes=2), seconds=50),
            play(SUBJECT, "a2", h1 + timedelta(minutes=3)),
            play("fan-2", "a2", h1 + timedelta(minutes=4)),
            # h2: fan-3 plays a1; the subject's vote for a1 came first, fan-2 votes a2, fan-3 votes a1 later
            play("fan-3", "a1", h2 + timedelta(minutes=5), seconds=30),
            vote(SUBJECT, "a1", h2 + timedelta(minutes=1), weight=3),
            vote(SUBJECT, "a2", h2 + timedelta(minutes=9)),  # not counted (not the subject's first)
            vote("fan-2", "a2", h2 + timedelta(minutes=2)),
            vote("fan-3", "a1", h2 + timedelta(minutes=3), weight=2),
            attend(SUBJECT, "a1", h2 + timedelta(minutes=6)),
            attend("fan-2", "a1", h2 + timedelta(minutes=7)),
            # the archived month
            play(SUBJECT, "a1", old),
            play("fan-2", "a1", old + timedelta(minutes=1)),
        ],
    )
    Person.objects.create(tenant=tenant, user_id=SUBJECT, traits={"email": f"{SUBJECT}@example.test"})
    Person.objects.create(tenant=tenant, user_id="fan-2", traits={"email": "fan-2@example.test"})
    processing_run_pending()
    partition = next(p for p in log_partitions() if p.month == old_month and p.schema == "public")
    partition_archive(partition=partition)
    return {"h1": h1, "h2": h2, "old": old}


def _erase(client: APIClient, tenant: Tenant, user_id: str, run_job: Callable[[str], None]) -> dict[str, Any]:
    response = client.post("/api/v1/privacy/erasures", {"user_id": user_id}, format="json")
    assert response.status_code == 202, response.content
    receipt = response.json()["id"]
    run_job(receipt)
    status = client.get(f"/api/v1/privacy/erasures/{receipt}")
    assert status.status_code == 200
    return status.json()  # type: ignore[no-any-return]


def test_erasure_leaves_no_row_or_redis_value_mentioning_the_fan_and_rollups_equal_a_recount(
    tenant: Tenant,
    owner: User,
    client_for: Callable[[User], APIClient],
    settings: Any,
    run_job: Callable[[str], None],
) -> None:
    # board reads are cached (in process, in Redis) for LEADERBOARD_CACHE_SECONDS: read them fresh here
    settings.LEADERBOARD_CACHE_SECONDS = 0
    # given a tenant with the subject's events (hot and archived), traits, votes, and boards that were read
    times = _seed(tenant)
    a1 = Artist.objects.get(tenant=tenant, external_id="a1").pk
    a2 = Artist.objects.get(tenant=tenant, external_id="a2").pk
    show = Show.objects.get(tenant=tenant, external_id="s1").pk
    board_before = board_page(tenant=tenant, metric="plays", window="24h")
    assert {e["artist_id"]: e["score"] for e in board_before["entries"]} == {a1: 3, a2: 2}
    board_page(tenant=tenant, metric="votes", window="all")
    assert db_rows_mentioning(SUBJECT)  # the scan does find the subject before
    others_expected = brute_force(tenant.pk)
    assert rollup_all(tenant.pk) == others_expected
    h1 = times["h1"]
    assert rollup_totals(
        tenant_id=tenant.pk, metric="unique_listeners", start=h1, end=h1 + timedelta(hours=1)
    ) == {
        a1: 1,
        a2: 2,
    }

    # when an owner asks for the erasure and the job runs
    body = _erase(client_for(owner), tenant, SUBJECT, run_job)

    # then the receipt says completed with what was removed
    assert body["status"] == "completed"
    assert body["result"]["events"] == 6 and body["result"]["archived_events"] == 1
    assert body["result"]["traits"] == 1 and body["result"]["counted_votes"] == 1
    # (processing attributed the subject's three conversions: two votes and the attendance, to their plays)
    assert body["result"]["attributions"] == 3
    # and no row in any table, and no Redis key or value, mentions the fan
    assert db_rows_mentioning(SUBJECT) == {}
    assert redis_mentions(SUBJECT) == []
    # and the rollups equal a brute-force recount of what remains
    after = rollup_all(tenant.pk)
    assert after == brute_force(tenant.pk)
    assert after["plays"] == {a1: 2, a2: 1}  # fan-3 in h2 and fan-2 in the archived month; fan-2 on a2
    # unique listeners drop by one where the subject listened
    assert rollup_totals(
        tenant_id=tenant.pk, metric="unique_listeners", start=h1, end=h1 + timedelta(hours=1)
    ) == {a2: 1}
    # votes re-decided: only fan-2's and fan-3's first votes count
    assert show_round_votes(tenant_id=tenant.pk, show_id=show) == {1: {a1: 2, a2: 1}}
    assert after["attendance"] == {a1: 1}
    # other fans' traits are untouched
    assert Person.objects.filter(tenant=tenant).count() == 1
    # and the Redis boards were rebuilt from the corrected rollups
    board_after = board_page(tenant=tenant, metric="plays", window="24h")
    assert {e["artist_id"]: e["score"] for e in board_after["entries"]} == {a1: 1, a2: 1}
    votes_board = board_page(tenant=tenant, metric="votes", window="all")
    assert {e["artist_id"]: e["score"] for e in votes_board["entries"]} == {a1: 2, a2: 1}


def test_erasure_touches_only_the_callers_tenant_and_is_audited_without_the_user_id(
    tenant: Tenant,
    other_tenant: Tenant,
    owner: User,
    client_for: Callable[[User], APIClient],
    run_job: Callable[[str], None],
) -> None:
    # given the same fan id in two tenants
    at = hour_ago(2)
    ingest(tenant, [play(SUBJECT, "a1", at)])
    ingest(other_tenant, [play(SUBJECT, "a1", at), play(SUBJECT, "a1", at + timedelta(minutes=1))])
    processing_run_pending()

    # when the first tenant erases the fan
    body = _erase(client_for(owner), tenant, SUBJECT, run_job)

    # then the other tenant still has that fan's events and numbers
    assert body["result"]["events"] == 1
    assert rollup_all(other_tenant.pk) == brute_force(other_tenant.pk)
    assert sum(rollup_all(other_tenant.pk)["plays"].values()) == 2
    assert rollup_all(tenant.pk) == {}
    # and the audit trail records request and completion without the user id
    entries = AuditEntry.objects.filter(tenant=tenant, action__startswith="privacy.erasure")
    assert sorted(e.action for e in entries) == ["privacy.erasure_completed", "privacy.erasure_requested"]
    assert all(SUBJECT not in str(e.details) for e in entries)
    assert PrivacyRequest.objects.get(pk=body["id"]).subject_encrypted == ""


def test_unknown_fan_answers_202_and_finds_nothing(
    tenant: Tenant, owner: User, client_for: Callable[[User], APIClient], run_job: Callable[[str], None]
) -> None:
    # given a fan id this tenant never saw
    # when it is erased
    body = _erase(client_for(owner), tenant, "nobody-here", run_job)
    # then the request completes with nothing removed
    assert body["status"] == "completed"
    assert body["result"]["events"] == 0 and body["result"]["traits"] == 0


def test_erasure_refuses_analysts_and_hides_other_tenants_receipts(
    tenant: Tenant, other_tenant: Tenant, owner: User, client_for: Callable[[User], APIClient]
) -> None:
    # given an analyst of the tenant and an owner of another tenant
    analyst = MembershipFactory.create(tenant=tenant, role=Role.ANALYST).user
    stranger = MembershipFactory.create(tenant=other_tenant, role=Role.OWNER).user
    receipt = (
        client_for(owner).post("/api/v1/privacy/erasures", {"user_id": "fan-1"}, format="json").json()["id"]
    )

    # when the analyst asks for an erasure, and the stranger looks up the receipt
    refused = client_for(analyst).post("/api/v1/privacy/erasures", {"user_id": "fan-1"}, format="json")
    hidden = client_for(stranger).get(f"/api/v1/privacy/erasures/{receipt}")
    as_export = client_for(owner).get(f"/api/v1/privacy/exports/{receipt}")

    # then the analyst gets 403, the stranger and the wrong kind 404, in the error envelope
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "role_required"
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
    assert as_export.status_code == 404
    assert PrivacyRequest.objects.filter(tenant=tenant).count() == 1


def test_bad_input_is_a_400_and_creates_nothing(
    tenant: Tenant, owner: User, client_for: Callable[[User], APIClient]
) -> None:
    client = client_for(owner)
    for payload in ({}, {"user_id": ""}, {"user_id": "x" * 201}, {"user_id": ["a"]}):
        response = client.post("/api/v1/privacy/erasures", payload, format="json")
        assert response.status_code == 400, payload
        assert "error" in response.json()
    malformed = client.post("/api/v1/privacy/exports", "{not json", content_type="application/json")
    assert malformed.status_code == 400
    assert PrivacyRequest.objects.count() == 0
