"""The Segment-compatible tracking API accepts what real SDKs and browsers send (issue 15, items 4-6): JSON
whatever Content-Type says, CORS for any origin on /v1/* only, and a stable messageId when a call has none."""

from __future__ import annotations

import gzip
import uuid
from typing import Any

import orjson
import pytest
from django.test import Client

from coliseum.models import ApiKey
from tests.ingestion.conftest import WRITE_KEY
from tests.ingestion.test_http import basic, log_count, seg_track

ORIGIN = "https://fans.example-tenant.com"


def post(client: Client, path: str, body: bytes, content_type: str | None, **headers: str) -> Any:
    """A POST with exactly this Content-Type (None: no Content-Type at all)."""
    return client.generic("POST", path, data=body, content_type=content_type or "", headers=headers)


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "text/plain;charset=UTF-8", None, "application/octet-stream"],
)
def test_json_is_read_whatever_the_declared_type(
    client: Client, write_key: ApiKey, content_type: str | None
) -> None:
    # given a gzip batch declared as RudderStack's Node SDK declares it (or as anything else)
    body = gzip.compress(orjson.dumps({"batch": [seg_track(), seg_track()]}))
    # when it is posted
    response = post(client, "/v1/batch", body, content_type, **basic(), **{"Content-Encoding": "gzip"})
    # then both events are stored
    assert (response.status_code, response.json()["accepted"]) == (200, 2)
    assert log_count(write_key.tenant) == 2


