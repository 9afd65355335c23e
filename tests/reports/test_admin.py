"""Operators see reports, schedules and uploads in the admin."""

from __future__ import annotations

import pytest
from django.test import Client

from coliseum.models import Tenant
from reports.models import Report
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_admin_lists_reports_schedules_and_uploads(tenant: Tenant) -> None:
    report = Report.objects.create(
        tenant=tenant, kind="tenant", format="csv", params={"from": "a", "to": "b"}
    )
    client = Client()
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    for path in ("/admin/reports/report/", "/admin/reports/reportschedule/", "/admin/reports/upload/"):
        assert client.get(path).status_code == 200, path
    page = client.get(f"/admin/reports/report/{report.pk}/change/")
    assert page.status_code == 200
    assert tenant.slug in page.content.decode()
