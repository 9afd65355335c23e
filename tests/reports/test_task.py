"""The Celery task: retries transient failures with backoff, then fails with a reason; permanent errors fail
at once; rendering twice changes nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from coliseum.models import Artist, Tenant
from reports.models import Report, ReportStatus
from reports.services.reports import report_stale_requeue
from reports.tasks import MAX_RETRIES, retry_countdown
from tests.factories import ArtistFactory
from tests.reports.conftest import period, render

pytestmark = pytest.mark.django_db


def queued(client: APIClient, tenant: Tenant, fmt: str = "json") -> tuple[Report, Artist]:
    artist = ArtistFactory.create(tenant=tenant)
    start, end = period(3)
    payload = {"kind": "artist", "format": fmt, "artist_id": artist.pk, "from": start, "to": end}
    report = Report.objects.get(pk=client.post("/api/v1/reports", payload, format="json").json()["id"])
    return report, artist


def test_storage_failure_is_retried_then_the_report_fails_saying_why(
    owner_client: APIClient, tenant: Tenant, tmp_path: Path, settings: Any
) -> None:
    # given a report and a storage location that cannot be written (a file where a directory should be)
    report, _ = queued(owner_client, tenant)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    settings.PRIVATE_STORAGE_ROOT = blocker / "private"

    # when the worker renders it
    failed = render(report)

    # then every retry was attempted and the report says why it failed
    assert failed.status == ReportStatus.FAILED
    assert failed.attempts == MAX_RETRIES + 1
    assert "Storage" in failed.reason and f"{MAX_RETRIES + 1} attempts" in failed.reason
    body = owner_client.get(f"/api/v1/reports/{report.pk}").json()
    assert body["status"] == "failed" and body["reason"] == failed.reason
    assert body["download_url"] is None


def test_backoff_grows_exponentially() -> None:
    assert [retry_countdown(n) for n in range(4)] == [10, 20, 40, 80]


def test_permanent_error_fails_at_once_with_the_reason(owner_client: APIClient, tenant: Tenant) -> None:
    # given a queued report whose artist is deleted before it renders
    report, artist = queued(owner_client, tenant)
    artist.delete()

    # when rendered, then it fails on the first attempt, saying so
    failed = render(report)
    assert failed.status == ReportStatus.FAILED
    assert failed.attempts == 1
    assert failed.reason == "No such artist."


def test_rendering_again_is_a_no_op(owner_client: APIClient, tenant: Tenant, private_root: Path) -> None:
    report, _ = queued(owner_client, tenant)
    first = render(report)
    second = render(report)
    assert first.status == second.status == ReportStatus.READY
    assert second.file_name == first.file_name and second.attempts == 1
    assert len(list((private_root / "reports" / str(tenant.pk)).iterdir())) == 1


def test_reports_left_queued_are_sent_again(owner_client: APIClient, tenant: Tenant) -> None:
    # given one report queued long ago (its broker message lost) and one just queued
    old, _ = queued(owner_client, tenant)
    Report.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    queued(owner_client, tenant)

    # when the requeue job runs, then only the stale one is sent again
    assert report_stale_requeue() == 1


def test_a_file_removed_from_storage_answers_410(
    owner_client: APIClient, tenant: Tenant, private_root: Path
) -> None:
    report = render(queued(owner_client, tenant)[0])
    (private_root / report.file_name).unlink()
    response = owner_client.get(f"/api/v1/reports/{report.pk}/download")
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "report_file_gone"
