"""Scheduled reports: created through the API, requested by the beat job when due, link emailed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from rest_framework.test import APIClient

from coliseum.models import Tenant
from reports.models import Report, ReportSchedule
from reports.services.schedules import report_schedules_run_due, schedule_period
from tests.factories import ArtistFactory, MembershipFactory, TenantFactory
from tests.reports.conftest import render

pytestmark = [pytest.mark.django_db, pytest.mark.clock]


def test_weekly_schedule_renders_the_previous_week_and_emails_the_share_link(
    owner_client: APIClient, owner: User, tenant: Tenant
) -> None:
    # given a weekly artist PDF schedule for the owner
    artist = ArtistFactory.create(tenant=tenant, name="Maria Lua")
    response = owner_client.post(
        "/api/v1/report-schedules",
        {"kind": "artist", "format": "pdf", "artist_id": artist.pk, "frequency": "weekly",
         "recipient_user_ids": [owner.pk]},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    schedule = ReportSchedule.objects.get(pk=response.json()["id"])
    assert schedule.next_run_at.weekday() == 0  # next Monday

    # when the beat job runs at its due time
    due = schedule.next_run_at + timedelta(minutes=1)
    assert report_schedules_run_due(now=due) == 1
    assert report_schedules_run_due(now=due) == 0  # not twice

    # then a report over the previous seven days was requested, and rendering it mails the share link
    report = Report.objects.get(schedule=schedule)
    monday = due.date()
    assert report.params["from"] == (monday - timedelta(days=7)).isoformat()
    assert report.params["to"] == (monday - timedelta(days=1)).isoformat()
    render(report)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [owner.email]
    share_url = owner_client.get(f"/api/v1/reports/{report.pk}").json()["share_url"]
    assert share_url and share_url in message.body
    schedule.refresh_from_db()
    assert schedule.next_run_at > due and schedule.last_run_at == due


def test_recipients_must_be_members(owner_client: APIClient, tenant: Tenant) -> None:
    outsider = MembershipFactory.create(tenant=TenantFactory.create()).user
    response = owner_client.post(
        "/api/v1/report-schedules",
        {"kind": "tenant", "format": "csv", "frequency": "monthly", "recipient_user_ids": [outsider.pk]},
        format="json",
    )
    assert response.status_code == 404
    assert ReportSchedule.objects.count() == 0


def test_quota_reached_skips_the_run_and_says_why(client_for: Callable[[User], APIClient]) -> None:
    basic = TenantFactory.create(plan="basic")
    member = MembershipFactory.create(tenant=basic)
    client = client_for(member.user)
    schedule_id = client.post(
        "/api/v1/report-schedules",
        {"kind": "tenant", "format": "json", "frequency": "monthly", "recipient_user_ids": [member.user.pk]},
        format="json",
    ).json()["id"]
    for _ in range(5):
        Report.objects.create(tenant=basic, kind="tenant", format="json", params={"from": "x", "to": "y"})
    schedule = ReportSchedule.objects.get(pk=schedule_id)
    assert report_schedules_run_due(now=schedule.next_run_at) == 0
    schedule.refresh_from_db()
    assert "5 reports a month" in schedule.last_error


def test_monthly_period_is_the_previous_calendar_month() -> None:
    assert schedule_period(frequency="monthly", today=date(2026, 3, 1)) == (
        date(2026, 2, 1),
        date(2026, 2, 28),
    )
    assert schedule_period(frequency="weekly", today=date(2026, 3, 2)) == (
        date(2026, 2, 23),
        date(2026, 3, 1),
    )


def test_schedules_are_listed_and_deleted_within_the_tenant(
    owner_client: APIClient, owner: User, client_for: Callable[[User], APIClient]
) -> None:
    schedule_id = owner_client.post(
        "/api/v1/report-schedules",
        {"kind": "tenant", "format": "csv", "frequency": "weekly", "recipient_user_ids": [owner.pk]},
        format="json",
    ).json()["id"]
    assert [s["id"] for s in owner_client.get("/api/v1/report-schedules").json()["results"]] == [schedule_id]
    stranger = client_for(MembershipFactory.create(tenant=TenantFactory.create()).user)
    assert stranger.delete(f"/api/v1/report-schedules/{schedule_id}").status_code == 404
    assert owner_client.delete(f"/api/v1/report-schedules/{schedule_id}").status_code == 204
    assert ReportSchedule.objects.count() == 0


def test_schedule_is_refused_up_front_when_the_plan_does_not_allow_it(
    client_for: Callable[[User], APIClient],
) -> None:
    basic = TenantFactory.create(plan="basic")
    member = MembershipFactory.create(tenant=basic)
    response = client_for(member.user).post(
        "/api/v1/report-schedules",
        {"kind": "tenant", "format": "pdf", "frequency": "weekly", "recipient_user_ids": [member.user.pk],
         "branding": {"primary_color": "#000000"}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "plan_required"
    assert ReportSchedule.objects.count() == 0
