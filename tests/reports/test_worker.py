"""End to end with a real Celery worker process: request over HTTP, the worker renders, the file downloads."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from reports.models import Report
from tests.factories import ArtistFactory, MembershipFactory, TenantFactory
from tests.processes import celery_worker
from tests.reports.conftest import pdf_text, period


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_renders_the_requested_report(
    client_for: Callable[[User], APIClient], private_root: Path, tmp_path: Path, settings: Any
) -> None:
    # given a worker process on this test's database, Redis database and private storage
    extra = {"TEST_PRIVATE_STORAGE_ROOT": str(private_root), "PUBLIC_BASE_URL": settings.PUBLIC_BASE_URL}
    log = tmp_path / "worker.log"
    with celery_worker("reports", log, **extra) as worker:
        tenant = TenantFactory.create(plan="pro")
        client = client_for(MembershipFactory.create(tenant=tenant).user)
        artist = ArtistFactory.create(tenant=tenant, name="Maria Lua")
        start, end = period(7)

        # when a report is requested over the API
        payload = {"kind": "artist", "format": "pdf", "artist_id": artist.pk, "from": start, "to": end}
        report_id = client.post("/api/v1/reports", payload, format="json").json()["id"]

        # then the worker picks it up and it becomes ready
        deadline = time.monotonic() + 120
        status = "queued"
        while time.monotonic() < deadline and status not in ("ready", "failed"):
            time.sleep(0.5)
            status = Report.objects.get(pk=report_id).status
            assert worker.poll() is None, log.read_text()[-2000:]
        assert status == "ready", Report.objects.get(pk=report_id).reason
        response = client.get(f"/api/v1/reports/{report_id}/download")
        pdf = b"".join(response.streaming_content)  # type: ignore[attr-defined]
        assert "Maria Lua" in pdf_text(pdf, tmp_path)
