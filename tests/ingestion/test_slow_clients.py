"""Slow clients do not stall the HTTP service (issue 16, finding 5): the Procfile's `web` line, as shipped
(2 workers, 4 threads each), with a dozen connections that dribble a request body or its headers at one byte a
second. Health checks and real events are still answered at once, and each slow connection is answered 408
(or closed) once its deadline (README, "Processes": WEB_BODY_TIMEOUT_SECONDS, WEB_HEADER_TIMEOUT_SECONDS,
10 s each) has passed."""

from __future__ import annotations

import csv
import http.client
import io
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from audit.services import audit_record
from coliseum.models import ApiKey, Role
from reports.models import Report
from reports.services.links import share_token
from reports.storage import private_storage
from tests.factories import MembershipFactory, TenantFactory
from tests.ingestion.conftest import make_event
from tests.ingestion.test_http import WEBHOOK, log_count, sign
from tests.processes import ROOT, process_env, process_stop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180), pytest.mark.usefixtures("raw_tables_cleanup")]

SLOW_CLIENTS = 12
DEADLINE_SECONDS = 10  # the documented defaults of both deadlines
ANSWER_WITHIN = 2.0


def procfile_web_line() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.removeprefix("web:").strip()
    raise AssertionError("the Procfile has no web line")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: str, path: str, timeout: float = ANSWER_WITHIN) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=timeout)
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


