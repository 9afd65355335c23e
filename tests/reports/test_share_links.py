"""Share links /r/<token>: served without login, expiry 410, tampering 404, one-time links exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import signing
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEntry
from coliseum.models import Tenant
from reports.models import Report
from reports.services.links import SHARE_SALT, share_token
from tests.factories import ArtistFactory, MembershipFactory, TenantFactory
from tests.reports.conftest import period, render

pytestmark = pytest.mark.clock


def shared_report(client: APIClient, tenant: Tenant, **share: Any) -> Report:
    artist = ArtistFactory.create(tenant=tenant, name="Maria Lua")
    start, end = period(3)
    payload = {
        "kind": "artist",
        "format": "pdf",
        "artist_id": artist.pk,
        "from": start,
        "to": end,
        "share": share,
    }
    response = client.post("/api/v1/reports", payload, format="json")
    assert response.status_code == 202, response.json()
    return render(response.json()["id"])


def share_path(client: APIClient, report: Report) -> str:
    url = client.get(f"/api/v1/reports/{report.pk}").json()["share_url"]
    assert url.startswith("https://coliseum.test/r/")
    return str(url).removeprefix("https://coliseum.test")


@pytest.mark.django_db
def test_share_link_serves_the_pdf_without_login_and_is_audited(
    owner_client: APIClient, tenant: Tenant
) -> None:
    # given a ready report shared for an hour
    report = shared_report(owner_client, tenant, expires_in=3600)
    path = share_path(owner_client, report)

    # when anyone opens the link
    response = Client().get(path)

    # then the PDF is served with its type and name, and the use is recorded
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert 'filename="coliseum-artist-report-' in response["Content-Disposition"]
    assert b"".join(response.streaming_content).startswith(b"%PDF")  # type: ignore[attr-defined]
    assert AuditEntry.objects.filter(action="report.share_link_used", target_id=str(report.pk)).count() == 1
    # and a reusable link keeps working
    assert Client().get(path).status_code == 200


@pytest.mark.django_db
def test_a_report_has_one_share_link_whenever_it_is_asked_for(
    owner_client: APIClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a ready report shared for an hour, and its link as the API gives it now
    report = shared_report(owner_client, tenant, expires_in=3600)
    first = share_path(owner_client, report)

    # when it is asked for again a minute later (the e-mail and the PDF's QR code are made at other times)
    later = time.time() + 60
    monkeypatch.setattr(time, "time", lambda: later)
    again = share_path(owner_client, report)

    # then it is the same link, and it works
    assert again == first
    assert Client().get(first).status_code == 200


@pytest.mark.django_db
def test_a_link_issued_with_a_signing_time_still_opens(owner_client: APIClient, tenant: Tenant) -> None:
    # given a link as issued before links were deterministic (signing.dumps adds the time it was signed)
    report = shared_report(owner_client, tenant, expires_in=3600)
    assert report.share_expires_at is not None
    payload = {"r": report.pk, "e": int(report.share_expires_at.timestamp())}
    legacy = signing.dumps(payload, salt=SHARE_SALT)

    # when it is opened, then the report is served
    assert Client().get(f"/r/{legacy}").status_code == 200
    # and the same token with a changed character is refused
    tampered = legacy[:-3] + ("AAA" if not legacy.endswith("AAA") else "BBB")
    assert Client().get(f"/r/{tampered}").status_code == 404


@pytest.mark.django_db
def test_tampered_token_is_404_and_expired_token_is_410(owner_client: APIClient, tenant: Tenant) -> None:
    report = shared_report(owner_client, tenant, expires_in=3600)
    path = share_path(owner_client, report)

    # a changed character breaks the signature
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    response = Client().get(tampered)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"

    # a genuine link past its expiry is gone
    Report.objects.filter(pk=report.pk).update(share_expires_at=timezone.now() - timedelta(seconds=1))
    report.refresh_from_db()
    expired = Client().get(f"/r/{share_token(report=report)}")
    assert expired.status_code == 410
    assert expired.json()["error"]["code"] == "link_expired"
    # and the old token (other expiry) no longer matches the report at all
    assert Client().get(path).status_code == 404
    assert AuditEntry.objects.filter(action="report.share_link_used").count() == 0


@pytest.mark.django_db
def test_report_without_share_has_no_share_url(owner_client: APIClient, tenant: Tenant) -> None:
    artist = ArtistFactory.create(tenant=tenant)
    start, end = period(2)
    payload = {"kind": "artist", "format": "json", "artist_id": artist.pk, "from": start, "to": end}
    report = render(owner_client.post("/api/v1/reports", payload, format="json").json()["id"])
    assert owner_client.get(f"/api/v1/reports/{report.pk}").json()["share_url"] is None


@pytest.mark.django_db(transaction=True)
def test_one_time_link_serves_exactly_once_under_two_concurrent_downloads(
    client_for: Callable[[User], APIClient],
) -> None:
    # given an Enterprise report with a one-time link
    tenant = TenantFactory.create(plan="enterprise")
    client = client_for(MembershipFactory.create(tenant=tenant).user)
    report = shared_report(client, tenant, expires_in=3600, one_time=True)
    path = share_path(client, report)

    # when two people open it at the same instant
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def download() -> None:
        try:
            barrier.wait(timeout=10)
            response = Client().get(path)
            if response.status_code == 200:
                b"".join(response.streaming_content)  # type: ignore[attr-defined]
                response.close()
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=download) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # then exactly one gets the file and the other is told the link is used
    assert sorted(statuses) == [200, 410]
    assert Report.objects.get(pk=report.pk).share_used_at is not None
    assert AuditEntry.objects.filter(action="report.share_link_used", target_id=str(report.pk)).count() == 1
    later = Client().get(path)
    assert later.status_code == 410
    assert later.json()["error"]["code"] == "link_used"
