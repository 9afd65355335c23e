"""The tracking API as real clients use it (issue 15, items 4-6): the server the Procfile starts
(granian, coliseum.front), RudderStack's and Segment's Node SDKs (tests/clients, `npm ci` there), Segment's
Python SDK, and a browser page on another origin. Every event is stored exactly once, also when the first
answer is lost and the SDK sends the batch again."""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from coliseum.models import ApiKey, Tenant
from tests.ingestion.conftest import WRITE_KEY
from tests.processes import ROOT, process_env, process_stop

CLIENTS = ROOT / "tests" / "clients"
pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("raw_tables_cleanup")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_answering(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own local server
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"server did not answer: {log.read_text()[-2000:]}")


@pytest.fixture
def web_server(write_key: ApiKey, tmp_path: Path) -> Iterator[str]:
    """The Procfile's `web` line (granian, RSGI, coliseum.front:app) on a free port, this test's
    database and Redis. Yields its base URL."""
    port = free_port()
    log = tmp_path / "granian.log"
    command = [str(Path(sys.executable).parent / "granian"), "--interface", "rsgi", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1", "--no-ws", "coliseum.front:app"]
    env = process_env(WEB_BLOCKING_THREADS="2")
    with log.open("wb") as sink:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/healthz", server, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process_stop(server)


@dataclass
class LossyProxy:
    """In front of the server: forwards every request, but answers the first `lose` of them 503 after the
    server has stored their events (a lost answer), so the SDK sends the same batch again."""

    upstream: str
    lose: int = 1
    answers: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        host = self.upstream.removeprefix("http://")
        conn = http.client.HTTPConnection(host, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        self.answers.append({"status": response.status, "body": payload})
        if self.lose > 0:
            self.lose -= 1
            return 503, b'{"error": "lost on the way back"}'
        return response.status, payload


@pytest.fixture
def lossy_proxy(web_server: str) -> Iterator[LossyProxy]:
    proxy = LossyProxy(upstream=web_server)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            with lock:
                status, payload = proxy.forward("POST", self.path, headers, body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()


def node_client(script: str, host: str, count: int) -> dict[str, Any]:
    assert (CLIENTS / "node_modules").is_dir(), "run `npm ci` in tests/clients (make setup does)"
    done = subprocess.run(
        ["node", script, "--host", host, "--write-key", WRITE_KEY, "--count", str(count)],
        cwd=CLIENTS,
        capture_output=True,
        timeout=120,
        check=True,
    )
    report: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return report


def stored(tenant: Tenant) -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id, properties->>'track_id' FROM ingestion_event WHERE tenant_id = %s ORDER BY 2",
            [tenant.pk],
        )
        return list(cursor.fetchall())


def stored_elsewhere(tenant: Tenant) -> list[tuple[str, str]]:
    """stored() from another thread: Playwright's sync API runs an event loop in this one, where Django
    refuses database calls."""

    def read() -> list[tuple[str, str]]:
        from coliseum.rls import system_scope

        try:
            with system_scope("the test reads the log"):  # row-level security: a new connection sees nothing
                return stored(tenant)
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(read).result()


@pytest.mark.parametrize("script", ["rudderstack.mjs", "segment.mjs"])
def test_node_sdk_events_are_stored_once(web_server: str, write_key: ApiKey, script: str) -> None:
    # given the web server as the Procfile starts it
    # when a Node SDK sends 25 plays and flushes (RudderStack's: gzip JSON declared form-urlencoded)
    report = node_client(script, web_server, 25)
    # then the SDK saw every event delivered, and each is stored once
    assert (report["sent"], report["failed"]) == (25, 0), report
    rows = stored(write_key.tenant)
    assert len(rows) == 25
    assert len({event_id for event_id, _ in rows}) == 25


@pytest.mark.parametrize("script", ["rudderstack.mjs", "segment.mjs"])
def test_node_sdk_retry_after_a_lost_answer_is_stored_once(
    lossy_proxy: LossyProxy, write_key: ApiKey, script: str
) -> None:
    # given a connection that loses the server's first answer (the events were stored)
    # when the SDK sends 10 plays, sees a 503 and sends the batch again
    report = node_client(script, lossy_proxy.url, 10)
    # then it reports them delivered, the server saw the repeat as duplicates, and each is stored once
    assert (report["sent"], report["failed"]) == (10, 0), report
    assert len(lossy_proxy.answers) >= 2
    assert sum(json.loads(a["body"])["duplicates"] for a in lossy_proxy.answers) >= 1
    assert len(stored(write_key.tenant)) == 10


@pytest.mark.parametrize("gzip", [False, True])
def test_segment_python_sdk_retry_is_stored_once(
    lossy_proxy: LossyProxy, write_key: ApiKey, gzip: bool
) -> None:
    from segment.analytics import Client

    errors: list[str] = []
    client = Client(
        WRITE_KEY,
        host=lossy_proxy.url,
        gzip=gzip,
        max_retries=3,
        upload_size=100,
        on_error=lambda error, batch: errors.append(str(error)),
    )
    # when Segment's Python SDK sends 12 plays through the lossy connection and flushes
    for i in range(12):
        client.track(
            user_id="fan-py",
            event="player.track_played",
            properties={"trackId": f"t{i}", "artistId": "a1", "durationSeconds": 40},
        )
    client.flush()
    client.join()
    # then no error reached the SDK and each play is stored once
    assert errors == []
    assert len(stored(write_key.tenant)) == 12
    assert all(a["status"] == 200 for a in lossy_proxy.answers)


@pytest.fixture
def other_origin(tmp_path: Path) -> Iterator[str]:
    """A tenant's own site: a blank page served from another origin (another port)."""
    (tmp_path / "index.html").write_text("<!doctype html><title>A tenant's site</title>")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
def test_a_browser_on_another_origin_sends_with_fetch_and_send_beacon(
    web_server: str, other_origin: str, write_key: ApiKey
) -> None:
    from playwright.sync_api import sync_playwright

    from tests.browser import chromium_launch

    def play(i: int) -> dict[str, Any]:
        return {
            "type": "track",
            "event": "player.track_played",
            "userId": "fan-web",
            "messageId": f"web-{i}",
            "properties": {"trackId": f"t{i}", "artistId": "a1", "durationSeconds": 20},
        }

    with sync_playwright() as pw:
        browser = chromium_launch(pw)
        try:
            page = browser.new_page()
            page.goto(f"{other_origin}/index.html")
            # when the page posts JSON with the key in Authorization (a preflighted request), as the SDKs do
            status, answer = page.evaluate(
                """async ({api, key, batch}) => {
                    const response = await fetch(api + '/v1/batch', {
                        method: 'POST',
                        headers: {
                            'Content-Type': 'application/json', 'Authorization': 'Basic ' + btoa(key + ':'),
                        },
                        body: JSON.stringify({batch}),
                    });
                    return [response.status, await response.json()];
                }""",
                {"api": web_server, "key": WRITE_KEY, "batch": [play(0), play(1)]},
            )
            # and sends a beacon as a page unloads (text/plain, the key in the body)
            queued = page.evaluate(
                """({api, key, batch}) =>
                    navigator.sendBeacon(api + '/v1/batch', JSON.stringify({writeKey: key, batch}))""",
                {"api": web_server, "key": WRITE_KEY, "batch": [play(2)]},
            )
            # then the browser let the page read the answer, and all three events arrive
            assert (status, answer["accepted"]) == (200, 2)
            assert queued is True
            deadline = time.monotonic() + 10
            while len(stored_elsewhere(write_key.tenant)) < 3 and time.monotonic() < deadline:
                page.wait_for_timeout(100)  # the beacon is sent in the background
            assert [track for _, track in stored_elsewhere(write_key.tenant)] == ["t0", "t1", "t2"]
        finally:
            browser.close()
