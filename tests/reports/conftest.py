"""Fixtures for report tests: a private storage directory per test, tenants on each plan, clients."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from coliseum.models import Role, Tenant
from reports.models import Report
from reports.tasks import report_render
from tests.factories import MembershipFactory, TenantFactory

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(autouse=True)
def private_root(tmp_path: Path, settings: Any) -> Path:
    root = tmp_path / "private"
    settings.PRIVATE_STORAGE_ROOT = root
    settings.REPORTS_S3_BUCKET = ""
    settings.CLAMD_SOCKET = ""
    settings.PUBLIC_BASE_URL = "https://coliseum.test"
    return root


@pytest.fixture
def tenant(db: Any) -> Tenant:
    return TenantFactory.create(plan="pro", name="Lisbon Live", reporting_currency="EUR")


@pytest.fixture
def owner(tenant: Tenant) -> User:
    return MembershipFactory.create(tenant=tenant, role=Role.OWNER).user  # type: ignore[no-any-return]


@pytest.fixture
def client_for() -> Callable[[User], APIClient]:
    def make(user: User) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def owner_client(owner: User, client_for: Callable[[User], APIClient]) -> APIClient:
    return client_for(owner)


def render(report: Report | int) -> Report:
    """Run the Celery task in-process (as a worker would) and reload the report."""
    report_id = report if isinstance(report, int) else report.pk
    report_render.apply(args=(report_id,))
    return Report.objects.get(pk=report_id)


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True
    ).stdout.decode()


def rasterise_first_page(pdf: bytes, name: str) -> Path:
    """Keep page 1 as a PNG under tests/artifacts/ (gitignored) for a human to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    source = ARTIFACTS / f"{name}.pdf"
    source.write_bytes(pdf)
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "50",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(source),
            str(ARTIFACTS / name),
        ],
        check=True,
    )
    return ARTIFACTS / f"{name}.png"


def period(days: int, *, end: date | None = None) -> tuple[str, str]:
    last = end or date.today()
    return (last - timedelta(days=days - 1)).isoformat(), last.isoformat()