@pytest.fixture(scope="module")
def web(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Procfile's web line run by a shell, as honcho runs it, with its defaults for workers and threads,
    on this run's test database. Yields the port."""
    port = str(free_port())
    log = tmp_path_factory.mktemp("web") / "web.log"
    env = process_env(PORT=port, WEB_WORKERS="2", WEB_BLOCKING_THREADS="4")
    for name in ("HOST", "WEB_BODY_TIMEOUT_SECONDS", "WEB_HEADER_TIMEOUT_SECONDS"):
        env.pop(name, None)
    with log.open("wb") as sink:
        server = subprocess.Popen(
            ["sh", "-c", f"exec {procfile_web_line()}"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text()[-2000:]
            try:
                if get(port, "/healthz").status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        yield port
    finally:
        process_stop(server)


@contextmanager
def dribbling(port: str, opening: bytes, dribble: bytes) -> Iterator[list[socket.socket]]:
    """SLOW_CLIENTS connections that send `opening` at once, then `dribble` one byte a second each."""
    clients = [socket.create_connection(("127.0.0.1", int(port))) for _ in range(SLOW_CLIENTS)]
    for client in clients:
        client.sendall(opening)
    stop = threading.Event()

    def drip() -> None:
        for index in range(len(dribble)):
            if stop.wait(1.0):
                return
            for client in clients:
                try:
                    client.send(dribble[index : index + 1])
                except OSError:
                    pass  # answered and closed: the server is done with it

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        yield clients
    finally:
        stop.set()
        dripper.join(timeout=5)
        for client in clients:
            client.close()


def assert_served_meanwhile(port: str, key: ApiKey) -> None:
    """Health checks over a few seconds and one signed webhook POST, each answered within ANSWER_WITHIN."""
    for _ in range(3):
        started = time.monotonic()
        assert get(port, "/healthz").status == 200
        assert time.monotonic() - started < ANSWER_WITHIN
        time.sleep(0.5)
    body = orjson.dumps(make_event())
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=ANSWER_WITHIN)
    started = time.monotonic()
    conn.request(
        "POST",
        WEBHOOK,
        body=body,
        headers={
            "Content-Type": "application/json",
            "X-Passport-Key": key.key_id,
            "X-Passport-Signature": sign(body),
        },
    )
    response = conn.getresponse()
    answer = orjson.loads(response.read())
    conn.close()
    assert time.monotonic() - started < ANSWER_WITHIN
    assert (response.status, answer["accepted"]) == (202, 1)
    assert log_count(key.tenant) == 1


def answers_by(clients: list[socket.socket], deadline: float) -> list[bytes]:
    """What each slow connection received before `deadline` (monotonic): its first bytes, b"" if the server
    closed it, b"<nothing>" if it was still open and silent."""
    received = []
    for client in clients:
        client.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            received.append(client.recv(4096))
        except TimeoutError:
            received.append(b"<nothing>")
        except ConnectionResetError:
            received.append(b"")
    return received


def test_slow_bodies_do_not_stall_the_service_and_are_cut_off_at_the_deadline(
    web: str, webhook_key: ApiKey
) -> None:
    # given a dozen connections that announce a 1000-byte body and send it a byte a second
    headers = (
        f"POST {WEBHOOK} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    ).encode()
    opened = time.monotonic()
    with dribbling(web, headers, b"x" * 1000) as clients:
        time.sleep(1.5)  # the server has taken them all up
        # when the service is used meanwhile, then it answers at once
        assert_served_meanwhile(web, webhook_key)
        # and every slow connection is answered 408 (or closed) once the body deadline has passed
        received = answers_by(clients, opened + DEADLINE_SECONDS + 3)
    assert all(r == b"" or r.startswith(b"HTTP/1.1 408") for r in received), received
    assert any(r.startswith(b"HTTP/1.1 408") for r in received), received


def test_slow_headers_do_not_stall_the_service_and_are_cut_off_at_the_deadline(
    web: str, webhook_key: ApiKey
) -> None:
    # given a dozen connections that send their request headers a byte a second
    opened = time.monotonic()
    with dribbling(web, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", b"y" * 1000) as clients:
        time.sleep(1.5)
        # when the service is used meanwhile, then it answers at once
        assert_served_meanwhile(web, webhook_key)
        # and every slow connection is answered 408 (or closed) once the header deadline has passed
        received = answers_by(clients, opened + DEADLINE_SECONDS + 3)
    assert all(r == b"" or r.startswith(b"HTTP/1.1 408") for r in received), received


def test_a_body_larger_than_any_endpoint_accepts_is_refused_before_it_is_sent(web: str) -> None:
    # given a client that announces a 50 MB batch and sends only its headers
    with socket.create_connection(("127.0.0.1", int(web)), timeout=ANSWER_WITHIN) as client:
        client.sendall(
            b"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 50000000\r\n\r\n"
        )
        # then it is answered 413 at once, in the API's error envelope
        answer = b""
        while b"}}" not in answer:
            chunk = client.recv(4096)
            assert chunk, answer
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert orjson.loads(body)["error"]["code"] == "payload_too_large"


def test_downloads_stream_whole_through_the_front(web: str, tmp_path: Path) -> None:
    # given an Enterprise tenant's admin with 3,000 audit entries (a CSV of several hundred KB, streamed by
    # the view from a database cursor), and a shared 1.5 MB report file
    tenant = TenantFactory.create(plan="enterprise")
    admin = MembershipFactory.create(tenant=tenant, role=Role.ADMIN).user
    for index in range(3000):
        audit_record(action="test.row", actor="system", tenant=tenant, details={"n": index})
    content = os.urandom(1536 * 1024)
    report = Report.objects.create(
        tenant=tenant,
        kind="tenant",
        format="json",
        params={},
        status="ready",
        file_name=private_storage().save(f"reports/front-{uuid.uuid4().hex}.json", ContentFile(content)),
        share_expires_at=(timezone.now() + timedelta(hours=1)).replace(microsecond=0),
    )
    token = share_token(report=report)
    conn = http.client.HTTPConnection("127.0.0.1", int(web), timeout=30)
    conn.request(
        "POST",
        "/api/v1/auth/token",
        body=orjson.dumps({"username": admin.username, "password": "correct-horse-battery"}),
        headers={"Content-Type": "application/json"},
    )
    login = conn.getresponse()
    access = orjson.loads(login.read())["access"]

    # when the admin exports the audit log and anyone opens the share link
    conn.request(
        "GET",
        "/api/v1/audit-logs/export.csv?action=test.row",
        headers={"Authorization": f"Bearer {access}", "X-Tenant": tenant.slug},
    )
    export = conn.getresponse()
    rows = list(csv.reader(io.StringIO(export.read().decode())))
    conn.request("GET", f"/r/{token}")
    download = conn.getresponse()
    downloaded = download.read()
    conn.request("HEAD", f"/r/{token}")  # a file response with no body to send
    head = conn.getresponse()
    head.read()
    conn.close()

    # then both arrive whole: every entry once, the file byte for byte
    assert export.status == 200 and export.getheader("Content-Type", "").startswith("text/csv")
    assert sorted(orjson.loads(r[-1])["n"] for r in rows[1:]) == list(range(3000))
    assert download.status == 200
    assert downloaded == content
    assert head.status == 200 and head.getheader("Content-Length") == str(len(content))
    assert get(web, "/healthz").status == 200
