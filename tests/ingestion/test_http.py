"""The Passport webhook and the Segment-compatible API, end to end through the test client."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.db import connection
from django.test import Client

from coliseum.crypto import encrypt_secret
from coliseum.models import ApiKey, Tenant
from ingestion.catalog import CATALOG
from ingestion.models import Person
from ingestion.services import event_batch_ingest
from tests.factories import TenantFactory
from tests.ingestion.conftest import HOUR0, WEBHOOK_SECRET, WRITE_KEY, make_event

WEBHOOK = "/webhooks/passport/events"


def sign(body: bytes, secret: str = WEBHOOK_SECRET, t: int | None = None) -> str:
    ts = str(int(time.time()) if t is None else t)
    digest = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def post_webhook(
    client: Client, key: ApiKey, payload: Any, signature: str | None = None, **extra: Any
) -> Any:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return client.post(
        WEBHOOK,
        data=body,
        content_type=extra.pop("content_type", "application/json"),
        headers={"X-Passport-Key": key.key_id, "X-Passport-Signature": signature or sign(body)},
        **extra,
    )


def log_count(tenant: Tenant) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ingestion_event WHERE tenant_id = %s", [tenant.pk])
        return int(cursor.fetchone()[0])


def test_signed_batch_is_accepted_with_per_event_rejections(client: Client, webhook_key: ApiKey) -> None:
    good = make_event()
    bad = make_event("player.track_played", track_id="t")  # missing fields
    response = post_webhook(client, webhook_key, {"events": [good, bad]})
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (1, 0)
    assert [(r["index"], r["event_id"]) for r in body["rejected"]] == [(1, bad["event_id"])]
    assert log_count(webhook_key.tenant) == 1


def test_single_event_body_and_replay_is_a_duplicate(client: Client, webhook_key: ApiKey) -> None:
    event = make_event()
    assert post_webhook(client, webhook_key, event).json()["accepted"] == 1
    replay = post_webhook(client, webhook_key, {**event, "occurred_at": datetime.now(UTC).isoformat()})
    assert replay.status_code == 202
    assert (replay.json()["accepted"], replay.json()["duplicates"]) == (0, 1)
    assert log_count(webhook_key.tenant) == 1


@pytest.mark.parametrize(
    "signature",
    [
        "t={now},v1=" + "0" * 64,  # wrong
        "t={old},v1={good_old}",  # expired (well signed, 10 minutes old)
        "v1={good}",  # no timestamp
        "garbage",
        "",
    ],
)
def test_bad_signatures_get_401_and_change_nothing(
    client: Client, webhook_key: ApiKey, signature: str
) -> None:
    body = orjson.dumps(make_event())
    now, old = int(time.time()), int(time.time()) - 600
    good = sign(body, t=now).split("v1=")[1]
    good_old = sign(body, t=old).split("v1=")[1]
    header = signature.format(now=now, old=old, good=good, good_old=good_old)
    response = client.post(
        WEBHOOK,
        data=body,
        content_type="application/json",
        headers={"X-Passport-Key": webhook_key.key_id, "X-Passport-Signature": header},
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"
    assert log_count(webhook_key.tenant) == 0


def test_rotated_secret_any_v1_matches(client: Client, webhook_key: ApiKey) -> None:
    body = orjson.dumps(make_event())
    ts = int(time.time())
    old_sig = sign(body, secret="old-secret", t=ts).split("v1=")[1]
    new_sig = sign(body, t=ts).split("v1=")[1]
    response = post_webhook(client, webhook_key, body, signature=f"t={ts},v1={old_sig},v1={new_sig}")
    assert response.status_code == 202
    # and a signature made only with the old secret fails
    body2 = orjson.dumps(make_event())
    assert (
        post_webhook(client, webhook_key, body2, signature=sign(body2, secret="old-secret")).status_code
        == 401
    )


def test_unknown_key_is_401(client: Client, tenant: Tenant) -> None:
    body = orjson.dumps(make_event())
    response = client.post(
        WEBHOOK,
        data=body,
        content_type="application/json",
        headers={"X-Passport-Key": "pk_nope", "X-Passport-Signature": sign(body)},
    )
    assert response.status_code == 401


def test_whole_request_failures_answer_the_envelope(client: Client, webhook_key: ApiKey) -> None:
    malformed = post_webhook(client, webhook_key, b"{not json")
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_request"
    assert post_webhook(client, webhook_key, b"[1, 2]").status_code == 400
    too_many = post_webhook(client, webhook_key, {"events": [make_event() for _ in range(1001)]})
    assert too_many.status_code == 413
    huge = post_webhook(client, webhook_key, {"events": [], "pad": "x" * (1024 * 1024)})
    assert huge.status_code == 413
    wrong_type = post_webhook(client, webhook_key, orjson.dumps(make_event()), content_type="text/xml")
    assert wrong_type.status_code == 415
    for response in (too_many, huge, wrong_type):
        assert set(response.json()["error"]) == {"code", "message", "details"}
    assert log_count(webhook_key.tenant) == 0


def test_an_event_over_32kb_is_rejected_alone(client: Client, webhook_key: ApiKey) -> None:
    big = make_event("custom.blob", data="x" * 40_000)
    small = make_event()
    body = post_webhook(client, webhook_key, {"events": [big, small]}).json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["index"] == 0
    assert "32768" in body["rejected"][0]["errors"][0]


def test_rate_limit_answers_429_with_retry_headers(client: Client, webhook_key: ApiKey) -> None:
    tenant = webhook_key.tenant
    tenant.plan = "basic"  # 100 events/s, burst 500
    tenant.save()
    first = post_webhook(client, webhook_key, {"events": [make_event() for _ in range(600)]})
    second = post_webhook(client, webhook_key, {"events": [make_event()]})
    assert first.status_code == 202
    assert second.status_code == 429
    assert int(second["Retry-After"]) >= 1
    assert int(second["X-RateLimit-Reset"]) >= int(time.time())
    assert second.json()["error"]["code"] == "rate_limited"
    assert log_count(tenant) == 600


def test_another_tenants_key_writes_to_its_own_tenant_only(client: Client, webhook_key: ApiKey) -> None:
    other = TenantFactory.create()
    other_key = ApiKey.objects.create(
        tenant=other, kind="webhook", key_id="pk_other", secret_encrypted=encrypt_secret("other-secret")
    )
    body = orjson.dumps(make_event())
    response = client.post(
        WEBHOOK,
        data=body,
        content_type="application/json",
        headers={
            "X-Passport-Key": other_key.key_id,
            "X-Passport-Signature": sign(body, secret="other-secret"),
        },
    )
    assert response.status_code == 202
    assert (log_count(other), log_count(webhook_key.tenant)) == (1, 0)


# --- every catalog type: a good and a bad example ---------------------------------------------------------


@pytest.mark.parametrize("type_name", sorted(CATALOG))
def test_catalog_type_good_example_is_accepted(tenant: Tenant, type_name: str) -> None:
    result = event_batch_ingest(
        tenant=tenant, events=[make_event(type_name, **CATALOG[type_name].example)], source="passport"
    )
    assert (result.accepted, result.rejected) == (1, [])


@pytest.mark.parametrize("type_name", sorted(CATALOG))
def test_catalog_type_bad_example_is_rejected(tenant: Tenant, type_name: str) -> None:
    example = dict(CATALOG[type_name].example)
    first_field = next(iter(example))
    bad = {**example, first_field: {"not": "valid"}, "unexpected_field": 1}
    result = event_batch_ingest(tenant=tenant, events=[make_event(type_name, **bad)], source="passport")
    assert result.accepted == 0
    assert result.rejected[0]["errors"]
    assert log_count(tenant) == 0


def test_catalog_endpoint_lists_every_type_with_its_schema(client: Client, db: Any) -> None:
    response = client.get("/api/v1/events/catalog")
    assert response.status_code == 200
    types = {t["type"]: t for t in response.json()["types"]}
    assert len(types) >= 40
    played = types["player.track_played"]
    assert played["metrics"] == ["plays", "listen_seconds", "unique_listeners"]
    assert set(played["schema"]["required"]) == {"track_id", "artist_id", "duration_seconds"}


# --- Segment ----------------------------------------------------------------------------------------------


def basic(key: str = WRITE_KEY) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def seg_track(event: str = "player.track_played", **overrides: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "userId": "fan-9",
        "messageId": str(uuid.uuid4()),
        "timestamp": f"{HOUR0 + timedelta(minutes=5):%Y-%m-%dT%H:%M:%SZ}",
        "properties": {"trackId": "t1", "artistId": "a1", "durationSeconds": 60},
        **overrides,
    }


def test_segment_track_with_basic_auth_and_camel_case(client: Client, write_key: ApiKey) -> None:
    response = client.post("/v1/track", data=seg_track(), content_type="application/json", headers=basic())
    assert response.status_code == 200
    assert response.json() == {"success": True, "accepted": 1, "duplicates": 0, "rejected": []}
    assert log_count(write_key.tenant) == 1


def test_segment_body_write_key_text_plain_and_gzip(client: Client, write_key: ApiKey) -> None:
    payload = {"writeKey": WRITE_KEY, "batch": [seg_track(), seg_track()]}
    plain = client.post("/v1/batch", data=orjson.dumps(payload), content_type="text/plain")
    gz = client.post(
        "/v1/batch",
        data=gzip.compress(orjson.dumps({"writeKey": WRITE_KEY, "batch": [seg_track()]})),
        content_type="application/json",
        headers={"Content-Encoding": "gzip"},
    )
    assert (plain.status_code, plain.json()["accepted"]) == (200, 2)
    assert (gz.status_code, gz.json()["accepted"]) == (200, 1)
    assert log_count(write_key.tenant) == 3


def test_segment_mixed_batch(client: Client, write_key: ApiKey) -> None:
    batch = [
        seg_track(),
        seg_track(event="Order Completed", properties={"total": 10}),
        {"type": "identify", "userId": "fan-9", "messageId": "m-id-1", "traits": {"plan": "gold"}},
        {"type": "page", "anonymousId": "anon-1", "messageId": "m-p-1", "name": "Home"},
        {"type": "screen", "userId": "fan-9", "messageId": "m-s-1", "name": "Player"},
        {"type": "group", "userId": "fan-9", "messageId": "m-g-1", "groupId": "g1"},
        {"type": "alias", "userId": "fan-9", "previousId": "anon-1", "messageId": "m-a-1"},
        seg_track(properties={"trackId": "t1"}),  # catalog type, missing fields: rejected
        {"type": "track", "userId": "x", "event": "Signed Up"},  # no messageId: one is derived
    ]
    response = client.post(
        "/v1/batch", data={"batch": batch}, content_type="application/json", headers=basic()
    )
    body = response.json()
    assert response.status_code == 200
    assert body["accepted"] == 8
    assert [r["index"] for r in body["rejected"]] == [7]
    assert Person.objects.get(tenant=write_key.tenant, user_id="fan-9").traits == {"plan": "gold"}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT type FROM ingestion_event WHERE tenant_id = %s ORDER BY type", [write_key.tenant.pk]
        )
        types = [t for (t,) in cursor.fetchall()]
    assert "custom.order_completed" in types and "custom.segment.identify" in types


def test_segment_sent_at_corrects_the_device_clock(client: Client, write_key: ApiKey) -> None:
    # the device clock runs 1 hour fast: sentAt - originalTimestamp = 10 s, so occurred = receivedAt - 10 s
    device_now = datetime.now(UTC) + timedelta(hours=1)
    message = seg_track(
        originalTimestamp=(device_now - timedelta(seconds=10)).isoformat(), sentAt=device_now.isoformat()
    )
    client.post("/v1/track", data=message, content_type="application/json", headers=basic())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT occurred_at, received_at FROM ingestion_event WHERE tenant_id = %s", [write_key.tenant.pk]
        )
        occurred, received = cursor.fetchone()
    assert abs((received - occurred).total_seconds() - 10) < 2


def test_segment_failures(client: Client, write_key: ApiKey) -> None:
    bad_key = client.post(
        "/v1/track", data=seg_track(), content_type="application/json", headers=basic("nope")
    )
    no_key = client.post("/v1/track", data=seg_track(), content_type="application/json")
    too_big = client.post(
        "/v1/track", data=seg_track(pad="x" * 40_000), content_type="application/json", headers=basic()
    )
    too_many = client.post(
        "/v1/batch",
        data={"batch": [seg_track() for _ in range(2501)]},
        content_type="application/json",
        headers=basic(),
    )
    wrong_type = client.post("/v1/track", data=b"a=1", content_type="application/x-www-form-urlencoded")
    bad_gzip = client.post(
        "/v1/track",
        data=b"nope",
        content_type="application/json",
        headers={**basic(), "Content-Encoding": "gzip"},
    )
    assert [r.status_code for r in (bad_key, no_key, too_big, too_many, wrong_type, bad_gzip)] == [
        401,
        401,
        413,
        413,
        415,
        400,
    ]
    assert log_count(write_key.tenant) == 0


def test_nul_characters_are_rejected_per_event_not_a_500(client: Client, webhook_key: ApiKey) -> None:
    nul_user = {**make_event(), "user_id": "fan\u0000x"}
    nul_prop = make_event("custom.note", text="a\u0000b")
    good = make_event()
    response = post_webhook(client, webhook_key, {"events": [nul_user, nul_prop, good]})
    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    assert [r["index"] for r in response.json()["rejected"]] == [0, 1]


def test_segment_absurd_clocks_and_nul_traits_are_rejected_not_a_500(
    client: Client, write_key: ApiKey
) -> None:
    batch = [
        seg_track(originalTimestamp="0001-01-01T00:00:00Z", sentAt="9999-12-31T00:00:00Z"),
        {"type": "identify", "userId": "u", "messageId": "nul-1", "traits": {"x": "a\u0000"}},
        seg_track(),
    ]
    response = client.post(
        "/v1/batch", data={"batch": batch}, content_type="application/json", headers=basic()
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert [r["index"] for r in response.json()["rejected"]] == [0, 1]


def test_segment_json_nested_deeper_than_it_can_be_stored_is_rejected_alone(
    client: Client, write_key: ApiKey
) -> None:
    # given JSON nested 300 levels deep (it parses, but cannot be written back out or stored): as identify
    # traits, and as a track's properties in a batch over the per-call size limit
    deep: Any = "leaf"
    for _ in range(300):
        deep = {"k": deep}
    padding = {"blob": "x" * 1000}
    batch = [
        {"type": "identify", "userId": "fan-deep", "messageId": "deep-1", "traits": deep},
        seg_track(event="Deep", properties={"deep": deep}),
        *[seg_track(event="Padding", properties=padding) for _ in range(40)],  # body past 32 KB
    ]
    # when they are sent
    response = client.post(
        "/v1/batch", data={"batch": batch}, content_type="application/json", headers=basic()
    )
    # then the batch is answered (never a 500): the two deep messages are rejected, the others are kept
    assert response.status_code == 200
    assert {r["index"] for r in response.json()["rejected"]} == {0, 1}
    assert response.json()["accepted"] == 40
    assert not Person.objects.filter(tenant=write_key.tenant, user_id="fan-deep").exists()
