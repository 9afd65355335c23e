"""The raw ingestion POSTs take a lean middleware path (coliseum.ops.middleware): same answers, request id and
metrics kept, no session/CSRF/auth work, host check and security headers still applied."""

from __future__ import annotations

import base64
import gc
import io
import sys
from typing import Any

import orjson
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client

from coliseum.models import ApiKey
from coliseum.ops.requests import request_window_stats
from tests.ingestion.conftest import WRITE_KEY, make_event
from tests.ingestion.test_http import WEBHOOK, log_count, post_webhook, sign


def test_webhook_post_keeps_request_id_security_headers_and_metrics(
    client: Client, webhook_key: ApiKey
) -> None:
    response = post_webhook(client, webhook_key, make_event(), HTTP_X_REQUEST_ID="req-hot-1")
    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    assert response["X-Request-ID"] == "req-hot-1"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies
    assert log_count(webhook_key.tenant) == 1
    assert request_window_stats(minutes=1)["ingest"].requests == 1


def test_segment_track_on_the_lean_path_answers_like_before(client: Client, write_key: ApiKey) -> None:
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    message = {
        "type": "track",
        "event": "Page Shared",
        "messageId": "m-hot-1",
        "userId": "fan-9",
        "properties": {},
    }
    response = client.post(
        "/v1/track",
        data=orjson.dumps(message),
        content_type="application/json",
        headers={"Authorization": auth},
    )
    assert response.status_code == 200
    assert response.json()["success"] is True
    assert response.json()["accepted"] + response.json()["duplicates"] + len(response.json()["rejected"]) == 1


def test_bad_signature_on_the_lean_path_is_the_error_envelope(client: Client, webhook_key: ApiKey) -> None:
    response = post_webhook(client, webhook_key, make_event(), signature="t=1,v1=00")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"
    assert log_count(webhook_key.tenant) == 0


def test_unknown_host_is_refused_before_any_ingest(
    client: Client, webhook_key: ApiKey, settings: Any
) -> None:
    settings.ALLOWED_HOSTS = ["coliseum.example"]
    response = post_webhook(client, webhook_key, make_event(), HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert log_count(webhook_key.tenant) == 0


def test_other_methods_still_take_the_full_stack(client: Client, webhook_key: ApiKey) -> None:
    response = client.get(WEBHOOK)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_the_served_wsgi_application_ingests_with_its_startup_objects_frozen(webhook_key: ApiKey) -> None:
    # given the module granian serves (it freezes its start-up objects out of the garbage collector's walk)
    from coliseum.wsgi import application

    assert gc.get_freeze_count() > 0
    body = orjson.dumps(make_event())
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": WEBHOOK,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_PASSPORT_KEY": webhook_key.key_id,
        "HTTP_X_PASSPORT_SIGNATURE": sign(body),
    }
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None, /) -> Any:
        statuses.append(status)
        return None

    # when an event is posted through it (as Django's test client does, the test's connection stays open)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        answer = b"".join(application(environ, start_response))
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    # then it is accepted and logged
    assert statuses == ["202 Accepted"]
    assert orjson.loads(answer)["accepted"] == 1
    assert log_count(webhook_key.tenant) == 1
