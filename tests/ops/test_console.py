"""The operator console (Django admin): the read-only event log and rollups, the boards' rebuild action and
the reports' re-render action, driven through the admin client as an operator would."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from audit.models import AuditEntry
from coliseum.models import Artist, Role, Tenant
from ingestion.admin_models import EventLogEntry
from ingestion.services import event_batch_ingest, processing_run_pending
from leaderboards.boards import BoardFamily
from leaderboards.services import redis
from reports.models import Report
from reports.tasks import REPORTS_QUEUE, report_render
from tests.factories import ArtistFactory, MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)


def _play(*, artist: str, user: str, at: datetime, city: str = "Lisbon") -> dict[str, Any]:
    return {
        "event_id": f"console-{next(_ids)}",
        "type": "player.track_played",
        "occurred_at": at.isoformat(),
        "user_id": user,
        "properties": {"track_id": "t1", "duration_seconds": 180, "artist_id": artist, "city": city},
    }


def _ingest(tenant: Tenant, events: list[dict[str, Any]]) -> None:
    result = event_batch_ingest(tenant=tenant, events=events, source="import")
    assert not result.rejected, result.rejected
    processing_run_pending()


def _operator() -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    return client


def _seeded() -> tuple[Tenant, Tenant]:
    ours, theirs = TenantFactory.create(plan="enterprise"), TenantFactory.create(plan="enterprise")
    ArtistFactory.create(tenant=ours, external_id="ana", name="Ana")
    now = datetime.now(UTC) - timedelta(minutes=5)
    _ingest(ours, [_play(artist="ana", user="fan-secret-7", at=now) for _ in range(3)])
    _ingest(theirs, [_play(artist="zed", user="fan-other-9", at=now)])
    return ours, theirs


def test_event_log_lists_events_filtered_by_tenant_without_user_ids() -> None:
    # given events of two tenants in the log
    ours, _theirs = _seeded()
    # when an operator opens the event log filtered to one tenant
    response = _operator().get(
        "/admin/ingestion/eventlogentry/",
        {"tenant__id__exact": ours.pk},
    )
    # then it lists that tenant's events only, newest first, with no fan user id anywhere on the page
    assert response.status_code == 200
    listed = list(response.context["cl"].result_list)
    assert len(listed) == 3 and {e.tenant_id for e in listed} == {ours.pk}
    body = response.content.decode()
    assert "player.track_played" in body and "Ana" in body
    assert "fan-secret-7" not in body and "fan-other-9" not in body


def test_event_log_filters_by_type_date_and_exact_event_id() -> None:
    ours, _ = _seeded()
    client = _operator()
    first = EventLogEntry.objects.filter(tenant=ours).order_by("id").first()
    assert first is not None
    by_type = client.get("/admin/ingestion/eventlogentry/", {"type": "coliseum.vote_cast"})
    by_id = client.get("/admin/ingestion/eventlogentry/", {"q": first.event_id})
    today = first.occurred_at
    by_day = client.get(
        "/admin/ingestion/eventlogentry/",
        {"occurred_at__year": today.year, "occurred_at__month": today.month, "occurred_at__day": today.day},
    )
    assert by_type.status_code == by_id.status_code == by_day.status_code == 200
    assert list(by_type.context["cl"].result_list) == []
    assert [e.pk for e in by_id.context["cl"].result_list] == [first.pk]
    assert len(by_day.context["cl"].result_list) >= 4


def test_event_detail_is_read_only_and_nothing_can_be_added_changed_or_deleted() -> None:
    ours, _ = _seeded()
    event = EventLogEntry.objects.filter(tenant=ours).first()
    assert event is not None
    client = _operator()
    detail = client.get(f"/admin/ingestion/eventlogentry/{event.pk}/change/")
    assert detail.status_code == 200
    assert b"fan-secret-7" in detail.content  # the detail page is where an operator sees the fan
    assert b'name="_save"' not in detail.content
    assert client.get("/admin/ingestion/eventlogentry/add/").status_code == 403
    assert (
        client.post(f"/admin/ingestion/eventlogentry/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    changelist = client.get("/admin/ingestion/eventlogentry/")
    assert b"delete_selected" not in changelist.content
    bulk = client.post(
        "/admin/ingestion/eventlogentry/", {"action": "delete_selected", "_selected_action": [event.pk]}
    )
    assert bulk.status_code in (200, 302)
    assert EventLogEntry.objects.filter(tenant=ours).count() == 3


def test_rollups_are_listed_read_only_filtered_by_tenant_and_metric() -> None:
    ours, _theirs = _seeded()
    client = _operator()
    response = client.get(
        "/admin/ingestion/rolluphourly/", {"tenant__id__exact": str(ours.pk), "metric": "plays"}
    )
    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert rows and {(r.tenant_id, r.metric) for r in rows} == {(ours.pk, "plays")}
    assert sum(r.value for r in rows) == 3
    assert client.get("/admin/ingestion/rolluphourly/add/").status_code == 403
    # no detail page for a row without a unique key: the admin redirects with "does not exist", never a 500
    detail = client.get(f"/admin/ingestion/rolluphourly/{rows[0].pk.isoformat()}/change/")
    assert detail.status_code == 302


def test_the_admin_views_migration_creates_no_table() -> None:
    loader = MigrationLoader(connection)
    migration = loader.get_migration("ingestion", "0003_admin_views")
    assert [getattr(op, "options", {}).get("managed") for op in migration.operations] == [False, False]
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('ingestion_eventlogentry'), to_regclass('ingestion_rolluphourly')")
        assert cursor.fetchone() == (None, None)


def test_anonymous_and_non_staff_users_cannot_open_the_event_log(django_user_model: type[User]) -> None:
    _seeded()
    assert Client().get("/admin/ingestion/eventlogentry/").status_code == 302
    client = Client()
    client.force_login(UserFactory.create(is_staff=False))
    assert client.get("/admin/ingestion/eventlogentry/").status_code == 302


def _member_api(tenant: Tenant) -> APIClient:
    membership = MembershipFactory.create(tenant=tenant, role=Role.OWNER)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(membership.user)}")
    return client


def _scores(client: APIClient, window: str) -> dict[str, int]:
    response = client.get("/api/v1/leaderboards", {"metric": "plays", "time_window": window})
    assert response.status_code == 200, response.content
    return {e["artist_name"]: e["score"] for e in response.json()["entries"]}


def test_rebuild_action_repairs_a_corrupted_board_and_is_audited(settings: Any) -> None:
    settings.LEADERBOARD_CACHE_SECONDS = 0  # every read recomputes from the buckets
    # given a tenant's plays board, read once (so it is built) and then corrupted in Redis
    ours, theirs = _seeded()
    api = _member_api(ours)
    assert _scores(api, "24h") == {"Ana": 3}
    conn = redis()
    family = BoardFamily(ours.pk, "plays")
    buckets = [
        k
        for k in conn.scan_iter(match=f"{family.tag}:*")
        if not any(p in k for p in (b":w:", b":r:", b":s:", b":built:"))
    ]
    assert buckets
    ana = str(Artist.objects.get(tenant=ours, external_id="ana").pk)
    for key in buckets:
        conn.zincrby(key, 1000, ana)
    time.sleep(0.25)  # the shared window cache lives at least 100 ms
    assert _scores(api, "24h") == {"Ana": 1003}
    # when an operator runs the rebuild action on that tenant in the admin
    response = _operator().post(
        "/admin/leaderboards/tenantboards/",
        {"action": "rebuild_boards", "_selected_action": [ours.pk]},
        follow=True,
    )
    # then the board reads correct again and the rebuild is in the audit log
    assert response.status_code == 200
    assert "Rebuilt" in response.content.decode()
    assert _scores(api, "24h") == {"Ana": 3}
    assert _scores(api, "all") == {"Ana": 3}
    entry = AuditEntry.objects.get(action="leaderboard.rebuilt")
    assert entry.tenant_id == ours.pk and entry.actor_type == "user"
    plays = {"metric": "plays", "currency": None, "city": None, "show_id": None}
    assert plays in entry.details["families"]
    assert not AuditEntry.objects.filter(action="leaderboard.rebuilt", tenant_id=theirs.pk).exists()


def test_boards_changelist_offers_only_the_rebuild_action() -> None:
    ours, _theirs = _seeded()
    client = _operator()
    response = client.get("/admin/leaderboards/tenantboards/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Rebuild leaderboards from the rollups" in body and "delete_selected" not in body
    assert client.get("/admin/leaderboards/tenantboards/add/").status_code == 403
    assert (
        client.post(f"/admin/leaderboards/tenantboards/{ours.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert Tenant.objects.filter(pk=ours.pk).exists()


def _failed_report(tenant: Tenant) -> Report:
    return Report.objects.create(
        tenant=tenant,
        kind="tenant",
        format="json",
        params={"from": "2026-01-01", "to": "2026-01-31", "title": ""},
        status="failed",
        reason="storage unavailable",
        attempts=3,
    )


def test_rerender_action_queues_a_failed_report_again_and_it_renders(
    settings: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PRIVATE_STORAGE_ROOT = tmp_path / "private"
    settings.REPORTS_S3_BUCKET = ""
    # given a report whose render failed
    tenant = TenantFactory.create(plan="pro")
    report = _failed_report(tenant)
    # when an operator runs "Re-render" on it in the admin
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = _operator().post(
            "/admin/reports/report/", {"action": "rerender", "_selected_action": [report.pk]}, follow=True
        )
    # then it is queued again with the reason cleared, a render task is on the broker, and it is audited
    assert response.status_code == 200
    assert "queued for rendering again" in response.content.decode()
    report.refresh_from_db()
    assert (report.status, report.reason, report.attempts) == ("queued", "", 0)
    assert callbacks
    assert redis().llen(REPORTS_QUEUE) == 1
    entry = AuditEntry.objects.get(action="report.rerendered")
    assert entry.tenant_id == tenant.pk and entry.target_id == str(report.pk)
    # and a worker picking the task up renders it
    report_render.apply(args=(report.pk,))
    report.refresh_from_db()
    assert report.status == "ready" and report.file_name


def test_rerender_refuses_a_report_that_is_still_queued() -> None:
    tenant = TenantFactory.create(plan="pro")
    report = _failed_report(tenant)
    Report.objects.filter(pk=report.pk).update(status="queued")
    response = _operator().post(
        "/admin/reports/report/", {"action": "rerender", "_selected_action": [report.pk]}, follow=True
    )
    assert response.status_code == 200
    assert "only a ready or failed report can be re-rendered" in response.content.decode()
    assert not AuditEntry.objects.filter(action="report.rerendered").exists()
