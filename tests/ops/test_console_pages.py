"""The operator console as a person sees it, in chromium at 1920x1080 and 390x844: full width, the 1 h / 6 h /
24 h ranges, readable axes, alert thresholds, queue depth and live workers, dj-stripe's models below ours,
and a favicon. Screenshots land in tests/artifacts/ (gitignored) for a human to look at."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from pytest_django.live_server_helper import LiveServer

from coliseum.ops.health import live_workers
from coliseum.ops.history import history_record
from coliseum.ops.requests import current_minute
from tests.browser import chromium_launch
from tests.factories import UserFactory
from tests.processes import celery_worker

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
HISTORY_MINUTES = 3 * 60
SIZES = [(1920, 1080), (390, 844)]


def _history() -> None:
    """Three hours of per-minute points, as the beat job records them."""
    minute = current_minute(time.time())
    for i in range(HISTORY_MINUTES):
        history_record(
            point={
                "t": (minute - HISTORY_MINUTES + i) * 60,
                "events_per_s": 40.0 + (i % 30),
                "lag_s": 0.5 + (i % 7) / 10,
                "requests": 120,
                "error_rate": 0.004 * (i % 5),
                "p95_s": 0.25,
                "queue_depth": (i * 7) % 45,
                "workers": 1 if i % 60 else 0,
            }
        )


def _wait_for_a_live_worker() -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if live_workers():
            return
        time.sleep(0.5)
    raise AssertionError("the Celery worker never answered a ping")


def _check_console(page: Any, base: str, width: int, height: int) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{base}/admin/")
    page.wait_for_selector("#ops-dashboard svg[data-chart][data-rendered] >> nth=5", timeout=20_000)
    page.wait_for_selector("[data-field=workers]:text-is('1')", timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / f"console_{width}x{height}.png"), full_page=True)

    # full width, and nothing wider than the screen
    box = page.locator("#ops-dashboard").bounding_box()
    assert box["width"] >= 0.9 * width, box
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    # three range buttons; 1 h is the default and every chart spans it
    buttons = page.locator(".ops-range button")
    assert buttons.all_text_contents() == ["1 h", "6 h", "24 h"]
    spans = "els => els.map(e => [e.dataset.spanSeconds, Number(e.dataset.rendered)])"
    one_hour = page.eval_on_selector_all("svg[data-chart=events_per_s]", spans)
    assert one_hour[0][0] == "3600" and 55 <= one_hour[0][1] <= 61

    # readable axes: clock times along x, values with their unit along y, drawn at the size shown
    lag = page.locator("svg[data-chart=lag_s]")
    x_labels = lag.locator("text.ops-xtick").all_text_contents()
    assert len([t for t in x_labels if re.fullmatch(r"\d\d:\d\d", t)]) >= 2, x_labels
    assert "now" in x_labels
    y_labels = lag.locator("text.ops-ytick").all_text_contents()
    assert len(y_labels) >= 3 and all(t.endswith(" s") for t in y_labels), y_labels
    view_width = float(lag.get_attribute("viewBox").split()[2])
    assert abs(view_width - lag.bounding_box()["width"]) <= 2  # 1:1, so 12 px text stays 12 px
    font_px = page.eval_on_selector(
        "svg[data-chart=lag_s] text.ops-ytick", "e => getComputedStyle(e).fontSize"
    )
    assert float(font_px.removesuffix("px")) >= 11

    # each alert rule's threshold is drawn on its chart
    for chart, label in [
        ("lag_s", "alert at 60 s"),
        ("error_rate", "alert at 2%"),
        ("p95_s", "alert at 30 s"),
        ("queue_depth", "alert at 1000"),
    ]:
        svg = page.locator(f"svg[data-chart={chart}]")
        assert svg.locator("line.ops-threshold").count() == 1, chart
        assert svg.locator("text.ops-threshold-label").text_content().startswith(label)
    # the error-rate threshold is on the scale: above the data (smaller y), below the top
    y_line = float(page.locator("svg[data-chart=error_rate] line.ops-threshold").get_attribute("y1"))
    assert 16 < y_line < 190 - 26

    # queue depth over time and the live worker count
    assert page.locator("svg[data-chart=queue_depth] path.ops-line").count() == 1
    assert page.locator("svg[data-chart=workers] path.ops-line").count() == 1
    assert page.text_content("[data-field=workers]") == "1"

    # the range buttons change every chart's span
    page.click(".ops-range button:text-is('6 h')")
    six = page.eval_on_selector_all("svg[data-chart]", spans)
    assert {s for s, _ in six} == {"21600"}
    assert page.get_attribute(".ops-range button:text-is('6 h')", "aria-pressed") == "true"
    assert 175 <= page.eval_on_selector_all("svg[data-chart=events_per_s]", spans)[0][1] <= HISTORY_MINUTES
    page.click(".ops-range button:text-is('24 h')")
    assert {s for s, _ in page.eval_on_selector_all("svg[data-chart]", spans)} == {"86400"}
    page.click(".ops-range button:text-is('1 h')")

    # dj-stripe's models come after all of ours
    labels = page.eval_on_selector_all(
        "#content-main .module[class*='app-']",
        "els => els.map(e => [...e.classList].find(c => c.startsWith('app-')).slice(4))",
    )
    assert labels[-1] == "djstripe", labels
    ours = {"coliseum", "ingestion", "leaderboards", "reports", "billing", "audit"}
    assert ours & set(labels) and max(labels.index(a) for a in ours & set(labels)) < labels.index("auth")

    # the favicon resolves to an image
    for href in page.eval_on_selector_all("link[rel=icon]", "els => els.map(e => e.href)"):
        response = page.request.get(href)
        assert response.status == 200 and response.headers["content-type"].startswith("image/"), href


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_console_reads_well_on_a_desktop_and_a_phone(live_server: LiveServer, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    # given an operator, three hours of history and one live Celery worker
    UserFactory.create(username="console-operator", is_staff=True, is_superuser=True)
    _history()
    ARTIFACTS.mkdir(exist_ok=True)
    with celery_worker("celery", tmp_path / "worker.log"), sync_playwright() as pw:
        _wait_for_a_live_worker()
        browser = chromium_launch(pw)
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", "console-operator")
            page.fill("#id_password", "correct-horse-battery")
            page.click("input[type=submit]")
            page.wait_for_selector("#ops-dashboard")
            # when they open the console at each size, then it reads as it should
            for width, height in SIZES:
                _check_console(page, live_server.url, width, height)
        finally:
            browser.close()
