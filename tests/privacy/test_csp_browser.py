"""The policy in a real browser: the landing page, the admin login and the operator console (admin index with
its charts) run with zero Content-Security-Policy violations."""

from __future__ import annotations

import pytest
from pytest_django.live_server_helper import LiveServer

from tests.browser import chromium_launch
from tests.factories import UserFactory


@pytest.mark.browser
@pytest.mark.timeout(120)
@pytest.mark.django_db(transaction=True)
def test_pages_run_without_csp_violations(live_server: LiveServer) -> None:
    from playwright.sync_api import sync_playwright

    UserFactory.create(username="csp-operator", is_staff=True, is_superuser=True)
    with sync_playwright() as pw:
        browser = chromium_launch(pw)
        try:
            page = browser.new_page()
            violations: list[str] = []
            page.on(
                "console",
                lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
            )
            # given the landing page and the admin login
            page.goto(f"{live_server.url}/")
            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            # when the operator signs in and the console draws its charts (scripts from /static/ only)
            page.fill("#id_username", "csp-operator")
            page.fill("#id_password", "correct-horse-battery")
            page.click("input[type=submit]")
            page.wait_for_selector("#ops-dashboard svg[data-chart][data-rendered] >> nth=3", timeout=30_000)
            page.goto(f"{live_server.url}/admin/privacy/retentionpolicy/add/")
            page.wait_for_selector("#retentionpolicy_form")
            # then the browser reported no violation
            assert violations == []
        finally:
            browser.close()
