"""The jumbotron as people see it, in Chromium at a venue screen's size and a phone's: what the title says,
how numbers read, that the whole top 10 (or the empty state) is on the screen, and that a member signs in
from the landing page and the board stays live on its own, without a reload, across a server restart.

Screenshots go to JUMBOTRON_SCREENSHOTS (a directory) when set, else to the test's tmp dir."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from coliseum.models import Tenant
from coliseum.rls import system_scope
from leaderboards.views import share_link_sign
from tests.browser import chromium_launch
from tests.factories import ArtistFactory, MembershipFactory, TenantFactory

from .conftest import _free_port, daphne, event, ingest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

TEXT_BOX = """(id) => {
  const range = document.createRange();
  range.selectNodeContents(document.getElementById(id));
  const b = range.getBoundingClientRect();
  return {x: b.x, y: b.y, width: b.width, height: b.height};
}"""
SIZES = {"screen": (1920, 1080), "phone": (390, 844)}
NAMES = [
    "Ana Moura",
    "Bea Brava",
    "Carla Cruz",
    "Dani Duarte",
    "Eva Estrela",
    "Filipa Fado",
    "Gil Gaspar",
    "Helena Horizonte e a Orquestra Sinfónica do Porto",
    "Ines Ilha",
    "Joana Jazz",
    "Kiko Kuduro",
]


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("JUMBOTRON_SCREENSHOTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = chromium_launch(p)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(autouse=True)
def _sync_orm_next_to_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    # Playwright's sync API runs an event loop in this thread; the ORM calls here are plain sync code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _inside(box: dict[str, float] | None, width: int, height: int, top: float = 0) -> bool:
    return (
        box is not None
        and box["x"] >= 0
        and box["y"] >= top - 0.5
        and box["x"] + box["width"] <= width + 0.5
        and box["y"] + box["height"] <= height + 0.5
    )


def _share(tenant: Tenant, **board: Any) -> str:
    return quote(share_link_sign(tenant=tenant, board=board, expires_at=int(time.time()) + 3600))


def _world() -> Tenant:
    """Eleven artists: money earned (USD, in cents) and listening time for each, over the last hour."""
    tenant = TenantFactory.create(plan="enterprise")
    at = datetime.now(UTC) - timedelta(minutes=20)
    events = []
    for i, name in enumerate(NAMES):
        ArtistFactory.create(tenant=tenant, external_id=f"a{i}", name=name)
        fan, artist = f"fan{i}", f"a{i}"
        events.append(event("earn", at=at, user=fan, artist_id=artist, amount_minor=350_000 - 30_000 * i))
        events.append(event("play", at=at, user=fan, artist_id=artist, duration_seconds=3900 - 300 * i))
    ingest(tenant, events)
    return tenant


@pytest.mark.timeout(240)
@pytest.mark.parametrize("size", SIZES)
def test_the_jumbotron_reads_well_on_a_venue_screen_and_a_phone(
    size: str, live_server: Any, settings: Any, browser: Any, shots: Path
) -> None:
    from playwright.sync_api import expect

    width, height = SIZES[size]
    with system_scope("test setup"):  # Playwright's greenlet has its own database connection
        tenant = _world()
        empty_tenant = TenantFactory.create(plan="enterprise")
    with daphne() as ws_base:
        settings.WEBSOCKET_BASE_URL = ws_base
        context = browser.new_context(
            viewport={"width": width, "height": height}, locale="en-US", reduced_motion="reduce"
        )
        page = context.new_page()

        # money: the title says what is ranked; amounts in dollars, from cents; all ten rows on the screen
        money = _share(tenant, metric="money_earned", currency="USD")
        page.goto(f"{live_server.url}/jumbotron/?share={money}")
        expect(page.locator("#jt-status")).to_have_attribute("data-state", "live", timeout=30_000)
        expect(page.get_by_test_id("title")).to_have_text("Money earned, last 24 hours")
        rows = page.locator("li.jt-row")
        expect(rows).to_have_count(10)
        expect(rows.filter(has_text="Ana Moura").locator(".jt-score")).to_have_text("$3,500.00")
        expect(rows.filter(has_text="Joana Jazz").locator(".jt-score")).to_have_text("$800.00")
        expect(page.get_by_test_id("updated")).to_contain_text("Updated ")
        header = page.locator(".jt-header").bounding_box()
        assert header is not None
        for i in range(10):
            row = page.locator(f'li.jt-row[data-rank="{i + 1}"]')
            assert _inside(row.bounding_box(), width, height, top=header["y"] + header["height"]), i + 1
            assert _inside(row.locator(".jt-score").bounding_box(), width, height), i + 1
        page.screenshot(path=shots / f"jumbotron-money-{size}.png")

        # listening time in hours and minutes
        page.goto(f"{live_server.url}/jumbotron/?share={_share(tenant, metric='listen_seconds')}")
        expect(page.get_by_test_id("title")).to_have_text("Listen time, last 24 hours")
        expect(page.locator('li.jt-row[data-rank="1"] .jt-score')).to_have_text("1 h 05 min")  # 3,900 s
        expect(page.locator('li.jt-row[data-rank="10"] .jt-score')).to_have_text("20 min")  # 1,200 s
        page.screenshot(path=shots / f"jumbotron-listen-{size}.png")

        # nothing ranked yet: the empty state is whole, on the screen
        follows = _share(empty_tenant, metric="follows", window="7d")
        page.goto(f"{live_server.url}/jumbotron/?share={follows}")
        expect(page.get_by_test_id("title")).to_have_text("Follows, last 7 days")
        empty = page.locator("#jt-empty")
        expect(empty).to_be_visible()
        expect(empty).to_contain_text("Nothing ranked yet")
        assert _inside(empty.bounding_box(), width, height)
        text_box = page.evaluate(TEXT_BOX, "jt-empty")  # the words themselves, not only their box
        assert _inside(text_box, width, height) and text_box["height"] > 0
        page.screenshot(path=shots / f"jumbotron-empty-{size}.png")
        context.close()


@pytest.mark.timeout(300)
def test_a_member_signs_in_from_the_landing_page_and_the_board_stays_live_across_a_restart(
    live_server: Any, settings: Any, browser: Any, shots: Path
) -> None:
    from playwright.sync_api import expect

    # given a member (not staff) of an Enterprise tenant, and tickets that expire after 3 s
    at = datetime.now(UTC) - timedelta(minutes=5)
    with system_scope("test setup"):  # Playwright's greenlet has its own database connection
        membership = MembershipFactory.create(tenant=TenantFactory.create(plan="enterprise"), role="viewer")
        tenant = membership.tenant
        ArtistFactory.create(tenant=tenant, external_id="ana", name="Ana Moura")
        bea = ArtistFactory.create(tenant=tenant, external_id="bea", name="Bea Brava")
        ingest(tenant, [event("play", at=at, user=f"fan{i}", artist_id="ana") for i in range(2)])
    settings.LEADERBOARD_TICKET_SECONDS = 3
    port = _free_port()
    settings.WEBSOCKET_BASE_URL = f"ws://127.0.0.1:{port}"
    env = {"LEADERBOARD_TICKET_SECONDS": "3", "LEADERBOARD_PUSH_INTERVAL": "0.3"}
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    page = context.new_page()

    with daphne(port=port, **env):
        # when they sign in from the landing page with their own account
        page.goto(f"{live_server.url}/")
        page.get_by_role("link", name="sign in with your Coliseum account").click()
        page.get_by_label("Username").fill(membership.user.username)
        page.get_by_label("Password").fill("correct-horse-battery")
        page.get_by_role("button", name="Sign in").click()

        # then their tenant's jumbotron opens, live
        expect(page.get_by_test_id("title")).to_have_text("Plays, last 24 hours")
        expect(page.locator("#jt-status")).to_have_attribute("data-state", "live", timeout=30_000)
        expect(page.locator("li.jt-row")).to_have_count(1)
        page.evaluate("() => { window.sameDocument = true; }")
        first_update = page.get_by_test_id("updated").get_attribute("data-at")
        page.wait_for_timeout(4000)  # the page's ticket has expired

    # when the WebSocket server restarts (every connection drops) and comes back on the same port
    expect(page.locator("#jt-status")).to_have_attribute("data-state", "down", timeout=15_000)
    with daphne(port=port, **env):
        # then the page renews its ticket and reconnects by itself; the unchanged board is not "updated"
        expect(page.locator("#jt-status")).to_have_attribute("data-state", "live", timeout=60_000)
        assert page.get_by_test_id("updated").get_attribute("data-at") == first_update

        # and an event reaches the same document, no reload
        with system_scope("test setup"):
            ingest(tenant, [event("play", at=at, user=f"fan{i}", artist_id="bea") for i in range(3)])
        expect(page.locator(f'li.jt-row[data-artist-id="{bea.pk}"]')).to_have_attribute(
            "data-rank", "1", timeout=30_000
        )
        expect(page.get_by_test_id("updated")).not_to_have_attribute("data-at", first_update or "")
        assert page.evaluate("() => window.sameDocument") is True
        page.screenshot(path=shots / "jumbotron-member-phone.png")
    context.close()
