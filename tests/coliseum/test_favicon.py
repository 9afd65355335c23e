"""Every page names the Coliseum icon, and /favicon.ico answers for clients that ask without a link."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _icon_links(html: str) -> list[str]:
    return re.findall(r'<link rel="icon" href="([^"]+)"', html)


def test_favicon_ico_is_an_image_browsers_may_cache() -> None:
    response = Client().get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert body[:4] == b"\x00\x00\x01\x00"  # the ICO header
    assert "max-age=86400" in response["Cache-Control"]


@pytest.mark.parametrize(
    ("path", "signed_in"),
    [
        ("/", False),
        ("/admin/login/", False),
        ("/admin/", True),
        ("/api/docs/", False),
        ("/api/redoc/", False),
    ],
)
def test_pages_link_the_icon_and_the_link_resolves(path: str, signed_in: bool) -> None:
    client = Client()
    if signed_in:
        client.force_login(UserFactory.create(is_staff=True, is_superuser=True))

    html = client.get(path).content.decode()

    links = _icon_links(html)
    assert "/static/coliseum/favicon.svg" in links and "/favicon.ico" in links
    svg = client.get("/static/coliseum/favicon.svg")
    assert svg.status_code == 200 and svg["Content-Type"].startswith("image/svg+xml")
