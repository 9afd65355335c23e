"""A branded artist report: requested through the API, rendered by the worker, opened by its one-time share
link (README, Reports: a used one-time link answers 410 `link_used`)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import requests
from pypdf import PdfReader

from .clients import TenantClient, WebhookKey, eventually, minutes_ago, passport_post, play
from .stack import Stack


def test_a_report_pdf_is_rendered_and_its_one_time_link_opens_once(
    stack: Stack, owner: TenantClient, webhook_key: WebhookKey
) -> None:
    # given an artist of the catalog found as a user types it, with plays this week
    found = owner.ok("/api/v1/artists", search="metalica")["results"][0]
    assert found["name"] == "Metallica"
    sent = passport_post(
        stack.base_url,
        webhook_key,
        [
            play(f"fan-r{n}", found["external_id"], seconds=200, city="Coimbra", at=minutes_ago(30))
            for n in range(5)
        ],
    )
    assert sent.status_code == 202, sent.text

    # when an analyst asks for the last seven days as a PDF with a one-time share link
    today = datetime.now(UTC).date()
    asked = owner.post(
        "/api/v1/reports",
        {
            "kind": "artist",
            "format": "pdf",
            "artist_id": found["id"],
            "from": str(today - timedelta(days=6)),
            "to": str(today),
            "share": {"expires_in": 3600, "one_time": True},
        },
    )
    assert asked.status_code == 202, asked.text
    assert asked.json()["status"] == "queued"
    report = eventually(
        lambda: owner.ok(f"/api/v1/reports/{asked.json()['id']}"),
        lambda r: r["status"] in ("ready", "failed"),
        timeout=90,
        every=1,
    )

    # then the worker renders it, and the link opens the PDF once
    assert report["status"] == "ready", report
    assert report["share_one_time"] is True
    assert report["share_used"] is False
    opened = requests.get(report["share_url"], timeout=30)
    assert opened.status_code == 200
    assert opened.content.startswith(b"%PDF-")
    text = "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(opened.content)).pages)
    assert "Metallica" in text
    again = requests.get(report["share_url"], timeout=30)
    assert again.status_code == 410
    assert again.json()["error"]["code"] == "link_used"
    assert owner.ok(f"/api/v1/reports/{asked.json()['id']}")["share_used"] is True

    # and the signed-in download still works, while a tampered link finds nothing
    download = owner.session.get(report["download_url"], timeout=30)
    assert download.status_code == 200
    assert download.content == opened.content
    tampered = requests.get(report["share_url"][:-4] + "AAAA", timeout=30)
    assert tampered.status_code == 404
