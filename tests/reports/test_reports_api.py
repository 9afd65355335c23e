"""POST/GET /api/v1/reports: validation, plan gates and quota, tenant isolation, listing, download."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from pypdf import PdfReader
from rest_framework.test import APIClient

from audit.models import AuditEntry
from coliseum.models import Role, Tenant
from reports.models import Report, ReportStatus
from tests.factories import ArtistFactory, MembershipFactory, TenantFactory
from tests.reports.conftest import pdf_text, period, render

pytestmark = pytest.mark.django_db


def artist_request(artist_id: int, **extra: Any) -> dict[str, Any]:
    start, end = period(7)
    return {"kind": "artist", "format": "pdf", "artist_id": artist_id, "from": start, "to": end, **extra}


def member_client(
    tenant: Tenant, client_for: Callable[[User], APIClient], role: str = Role.OWNER
) -> APIClient:
    return client_for(MembershipFactory.create(tenant=tenant, role=role).user)


def test_request_answers_202_queued_and_is_audited(owner_client: APIClient, tenant: Tenant) -> None:
    # given an artist of the tenant
    artist = ArtistFactory.create(tenant=tenant, name="Maria Lua")

    # when a report is requested
    response = owner_client.post("/api/v1/reports", artist_request(artist.pk), format="json")

    # then it is queued, visible with no file yet, and recorded in the audit log
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    detail = owner_client.get(f"/api/v1/reports/{body['id']}").json()
    assert detail["status"] == "queued"
    assert detail["artist_id"] == artist.pk
    assert detail["download_url"] is None
    assert (
        AuditEntry.objects.filter(action="report.created", tenant=tenant, target_id=str(body["id"])).count()
        == 1
    )


def test_rendered_pdf_downloads_with_its_type_and_name_and_the_download_is_audited(
    owner_client: APIClient, tenant: Tenant, tmp_path: Path
) -> None:
    # given a rendered artist report
    artist = ArtistFactory.create(tenant=tenant, name="Maria Lua")
    report_id = owner_client.post("/api/v1/reports", artist_request(artist.pk), format="json").json()["id"]
    assert render(report_id).status == ReportStatus.READY

    # when the member downloads it through download_url
    detail = owner_client.get(f"/api/v1/reports/{report_id}").json()
    assert detail["status"] == "ready" and detail["content_type"] == "application/pdf"
    response = owner_client.get(detail["download_url"].removeprefix("https://coliseum.test"))

    # then it is the PDF, named, as an attachment, with the artist's name inside, and the download is audited
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith('attachment; filename="coliseum-artist-report-')
    pdf = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert "Maria Lua" in pdf_text(pdf, tmp_path)
    assert AuditEntry.objects.filter(action="report.downloaded", target_id=str(report_id)).count() == 1


def test_another_tenants_report_is_not_found(
    owner_client: APIClient, tenant: Tenant, client_for: Callable[[User], APIClient]
) -> None:
    # given a ready report of our tenant and a member of another tenant
    artist = ArtistFactory.create(tenant=tenant)
    report_id = owner_client.post("/api/v1/reports", artist_request(artist.pk), format="json").json()["id"]
    render(report_id)
    stranger = member_client(TenantFactory.create(plan="enterprise"), client_for)

    # when the stranger asks for it, then it does not exist for them
    for path in (f"/api/v1/reports/{report_id}", f"/api/v1/reports/{report_id}/download"):
        response = stranger.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert stranger.get("/api/v1/reports").json()["count"] == 0


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"kind": "nope"}, 400, "invalid"),
        ({"from": "2026-02-10", "to": "2026-02-01"}, 400, "invalid"),
        ({"from": "yesterday"}, 400, "invalid"),
        ({"artist_id": "abc"}, 400, "invalid"),
        ({"share": {"expires_in": 31 * 24 * 3600}}, 400, "invalid"),
        ({"branding": {"primary_color": "red; background: url(http://x)"}}, 400, "invalid"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, 400, "invalid"),
    ],
)
def test_bad_input_is_refused_and_creates_nothing(
    owner_client: APIClient, tenant: Tenant, payload: dict[str, Any], status: int, code: str
) -> None:
    artist = ArtistFactory.create(tenant=tenant)
    response = owner_client.post("/api/v1/reports", {**artist_request(artist.pk), **payload}, format="json")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert Report.objects.count() == 0


def test_malformed_json_is_a_400_in_the_envelope(owner_client: APIClient) -> None:
    response = owner_client.post("/api/v1/reports", data='{"kind": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_another_tenants_artist_is_not_found(owner_client: APIClient) -> None:
    # given an artist that belongs to someone else
    foreign = ArtistFactory.create(tenant=TenantFactory.create())

    # when a report on it is requested, then 404 and nothing is queued
    response = owner_client.post("/api/v1/reports", artist_request(foreign.pk), format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "artist_not_found"
    assert Report.objects.count() == 0


def test_viewers_read_but_cannot_request(tenant: Tenant, client_for: Callable[[User], APIClient]) -> None:
    viewer = member_client(tenant, client_for, role=Role.VIEWER)
    artist = ArtistFactory.create(tenant=tenant)
    response = viewer.post("/api/v1/reports", artist_request(artist.pk), format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "role_required"
    assert viewer.get("/api/v1/reports").status_code == 200


def test_list_is_newest_first_and_paginated(owner_client: APIClient, tenant: Tenant) -> None:
    artist = ArtistFactory.create(tenant=tenant)
    ids = [
        owner_client.post("/api/v1/reports", artist_request(artist.pk), format="json").json()["id"]
        for _ in "abc"
    ]
    body = owner_client.get("/api/v1/reports?page_size=2").json()
    assert body["count"] == 3
    assert [r["id"] for r in body["results"]] == [ids[2], ids[1]]
    assert body["next"] is not None
    assert [r["id"] for r in owner_client.get("/api/v1/reports?page_size=2&page=2").json()["results"]] == [
        ids[0]
    ]


def test_basic_plan_cannot_brand_and_is_told_which_plan_can(client_for: Callable[[User], APIClient]) -> None:
    basic = TenantFactory.create(plan="basic")
    client = member_client(basic, client_for)
    artist = ArtistFactory.create(tenant=basic)
    response = client.post(
        "/api/v1/reports", artist_request(artist.pk, branding={"primary_color": "#112233"}), format="json"
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "plan_required"
    assert error["details"]["required_plan"] == "pro"
    assert "Pro plan" in error["message"]


def test_one_time_links_need_enterprise(owner_client: APIClient, tenant: Tenant) -> None:
    artist = ArtistFactory.create(tenant=tenant)  # tenant is on Pro
    response = owner_client.post(
        "/api/v1/reports",
        artist_request(artist.pk, share={"expires_in": 600, "one_time": True}),
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["error"]["details"]["required_plan"] == "enterprise"


def test_monthly_quota_comes_from_the_plan_and_failed_reports_do_not_count(
    client_for: Callable[[User], APIClient],
) -> None:
    # given a Basic tenant (5 reports a month) that has made 5
    basic = TenantFactory.create(plan="basic")
    client = member_client(basic, client_for)
    artist = ArtistFactory.create(tenant=basic)
    for _ in range(5):
        assert client.post("/api/v1/reports", artist_request(artist.pk), format="json").status_code == 202

    # when it asks for a sixth, then it is refused naming the plan that allows more
    refused = client.post("/api/v1/reports", artist_request(artist.pk), format="json")
    assert refused.status_code == 403
    assert refused.json()["error"]["details"] == {"required_plan": "pro", "used": 5, "limit": 5}

    # and when one of the five failed, a slot is free again
    first = Report.objects.filter(tenant=basic).order_by("id")[0]
    Report.objects.filter(pk=first.pk).update(status=ReportStatus.FAILED)
    assert client.post("/api/v1/reports", artist_request(artist.pk), format="json").status_code == 202
    assert Report.objects.filter(tenant=basic).count() == 6


def test_basic_reports_carry_the_watermark_and_pro_reports_do_not(
    owner_client: APIClient, tenant: Tenant, client_for: Callable[[User], APIClient], tmp_path: Path
) -> None:
    basic = TenantFactory.create(plan="basic")
    texts = {}
    for who, client in (("basic", member_client(basic, client_for)), ("pro", owner_client)):
        artist = ArtistFactory.create(tenant=basic if who == "basic" else tenant, name=f"Artist of {who}")
        report_id = client.post("/api/v1/reports", artist_request(artist.pk), format="json").json()["id"]
        report = render(report_id)
        assert client.get(f"/api/v1/reports/{report_id}").json()["watermark"] is (who == "basic")
        pdf = b"".join(client.get(f"/api/v1/reports/{report.pk}/download").streaming_content)  # type: ignore[attr-defined]
        # pypdf reads the rotated watermark text (pdftotext -layout drops rotated runs)
        path = tmp_path / f"{who}.pdf"
        path.write_bytes(pdf)
        texts[who] = "".join(page.extract_text() for page in PdfReader(str(path)).pages)
    assert "COLISEUM BASIC PLAN" in texts["basic"]
    assert "COLISEUM BASIC PLAN" not in texts["pro"]


def test_download_before_ready_is_a_409(owner_client: APIClient, tenant: Tenant) -> None:
    artist = ArtistFactory.create(tenant=tenant)
    report_id = owner_client.post("/api/v1/reports", artist_request(artist.pk), format="json").json()["id"]
    response = owner_client.get(f"/api/v1/reports/{report_id}/download")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "report_not_ready"


def test_csv_and_json_formats_download_with_their_types(owner_client: APIClient, tenant: Tenant) -> None:
    artist = ArtistFactory.create(tenant=tenant)
    for fmt, content_type in (("csv", "text/csv; charset=utf-8"), ("json", "application/json")):
        report_id = owner_client.post(
            "/api/v1/reports", artist_request(artist.pk, format=fmt), format="json"
        ).json()["id"]
        render(report_id)
        response = owner_client.get(f"/api/v1/reports/{report_id}/download")
        assert response.status_code == 200
        assert response["Content-Type"] == content_type
        assert response["Content-Disposition"].endswith(f'.{fmt}"')
        body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
        if fmt == "csv":
            assert body.splitlines()[0].startswith("date,plays,")
            assert len(body.splitlines()) == 8  # header + 7 days
        else:
            assert '"schema": "coliseum.report/1"' in body


def test_json_schema_is_served_and_every_endpoint_is_in_openapi(api_client: APIClient) -> None:
    schema = api_client.get("/api/v1/reports/schema.json").json()
    assert schema["$id"] == "coliseum.report/1"
    paths = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    for path in (
        "/api/v1/reports",
        "/api/v1/reports/{report_id}",
        "/api/v1/reports/{report_id}/download",
        "/api/v1/reports/schema.json",
        "/api/v1/report-schedules",
        "/api/v1/uploads",
        "/api/v1/uploads/{upload_id}",
        "/api/v1/uploads/{upload_id}/ocr",
        "/r/{token}",
    ):
        assert path in paths, path


def test_huge_body_is_a_413_and_creates_nothing(owner_client: APIClient) -> None:
    response = owner_client.post(
        "/api/v1/reports",
        data='{"title": "' + "x" * (3 * 1024 * 1024) + '"}',
        content_type="application/json",
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert Report.objects.count() == 0


def test_anonymous_callers_are_refused(api_client: APIClient) -> None:
    for method, path in (
        ("get", "/api/v1/reports"),
        ("post", "/api/v1/reports"),
        ("get", "/api/v1/reports/1"),
    ):
        response = getattr(api_client, method)(path)
        assert response.status_code == 401
        assert "error" in response.json()
