"""The API documentation pages render in a real browser with no host but ours reachable (issue 15, item 8):
Swagger UI and ReDoc come from drf-spectacular-sidecar's static files, under the site's CSP."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from pytest_django.live_server_helper import LiveServer

from tests.browser import chromium_launch


@pytest.mark.browser
@pytest.mark.timeout(120)
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/api/docs/", ".opblock-summary-path[data-path='/v1/batch']"),
        ("/api/redoc/", "h2:has-text('Segment-compatible /v1/batch')"),
    ],
)
def test_api_docs_render_offline(live_server: LiveServer, path: str, operation: str) -> None:
    from playwright.sync_api import sync_playwright

    ours = urlsplit(live_server.url).netloc
    elsewhere: list[str] = []
    violations: list[str] = []
    with sync_playwright() as pw:
        browser = chromium_launch(pw)
        try:
            page = browser.new_page()

            # given a browser that can reach no host but the server's own (as off the internet)
            def only_ours(route: object) -> None:
                url = route.request.url  # type: ignore[attr-defined]
                if urlsplit(url).netloc == ours or url.startswith(("data:", "blob:")):
                    route.continue_()  # type: ignore[attr-defined]
                else:
                    elsewhere.append(url)
                    route.abort()  # type: ignore[attr-defined]

            page.route("**/*", only_ours)
            page.on(
                "console",
                lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
            )
            # when the documentation page opens
            page.goto(f"{live_server.url}{path}")
            # then the tracking API's operations are drawn, nothing was fetched elsewhere, the CSP held
            page.wait_for_selector(operation, timeout=30_000)
            assert elsewhere == []
            # (ReDoc's footer links Redocly's logo from their CDN: the policy stopping it is the point.)
            assert [v for v in violations if "https://cdn.redoc.ly/" not in v] == []
        finally:
            browser.close()