def test_plain_json_without_a_content_type_is_read(client: Client, write_key: ApiKey) -> None:
    response = post(client, "/v1/track", orjson.dumps(seg_track()), None, **basic())
    assert (response.status_code, response.json()["accepted"]) == (200, 1)


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code"),
    [
        ("application/x-www-form-urlencoded", b"writeKey=x&event=y", 415, "unsupported_media_type"),
        ("text/plain", b"hello", 415, "unsupported_media_type"),
        ("application/json", b'{"batch": [', 400, "malformed_request"),
        (None, b"not json", 400, "malformed_request"),
        ("application/json", b"[1, 2]", 400, "malformed_request"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused_in_the_envelope(
    client: Client, write_key: ApiKey, content_type: str | None, body: bytes, status: int, code: str
) -> None:
    response = post(client, "/v1/batch", body, content_type, **basic())
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert log_count(write_key.tenant) == 0


def test_huge_bodies_and_gzip_bombs_are_413_whatever_the_type(client: Client, write_key: ApiKey) -> None:
    bomb = gzip.compress(b'{"batch": [' + b" " * 20_000_000 + b"]}")
    huge = orjson.dumps({"batch": [seg_track(pad="x" * 1000) for _ in range(600)]})
    answers = [
        post(
            client,
            "/v1/batch",
            bomb,
            "application/x-www-form-urlencoded",
            **basic(),
            **{"Content-Encoding": "gzip"},
        ),
        post(client, "/v1/batch", huge, "text/plain", **basic()),
    ]
    assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [(413, "payload_too_large")] * 2


# --- CORS -------------------------------------------------------------------------------------------------


def test_preflight_from_any_origin_is_answered_and_cached(client: Client, db: Any) -> None:
    response = client.options(
        "/v1/batch",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,content-encoding",
        },
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in response["Access-Control-Allow-Methods"]
    allowed = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "content-encoding"} <= allowed
    assert response["Access-Control-Max-Age"] == "86400"
    assert "Access-Control-Allow-Credentials" not in response  # no cookie is ever read here


def test_answers_and_errors_carry_cors_headers(client: Client, write_key: ApiKey) -> None:
    ok = post(
        client,
        "/v1/batch",
        orjson.dumps({"batch": [seg_track()]}),
        "application/json",
        **basic(),
        Origin=ORIGIN,
    )
    bad_key = post(
        client, "/v1/track", orjson.dumps(seg_track()), "application/json", **basic("nope"), Origin=ORIGIN
    )
    wrong_method = client.get("/v1/batch", headers={"Origin": ORIGIN})
    assert [(r.status_code, r["Access-Control-Allow-Origin"]) for r in (ok, bad_key, wrong_method)] == [
        (200, ORIGIN),
        (401, ORIGIN),
        (405, ORIGIN),
    ]
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_beacon_text_plain_with_the_write_key_in_the_body(client: Client, write_key: ApiKey) -> None:
    body = orjson.dumps({"writeKey": WRITE_KEY, "batch": [seg_track()]})
    response = post(client, "/v1/batch", body, "text/plain;charset=UTF-8", Origin=ORIGIN)
    assert (response.status_code, response.json()["accepted"]) == (200, 1)
    assert response["Access-Control-Allow-Origin"] == ORIGIN


def test_the_rest_of_the_api_keeps_its_allow_list(client: Client, db: Any, settings: Any) -> None:
    settings.CORS_ALLOWED_ORIGINS = ["https://console.example.com"]
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    stranger = client.options("/api/v1/kpis", headers={"Origin": ORIGIN, **preflight})
    listed = client.options("/api/v1/kpis", headers={"Origin": "https://console.example.com", **preflight})
    webhook = client.options(
        "/webhooks/passport/events", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in stranger
    assert "Access-Control-Allow-Origin" not in webhook
    assert listed["Access-Control-Allow-Origin"] == "https://console.example.com"


# --- messageId --------------------------------------------------------------------------------------------


def untracked(**overrides: Any) -> dict[str, Any]:
    message = seg_track(**overrides)
    del message["messageId"]
    return message


def test_a_call_without_message_id_is_stored_and_its_retry_dedupes(client: Client, write_key: ApiKey) -> None:
    # given a call without messageId, sent, then retried by its client with a new sentAt
    first = post(
        client, "/v1/track", orjson.dumps({**untracked(), "sentAt": "2026-11-20T10:05:01Z"}), None, **basic()
    )
    retry = post(
        client, "/v1/track", orjson.dumps({**untracked(), "sentAt": "2026-11-20T10:05:09Z"}), None, **basic()
    )
    # and the same call again inside a batch
    batched = post(
        client, "/v1/batch", orjson.dumps({"batch": [{**untracked(), "type": "track"}]}), None, **basic()
    )
    # then it is stored once: the repeats are duplicates
    assert [(r.json()["accepted"], r.json()["duplicates"]) for r in (first, retry, batched)] == [
        (1, 0),
        (0, 1),
        (0, 1),
    ]
    assert log_count(write_key.tenant) == 1


def test_different_calls_without_message_id_do_not_collide(client: Client, write_key: ApiKey) -> None:
    calls = [
        untracked(),
        untracked(timestamp="2026-11-20T10:06:00Z"),
        untracked(userId="fan-10"),
        untracked(properties={"trackId": "t2", "artistId": "a1", "durationSeconds": 60}),
        {**untracked(), "type": "page", "name": "Home"},
    ]
    response = post(client, "/v1/batch", orjson.dumps({"batch": calls}), None, **basic())
    assert (response.json()["accepted"], response.json()["rejected"]) == (5, [])
    assert log_count(write_key.tenant) == 5


def test_derived_ids_are_per_tenant(client: Client, write_key: ApiKey) -> None:
    from coliseum.crypto import digest_secret
    from tests.factories import TenantFactory

    other = TenantFactory.create(plan="enterprise")
    other_key = f"wk_other_{uuid.uuid4().hex}"
    ApiKey.objects.create(
        tenant=other, kind="write", key_id="wk_other", secret_digest=digest_secret(other_key)
    )
    body = orjson.dumps({"batch": [{**untracked(), "type": "track"}]})
    mine = post(client, "/v1/batch", body, None, **basic())
    theirs = post(client, "/v1/batch", body, None, **basic(other_key))
    assert (mine.json()["accepted"], theirs.json()["accepted"]) == (1, 1)
