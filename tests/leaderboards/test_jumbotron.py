"""The jumbotron page: who may open it, and (browser test) that it changes live as events are ingested."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from coliseum.models import Membership
from coliseum.rls import system_scope
from leaderboards.views import share_link_sign
from tests.browser import chromium_launch
from tests.factories import ArtistFactory, MembershipFactory, ShowFactory, TenantFactory

from .conftest import daphne, event, ingest

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def _config(html: str) -> dict[str, Any]:
    match = re.search(r'<script id="jumbotron-config" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the page embeds its configuration"
    return dict(json.loads(match.group(1)))


def _logged_in(plan: str = "enterprise") -> tuple[Client, Membership]:
    membership = MembershipFactory.create(tenant=TenantFactory.create(plan=plan))
    client = Client()
    client.force_login(membership.user)
    return client, membership


def test_a_member_sees_the_current_top_and_gets_a_websocket_ticket() -> None:
    client, membership = _logged_in()
    ArtistFactory.create(tenant=membership.tenant, external_id="ana", name="Ana")
    ingest(
        membership.tenant,
        [event("play", at=datetime.now(UTC) - timedelta(minutes=1), user="u", artist_id="ana")],
    )

    response = client.get("/jumbotron/", {"metric": "plays", "window": "24h"})

    assert response.status_code == 200
    config = _config(response.content.decode())
    assert [e["artist_name"] for e in config["entries"]] == ["Ana"]
    assert config["ws_url"].endswith("/ws/leaderboards/") and config["ticket"]
    assert response["Cache-Control"] == "no-store"


def test_anonymous_visitors_are_sent_to_log_in() -> None:
    response = Client().get("/jumbotron/")

    assert response.status_code == 302 and response["Location"].startswith("/jumbotron/sign-in?next=")


def test_tenants_without_the_live_feed_are_refused() -> None:
    client, _ = _logged_in(plan="pro")

    response = client.get("/jumbotron/")

    assert response.status_code == 403
    assert "Enterprise" in response.content.decode()


def test_a_share_link_opens_the_board_it_names_until_it_expires() -> None:
    tenant = TenantFactory.create(plan="enterprise")
    show = ShowFactory.create(tenant=tenant, title="Battle of the Bands")
    board = {"metric": "votes", "window": "24h", "show_id": show.pk}
    valid = share_link_sign(tenant=tenant, board=board, expires_at=int(time.time()) + 60)
    expired = share_link_sign(tenant=tenant, board=board, expires_at=int(time.time()) - 1)

    opened = Client().get("/jumbotron/", {"share": valid, "metric": "plays"})  # the link's board wins
    refused = Client().get("/jumbotron/", {"share": expired})
    forged = Client().get("/jumbotron/", {"share": valid[:-3] + "abc"})

    assert opened.status_code == 200
    assert _config(opened.content.decode())["board"]["metric"] == "votes"
    assert "Battle of the Bands" in opened.content.decode()
    assert refused.status_code == 403 and forged.status_code == 403


def test_standings_for_the_page_need_its_ticket_and_stay_in_its_tenant() -> None:
    tenant = TenantFactory.create(plan="enterprise")
    show = ShowFactory.create(tenant=tenant)
    other_show = ShowFactory.create(tenant=TenantFactory.create(plan="enterprise"))
    sibling_show = ShowFactory.create(tenant=tenant)  # same tenant, but not the shared board's show
    link = share_link_sign(tenant=tenant, board={"metric": "votes", "show_id": show.pk}, expires_at=2**40)
    config = _config(Client().get("/jumbotron/", {"share": link}).content.decode())

    ok = Client().get(f"{config['standings_url']}&{urlencode({'ticket': config['ticket']})}")
    other = Client().get(
        "/jumbotron/standings", {"ticket": str(config["ticket"]), "show_id": str(other_show.pk)}
    )
    forged = Client().get("/jumbotron/standings", {"ticket": "x", "show_id": str(show.pk)})
    sibling = Client().get(
        "/jumbotron/standings", {"ticket": str(config["ticket"]), "show_id": str(sibling_show.pk)}
    )

    assert ok.status_code == 200 and ok.json()["show_id"] == show.pk
    assert other.status_code == 404 and sibling.status_code == 404
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "not_authenticated"


# --- the browser test -------------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_jumbotron_changes_live_as_votes_are_ingested(
    live_server: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import expect, sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls below are plain sync code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    tenant = TenantFactory.create(plan="enterprise")
    show = ShowFactory.create(tenant=tenant, external_id="battle", title="Battle Night")
    ana = ArtistFactory.create(tenant=tenant, external_id="ana", name="Ana Moura")
    bea = ArtistFactory.create(tenant=tenant, external_id="bea", name="Bea Brava")
    now = datetime.now(UTC) - timedelta(minutes=10)

    def votes(artist: str, fans: range, round_: int = 1) -> list[dict[str, Any]]:
        return [
            event("vote", at=now, user=f"fan{i}", artist_id=artist, show_id="battle", round=round_)
            for i in fans
        ]

    ingest(tenant, votes("ana", range(0, 2)))
    link = share_link_sign(
        tenant=tenant, board={"metric": "votes", "window": "24h", "show_id": show.pk}, expires_at=2**40
    )

    with daphne(LEADERBOARD_PUSH_INTERVAL="0.3") as ws_base, sync_playwright() as p:
        settings.WEBSOCKET_BASE_URL = ws_base
        browser = chromium_launch(p)
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/jumbotron/?share={link}")
            expect(page.locator("#jt-status")).to_have_attribute("data-state", "live", timeout=30_000)
            expect(page.locator(f'li.jt-row[data-artist-id="{ana.pk}"]')).to_have_attribute("data-rank", "1")
            expect(page.locator(f'li.jt-row[data-artist-id="{bea.pk}"]')).to_have_count(0)

            # when Bea gets three votes (fans 10-12), without any reload (Playwright's greenlet has its own
            # context, hence its own database connection, outside the autouse system scope)
            with system_scope("test setup"):
                ingest(tenant, votes("bea", range(10, 13)))

            # then Bea appears on top, Ana moves down, and the round standings follow
            expect(page.locator(f'li.jt-row[data-artist-id="{bea.pk}"]')).to_have_attribute(
                "data-rank", "1", timeout=30_000
            )
            expect(page.locator(f'li.jt-row[data-artist-id="{ana.pk}"]')).to_have_attribute("data-rank", "2")
            expect(page.locator(f'li.jt-row[data-artist-id="{bea.pk}"] .jt-score')).to_have_text("3")
            expect(page.locator(".jt-round[data-round='1'] h3")).to_contain_text("5 votes", timeout=30_000)
            if os.environ.get("JUMBOTRON_SCREENSHOT"):  # to look at the page: JUMBOTRON_SCREENSHOT=/tmp/j.png
                page.wait_for_timeout(1000)
                page.screenshot(path=os.environ["JUMBOTRON_SCREENSHOT"])
        finally:
            browser.close()


# --- the ticket the page renews, and the member's own sign-in ----------------------------------------------


def test_an_open_page_renews_its_ticket_with_its_own_credentials() -> None:
    from leaderboards.consumers import ticket_read

    client, membership = _logged_in()
    page = _config(client.get("/jumbotron/", {"metric": "votes", "window": "7d"}).content.decode())
    tenant = membership.tenant
    link = share_link_sign(tenant=tenant, board={"metric": "plays"}, expires_at=int(time.time()) + 60)
    expired = share_link_sign(tenant=tenant, board={"metric": "plays"}, expires_at=int(time.time()) - 1)

    renewed = client.get(page["ticket_url"])
    signed_out = Client().get(page["ticket_url"])
    shared = Client().get("/jumbotron/ticket", {"share": link})
    share_gone = Client().get("/jumbotron/ticket", {"share": expired})

    assert renewed.status_code == 200 and renewed.json()["expires_in"] == page["ticket_seconds"]
    ticket = ticket_read(renewed.json()["ticket"])
    assert ticket is not None and ticket.tenant == tenant and ticket.only_board is None
    assert signed_out.status_code == 401 and signed_out.json()["error"]["code"] == "not_authenticated"
    shared_ticket = ticket_read(shared.json()["ticket"])
    assert shared_ticket is not None and shared_ticket.only_board is not None
    assert share_gone.status_code == 403 and share_gone.json()["error"]["code"] == "share_expired"


def test_a_member_who_is_not_staff_signs_in_and_opens_the_jumbotron() -> None:
    membership = MembershipFactory.create(tenant=TenantFactory.create(plan="enterprise"), role="viewer")
    assert not membership.user.is_staff
    client = Client()
    landing = client.get("/").content.decode()

    wrong = client.post(
        "/jumbotron/sign-in",
        {"username": membership.user.username, "password": "nope", "next": "/jumbotron/"},
    )
    signed_in = client.post(
        "/jumbotron/sign-in",
        {"username": membership.user.username, "password": "correct-horse-battery", "next": "/jumbotron/"},
    )
    page = client.get(signed_in["Location"])

    assert 'href="/jumbotron/sign-in?next=/jumbotron/"' in landing
    assert wrong.status_code == 401 and "Wrong username or password." in wrong.content.decode()
    assert signed_in.status_code == 302 and signed_in["Location"] == "/jumbotron/"
    assert page.status_code == 200 and "Plays, last 24 hours" in page.content.decode()


def test_sign_in_asks_an_account_with_two_factor_sign_in_for_its_code() -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    membership = MembershipFactory.create(tenant=TenantFactory.create(plan="enterprise"), role="viewer")
    TOTPDevice.objects.create(user=membership.user, name="phone", confirmed=True)
    client = Client()

    answer = client.post(
        "/jumbotron/sign-in", {"username": membership.user.username, "password": "correct-horse-battery"}
    )

    assert answer.status_code == 401 and "two-factor" in answer.content.decode()
    assert client.get("/jumbotron/").status_code == 302  # still signed out
