"""The operator console in Chromium: the demo operator signs in at /admin/ with the credentials `make run`
prints and sees the console's health tiles and charts drawn from the running stack."""

from __future__ import annotations

from playwright.sync_api import sync_playwright

from tests.browser import chromium_launch

from .conftest import DEMO_OPERATOR, DEMO_PASSWORD
from .stack import Stack


def test_the_operator_signs_in_and_sees_the_console(stack: Stack) -> None:
    with sync_playwright() as pw:
        browser = chromium_launch(pw)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            # given the operator at the admin's sign-in page
            page.goto(f"{stack.base_url}/admin/login/?next=/admin/")
            # when they sign in
            page.fill("#id_username", DEMO_OPERATOR)
            page.fill("#id_password", DEMO_PASSWORD)
            page.click("input[type=submit]")
            # then the console draws its charts from the live stack (selector waits: the CSP forbids eval)
            page.wait_for_selector("#ops-dashboard svg[data-chart][data-rendered]", timeout=30_000)
            page.wait_for_selector("#ops-dashboard [data-field=database]:text('up')", timeout=30_000)
            charts = page.eval_on_selector_all(
                "#ops-dashboard svg[data-chart]", "els => els.map(e => e.getAttribute('data-rendered'))"
            )
            assert len(charts) >= 4
            assert None not in charts
            assert page.text_content("[data-field=database]") == "up"
            assert page.text_content("[data-field=redis]") == "up"
            assert page.text_content("[data-field=status]") in ("ok", "degraded")
            assert errors == []
            # and the admin's own index follows
            assert page.locator("#content-main").count() == 1
        finally:
            browser.close()
