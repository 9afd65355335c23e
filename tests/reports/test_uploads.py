"""POST /api/v1/uploads: type from the content, size limit, private storage, ClamAV scan; logos in reports."""

from __future__ import annotations

import io
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from coliseum.models import Tenant
from reports.models import ScanStatus, Upload
from tests.factories import ArtistFactory, MembershipFactory, TenantFactory
from tests.reports.conftest import period, rasterise_first_page, render

pytestmark = pytest.mark.django_db

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def png_bytes(color: tuple[int, int, int] = (30, 60, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 40), color).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(client: APIClient, name: str, content: bytes, content_type: str, purpose: str = "logo") -> Any:
    file = SimpleUploadedFile(name, content, content_type=content_type)
    return client.post("/api/v1/uploads", {"file": file, "purpose": purpose}, format="multipart")


def test_png_logo_is_stored_privately_and_reported(
    owner_client: APIClient, tenant: Tenant, private_root: Path
) -> None:
    # when a PNG is uploaded
    response = upload(owner_client, "logo.png", png_bytes(), "image/png")

    # then its detected type and status are answered and the bytes sit in the private storage
    assert response.status_code == 201
    body = response.json()
    assert body["content_type"] == "image/png"
    assert body["scan_status"] == "unscanned"
    row = Upload.objects.get(pk=body["id"])
    assert (private_root / row.file_name).read_bytes() == png_bytes()
    assert owner_client.get(f"/api/v1/uploads/{row.pk}").json()["id"] == row.pk


def test_type_comes_from_the_content_not_the_name(owner_client: APIClient) -> None:
    # a text file calling itself a PNG, and a real PDF offered as a logo, are refused
    fake = upload(owner_client, "logo.png", b"<svg onload=alert(1)>", "image/png")
    assert fake.status_code == 415
    assert fake.json()["error"]["code"] == "unsupported_file_type"
    pdf = upload(owner_client, "logo.png", b"%PDF-1.7\n...", "image/png")
    assert pdf.status_code == 415
    assert Upload.objects.count() == 0
    # but a PDF is a fine document (the future OCR intake)
    assert (
        upload(owner_client, "scan.bin", b"%PDF-1.7\n...", "application/octet-stream", "document").status_code
        == 201
    )


def test_logo_over_the_size_limit_is_413(owner_client: APIClient, settings: Any) -> None:
    settings.UPLOAD_MAX_LOGO_BYTES = 1000
    response = upload(owner_client, "big.png", png_bytes() + b"\0" * 2000, "image/png")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert Upload.objects.count() == 0


def test_other_tenants_upload_is_404_and_ocr_is_501(
    owner_client: APIClient, client_for: Callable[[User], APIClient]
) -> None:
    upload_id = upload(owner_client, "logo.png", png_bytes(), "image/png").json()["id"]
    stranger = client_for(MembershipFactory.create(tenant=TenantFactory.create()).user)
    assert stranger.get(f"/api/v1/uploads/{upload_id}").status_code == 404
    ocr = owner_client.post(f"/api/v1/uploads/{upload_id}/ocr")
    assert ocr.status_code == 501
    assert ocr.json()["error"]["code"] == "not_implemented"


def test_missing_file_is_a_400(owner_client: APIClient) -> None:
    response = owner_client.post("/api/v1/uploads", {"purpose": "logo"}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()["error"]["details"]


@pytest.fixture
def fake_clamd(tmp_path: Path) -> Iterator[str]:
    """A stand-in for the clamd daemon (an outside service) speaking INSTREAM on a unix socket."""
    path = str(tmp_path / "clamd.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while not data.endswith(b"\0\0\0\0") or len(data) < 14:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                verdict = b"stream: Eicar-Test-Signature FOUND\0" if EICAR in data else b"stream: OK\0"
                conn.sendall(verdict)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    stop.set()
    server.close()
    if os.path.exists(path):
        os.unlink(path)


def test_clamd_scan_marks_clean_and_infected_uploads(
    owner_client: APIClient, tenant: Tenant, settings: Any, fake_clamd: str
) -> None:
    settings.CLAMD_SOCKET = fake_clamd
    clean = upload(owner_client, "logo.png", png_bytes(), "image/png").json()
    infected = upload(owner_client, "logo.png", png_bytes() + EICAR, "image/png").json()
    assert clean["scan_status"] == "clean"
    assert infected["scan_status"] == "infected"
    assert Upload.objects.get(pk=infected["id"]).file_name == ""  # infected bytes are not kept

    # and an infected logo cannot brand a report
    artist = ArtistFactory.create(tenant=tenant)
    start, end = period(2)
    payload = {
        "kind": "artist", "format": "pdf", "artist_id": artist.pk, "from": start, "to": end,
        "branding": {"logo_upload_id": infected["id"]},
    }  # fmt: skip
    response = owner_client.post("/api/v1/reports", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "upload_not_clean"


def test_scanner_down_leaves_the_upload_pending(
    owner_client: APIClient, settings: Any, tmp_path: Path
) -> None:
    settings.CLAMD_SOCKET = str(tmp_path / "no-such.sock")
    body = upload(owner_client, "logo.png", png_bytes(), "image/png").json()
    assert body["scan_status"] == ScanStatus.PENDING


def test_branded_pdf_carries_the_logo_and_colour(owner_client: APIClient, tenant: Tenant) -> None:
    # given a Pro tenant's clean logo and a brand colour
    logo = upload(owner_client, "logo.png", png_bytes((20, 120, 60)), "image/png").json()
    artist = ArtistFactory.create(tenant=tenant, name="Maria Lua")
    start, end = period(7)
    payload = {
        "kind": "artist", "format": "pdf", "artist_id": artist.pk, "from": start, "to": end,
        "title": "Spring tour",
        "branding": {"primary_color": "#1e6b8a", "logo_upload_id": logo["id"]},
    }  # fmt: skip

    # when rendered
    report = render(owner_client.post("/api/v1/reports", payload, format="json").json()["id"])
    pdf = b"".join(owner_client.get(f"/api/v1/reports/{report.pk}/download").streaming_content)  # type: ignore[attr-defined]

    # then the cover shows the brand colour and the logo image is embedded
    assert b"/Subtype /Image" in pdf or b"/Subtype/Image" in pdf
    png = rasterise_first_page(pdf, "report_artist_branded")
    cover = Image.open(png).convert("RGB")
    assert cover.getpixel((cover.width // 2, 20)) == pytest.approx((30, 107, 138), abs=6)  # type: ignore[arg-type]


def test_another_tenants_logo_is_refused(
    owner_client: APIClient, client_for: Callable[[User], APIClient]
) -> None:
    other = TenantFactory.create(plan="pro")
    their_logo = upload(
        client_for(MembershipFactory.create(tenant=other).user), "l.png", png_bytes(), "image/png"
    )
    artist = ArtistFactory.create(tenant=Tenant.objects.exclude(pk=other.pk).get())
    start, end = period(2)
    payload = {
        "kind": "artist", "format": "pdf", "artist_id": artist.pk, "from": start, "to": end,
        "branding": {"logo_upload_id": their_logo.json()["id"]},
    }  # fmt: skip
    response = owner_client.post("/api/v1/reports", payload, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "upload_not_found"


def test_a_declared_huge_body_is_refused_before_parsing(owner_client: APIClient) -> None:
    response = owner_client.generic(
        "POST", "/api/v1/uploads", "x" * 10, content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(200 * 1024 * 1024),
    )  # fmt: skip
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
