"""The admin index is the operator console: a staff user logs in and sees the charts drawn."""

from __future__ import annotations

import time

import pytest
from pytest_django.live_server_helper import LiveServer

from coliseum.ops.history import history_record
from coliseum.ops.requests import current_minute
from tests.browser import chromium_launch
from tests.factories import UserFactory


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_staff_login_shows_the_dashboard_with_its_charts(live_server: LiveServer) -> None:
    from playwright.sync_api import sync_playwright

    # given a staff operator and an hour of history (p95 unknown in the first 10 minutes)
    UserFactory.create(username="ops-operator", is_staff=True, is_superuser=True)
    minute = current_minute(time.time())
    for i in range(60):
        history_record(
            point={
                "t": (minute - 60 + i) * 60,
                "events_per_s": float(i),
                "lag_s": 1.5,
                "requests": 100,
                "error_rate": 0.01 * (i % 3),
                "p95_s": None if i < 10 else 0.2,
            }
        )

    with sync_playwright() as pw:
        browser = chromium_launch(pw)
        try:
            page = browser.new_page()
            # when the operator logs into the admin
            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", "ops-operator")
            page.fill("#id_password", "correct-horse-battery")
            page.click("input[type=submit]")
            page.wait_for_selector("#ops-dashboard")
            # (a selector wait, not wait_for_function: the page's CSP forbids the eval that one needs)
            page.wait_for_selector("#ops-dashboard svg[data-chart][data-rendered] >> nth=5", timeout=15_000)
            page.click(".ops-range button:text-is('24 h')")
            # then six charts are drawn from the history (the last two: no queue or worker figures recorded)
            charts = page.eval_on_selector_all(
                "#ops-dashboard svg[data-chart]",
                "els => els.map(e => [e.dataset.chart, e.dataset.rendered,"
                " e.querySelectorAll('path.ops-line').length])",
            )
            assert charts == [
                ["events_per_s", "60", 1],
                ["lag_s", "60", 1],
                ["error_rate", "60", 1],
                ["p95_s", "50", 1],
                ["queue_depth", "0", 0],
                ["workers", "0", 0],
            ]
            assert page.text_content("[data-field=status]") in ("ok", "degraded")
            assert page.text_content("[data-field=database]") == "up"
            assert page.text_content("[data-field=redis]") == "up"
            # and the usual admin index still follows the dashboard
            assert page.locator("#content-main").count() == 1
        finally:
            browser.close()
