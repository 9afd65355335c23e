"""The two raw ingestion endpoints: the signed Passport webhook and the Segment-compatible API.

Hot path: plain functions over Django's HttpRequest (bodies read once, parsed with orjson, or for a webhook
batch decoded and validated by msgspec straight from the bytes; no DRF parsing), wrapped by thin APIViews in
apis.py only so they appear in the OpenAPI schema. Every whole-request failure answers the error envelope:
400 malformed, 401 bad key or signature, 413 too large, 415 wrong content type (the webhook; the Segment API
reads JSON whatever the declared type), 429 rate limited (Retry-After, X-RateLimit-Reset). Never a 500 on
any input."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
import zlib
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse

from coliseum.crypto import constant_time_equals
from coliseum.errors import (
    ApplicationError,
    AuthenticationError,
    PayloadTooLargeError,
    RateLimitedError,
    application_error_response,
)
from coliseum.models import ApiKey, Tenant
from coliseum.rls import request_scope, request_tenant_set
from ingestion.catalog import CATALOG, snake_case_keys
from ingestion.ratelimit import rate_limit_take
from ingestion.services import event_batch_ingest
from ingestion.services.ingest import EventRow, json_or_none, passport_events_prevalidate
from ingestion.services.stats import stats_count

logger = logging.getLogger(__name__)


class UnsupportedMediaTypeError(ApplicationError):
    status_code = 415
    code = "unsupported_media_type"


def _json_response(body: dict[str, Any], status: int) -> HttpResponse:
    return HttpResponse(orjson.dumps(body), status=status, content_type="application/json")


def _read_body(request: HttpRequest, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes without reading them all."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLargeError(f"The body is larger than {limit} bytes.", details={"limit_bytes": limit})
    body = request.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLargeError(f"The body is larger than {limit} bytes.", details={"limit_bytes": limit})
    return body


def _content_type(request: HttpRequest) -> str:
    return (request.META.get("CONTENT_TYPE") or "").split(";", 1)[0].strip().lower()


def _parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApplicationError("The body is not valid JSON.", code="malformed_request") from None


def _rate_limit(tenant: Tenant, key_id: str, cost: int) -> None:
    decision = rate_limit_take(tenant=tenant, key_id=key_id, cost=cost)
    if not decision.allowed:
        stats_count(rate_limited=cost)
        raise RateLimitedError(
            "Too many events for this key; slow down.",
            retry_after=decision.retry_after,
            reset_at=decision.reset_at,
            details={"retry_after": decision.retry_after, "reset_at": decision.reset_at},
        )


_touched: dict[str, float] = {}
TOUCH_EVERY_SECONDS = 60.0


def _key_touch(key: ApiKey) -> None:
    """api_key_touch guards its UPDATE with a Redis SET NX; remembering the last touch in-process too keeps
    that round trip off almost every request."""
    now = time.monotonic()
    if now - _touched.get(key.key_id, -TOUCH_EVERY_SECONDS) < TOUCH_EVERY_SECONDS:
        return
    if len(_touched) > 10_000:
        _touched.clear()
    _touched[key.key_id] = now
    try:
        from coliseum.services import api_key_touch

        api_key_touch(key_id=key.key_id)
    except Exception:
        logger.warning("api key touch failed")


def _handle(request: HttpRequest, handler: Any) -> HttpResponse:
    try:
        with request_scope():  # no tenant until the key names one (row-level security, coliseum/rls.py)
            response: HttpResponse = handler(request)
        return response
    except ApplicationError as exc:
        return application_error_response(exc)
    except Exception:
        # Never a traceback to the caller; no body or personal data in the log line.
        logger.exception("ingestion endpoint failed")
        connection.close_if_unusable_or_obsolete()
        return application_error_response(
            ApplicationError("An unexpected error occurred.", code="server_error", status_code=500)
        )


# --- Passport webhook -------------------------------------------------------------------------------------

_SIG_PART = re.compile(r"^\s*(t|v1)=([0-9A-Za-z]+)\s*$")


def signature_verify(*, secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """`t=<unix>,v1=<hex>[,v1=<hex>...]`: fresh timestamp (INGEST_MAX_CLOCK_SKEW_SECONDS) and any v1 matching
    HMAC-SHA256(secret, "<t>.<body>"), compared in constant time."""
    if not header or len(header) > 1024:
        return False
    timestamp: str | None = None
    candidates: list[str] = []
    for part in header.split(","):
        m = _SIG_PART.match(part)
        if not m:
            continue
        if m.group(1) == "t":
            timestamp = m.group(2)
        else:
            candidates.append(m.group(2).lower())
    if timestamp is None or not timestamp.isdigit() or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > settings.INGEST_MAX_CLOCK_SKEW_SECONDS:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    matched = False
    for candidate in candidates[:8]:
        matched |= constant_time_equals(expected, candidate)
    return matched


def _webhook(request: HttpRequest) -> HttpResponse:
    from coliseum.selectors import webhook_key_secret

    if _content_type(request) != "application/json":
        raise UnsupportedMediaTypeError("Send the events as application/json.")
    body = _read_body(request, settings.INGEST_WEBHOOK_MAX_BYTES)
    found = webhook_key_secret(request.headers.get("X-Passport-Key", ""))
    if found is None or not signature_verify(
        secret=found[1], header=request.headers.get("X-Passport-Signature", ""), body=body
    ):
        raise AuthenticationError("Unknown key or bad signature.", code="bad_signature")
    key = found[0]
    request_tenant_set(key.tenant_id)
    fast = _webhook_events_fast(body)
    events, raw_events = fast if fast is not None else (_webhook_events(body), None)
    _rate_limit(key.tenant, key.key_id, len(events))
    oversize = _oversize_indexes(events, len(body), raw_events)
    result = event_batch_ingest(
        tenant=key.tenant,
        events=[e for i, e in enumerate(events) if i not in oversize] if oversize else events,
        source="passport",
    )
    rejected = _merge_rejected(events, oversize, result.rejected)
    _key_touch(key)
    return _json_response(
        {"accepted": result.accepted, "duplicates": result.duplicates, "rejected": rejected}, 202
    )


def _webhook_events(body: bytes) -> list[Any]:
    payload = _parse_json(body)
    if isinstance(payload, dict) and "events" in payload:
        events = payload["events"]
        if not isinstance(events, list):
            raise ApplicationError("`events` must be a list.", code="malformed_request")
    elif isinstance(payload, dict):
        events = [payload]
    else:
        raise ApplicationError('Send one event object or {"events": [...]}.', code="malformed_request")
    if len(events) > settings.INGEST_WEBHOOK_MAX_EVENTS:
        raise PayloadTooLargeError(
            f"At most {settings.INGEST_WEBHOOK_MAX_EVENTS} events a request.",
            details={"limit_events": settings.INGEST_WEBHOOK_MAX_EVENTS},
        )
    return events


class _WebhookBatch(msgspec.Struct, forbid_unknown_fields=True):
    events: list[msgspec.Raw]


_BATCH_DECODER = msgspec.json.Decoder(_WebhookBatch)
_BATCH_FRAME = len(b'{"events":[]}')


def _webhook_events_fast(body: bytes) -> tuple[list[Any], list[msgspec.Raw]] | None:
    """The events of a `{"events": [...]}` body through the fast path (passport_events_prevalidate), with
    each event's raw JSON; None for any other body, which _webhook_events then parses as always (for the same
    answer to malformed JSON, another shape or too many events)."""
    try:
        raw_events = _BATCH_DECODER.decode(body).events
    except (msgspec.DecodeError, ValueError, RecursionError):  # ValueError: bad UTF-8
        return None
    if len(raw_events) > settings.INGEST_WEBHOOK_MAX_EVENTS:
        return None
    escapes = b"\\" in body
    # msgspec skips over a key given twice without all of orjson's checks (the last one wins in both): the
    # body must be the one "events" list and nothing else (compact JSON, whose length then adds up exactly),
    # or name "events" once and have no escape that could spell it another way.
    compact = len(body) == _BATCH_FRAME + sum(map(len, raw_events)) + max(len(raw_events) - 1, 0)
    if not compact and (escapes or body.count(b'"events"') != 1):
        return None
    events = passport_events_prevalidate(raw_events, escapes=escapes)
    return None if events is None else (events, raw_events)


def _oversize_indexes(
    events: list[Any], body_size: int, raw_events: list[msgspec.Raw] | None
) -> dict[int, str]:
    limit = settings.INGEST_EVENT_MAX_BYTES
    if body_size <= limit:
        return {}  # no single event can be bigger than the whole body
    oversize: dict[int, str] = {}
    for i, event in enumerate(events):
        if isinstance(event, EventRow) and raw_events is not None:
            # An event the fast path accepted is measured as orjson writes its parsed form, like any other.
            # orjson never writes one of its strings, numbers or keys longer than they came, so its raw
            # length plus its context as rewritten bounds that: only an event near the limit is parsed.
            if len(raw_events[i]) + len(event.context) <= limit:
                continue
            event = orjson.loads(memoryview(raw_events[i]))
        if len(orjson.dumps(event)) > limit:
            oversize[i] = f"event: larger than {limit} bytes"
    return oversize


def _merge_rejected(
    events: list[Any], pre: dict[int, str], ingest_rejected: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Map the service's indexes (over the events it was given) back to the request's indexes."""
    if not pre:
        return ingest_rejected
    kept = [i for i in range(len(events)) if i not in pre]
    out = [{"index": i, "event_id": _id_of(events[i]), "errors": [reason]} for i, reason in pre.items()]
    out.extend({**r, "index": kept[r["index"]]} for r in ingest_rejected)
    return sorted(out, key=lambda r: r["index"])


def _id_of(event: Any, field: str = "event_id") -> str | None:
    if isinstance(event, EventRow):
        return event.event_id
    value = event.get(field) if isinstance(event, dict) else None
    return value if isinstance(value, str) and len(value) <= 200 else None


def passport_webhook(request: HttpRequest) -> HttpResponse:
    return _handle(request, _webhook)


# --- Segment-compatible API -------------------------------------------------------------------------------

SEGMENT_CALLS = ("track", "identify", "page", "screen", "group", "alias")
_SLUG = re.compile(r"[^a-z0-9]+")


def _decompress(body: bytes, limit: int) -> bytes:
    try:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise ApplicationError("The body is not valid gzip.", code="malformed_request") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLargeError(f"The body is larger than {limit} bytes.", details={"limit_bytes": limit})
    return out


def _write_key_from(request: HttpRequest, payload: dict[str, Any]) -> str:
    auth = request.headers.get("Authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.split(":", 1)[0]
    value = payload.get("writeKey") or payload.get("write_key")
    return value if isinstance(value, str) else ""


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _segment_time(message: dict[str, Any], batch_sent_at: Any, received_at: datetime) -> datetime:
    """timestamp = receivedAt - (sentAt - originalTimestamp) when sentAt is given (corrects device clocks);
    else the message's timestamp; else receivedAt."""
    original = _parse_time(message.get("originalTimestamp")) or _parse_time(message.get("timestamp"))
    sent_at = _parse_time(message.get("sentAt")) or _parse_time(batch_sent_at)
    if original is not None and sent_at is not None:
        try:
            return received_at - (sent_at - original)
        except OverflowError:
            return original  # absurd clocks: the event's own timestamp, range-checked by validation
    return original or received_at


def _segment_envelope(
    message: Any, call: str | None, batch_sent_at: Any, received_at: datetime
) -> tuple[dict[str, Any] | None, str | None, dict[str, Any] | None]:
    """(event dict for event_batch_ingest, error, identify traits)."""
    if not isinstance(message, dict):
        return None, "message: expected an object", None
    call = call or message.get("type")
    if call not in SEGMENT_CALLS:
        return None, f"type: expected one of {', '.join(SEGMENT_CALLS)}", None
    message_id = message.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        return None, "messageId: required", None
    user = message.get("userId") or message.get("anonymousId")
    if not isinstance(user, str | int) or isinstance(user, bool) or user == "":
        return None, "userId or anonymousId: required", None
    raw_context, raw_properties = message.get("context"), message.get("properties")
    context: dict[str, Any] = raw_context if isinstance(raw_context, dict) else {}
    properties: dict[str, Any] = raw_properties if isinstance(raw_properties, dict) else {}
    traits = None
    if call == "track":
        name = message.get("event")
        if not isinstance(name, str) or not name:
            return None, "event: required for track", None
        if name in CATALOG:
            event_type = name
            properties = snake_case_keys(properties)
        else:
            slug = _SLUG.sub("_", name.lower()).strip("_")[:80] or "event"
            event_type = f"custom.{slug}"
            properties = {**properties, "segment_event": name[:200]}
    elif call == "identify":
        event_type = "custom.segment.identify"
        raw_traits = message.get("traits")
        traits = raw_traits if isinstance(raw_traits, dict) else {}
        encoded = json_or_none(traits)
        if encoded is None:
            return None, "traits: nested too deeply", None
        if b"\\u0000" in encoded:
            return None, "traits: NUL characters are not allowed", None
        properties = {}  # traits live in ingestion_person (export / erasure), not in the append-only log
    elif call in ("page", "screen"):
        event_type = f"custom.segment.{call}"
        name = message.get("name")
        properties = {**properties, "name": name if isinstance(name, str) else None}
    elif call == "group":
        event_type = "custom.segment.group"
        properties = {"group_id": message.get("groupId")}
    else:
        event_type = "custom.segment.alias"
        properties = {"previous_id": message.get("previousId")}
    event = {
        "event_id": message_id,
        "type": event_type,
        "occurred_at": _segment_time(message, batch_sent_at, received_at),
        "user_id": str(user),
        "session_id": None,
        "device_id": None,
        "properties": properties,
        "context": context,
    }
    return event, None, traits


def _persons_upsert(tenant: Tenant, traits: dict[str, dict[str, Any]]) -> None:
    if not traits:
        return
    items = sorted(traits.items())
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO ingestion_person (tenant_id, user_id, traits, first_seen_at, updated_at)
            SELECT %s, u, t::jsonb, now(), now() FROM unnest(%s::text[], %s::text[]) AS x(u, t)
            ON CONFLICT (tenant_id, user_id)
            DO UPDATE SET traits = ingestion_person.traits || EXCLUDED.traits, updated_at = now()
            """,
            [tenant.pk, [u for u, _ in items], [orjson.dumps(t).decode() for _, t in items]],
        )


def _segment_payload(request: HttpRequest, body: bytes) -> Any:
    """The JSON body whatever Content-Type declares, as Segment's and RudderStack's servers read it:
    RudderStack's Node SDK posts gzip JSON as application/x-www-form-urlencoded (axios's default for a
    Buffer), navigator.sendBeacon posts text/plain. A body that is not JSON answers 400 when it was declared
    JSON (or nothing), 415 when it was declared as something else."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        declared = _content_type(request)
        if declared and declared != "application/json" and not declared.endswith("+json"):
            raise UnsupportedMediaTypeError(
                "Send the body as JSON (any Content-Type).", details={"content_type": declared[:100]}
            ) from None
        raise ApplicationError("The body is not valid JSON.", code="malformed_request") from None


# Fields a client's retry of the same call changes: left out of a derived messageId.
_RETRY_VARYING = frozenset(("sentAt", "writeKey", "write_key", "_metadata"))


def segment_message_id(*, tenant_id: int, call: str | None, message: dict[str, Any]) -> str | None:
    """A stable messageId for a call that has none (Segment's API fills one in too): SHA-256 over the tenant
    and the call's canonical JSON (keys sorted) without the fields a retry changes, so a retried call dedupes
    and two calls differing in anything else (timestamp, properties, user) do not collide. Two identical
    calls with no timestamp are one event: a client that means two sends a messageId or a timestamp."""
    content = {k: v for k, v in message.items() if k not in _RETRY_VARYING}
    content["type"] = call or message.get("type")  # /v1/track and a track in /v1/batch: the same call
    try:
        canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: _segment_envelope rejects it anyway
        return None
    return "api-" + hashlib.sha256(b"%d:" % tenant_id + canonical).hexdigest()[:40]


def _segment(request: HttpRequest, call: str | None) -> HttpResponse:
    from coliseum.selectors import write_key_authenticate

    received_at = datetime.now(UTC)
    is_batch = call is None
    limit = settings.INGEST_SEGMENT_BATCH_MAX_BYTES if is_batch else settings.INGEST_SEGMENT_CALL_MAX_BYTES
    encoding = (request.META.get("HTTP_CONTENT_ENCODING") or "").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise UnsupportedMediaTypeError("Content-Encoding must be gzip or absent.")
    body = _read_body(request, limit)
    if encoding == "gzip":
        body = _decompress(body, limit)
    payload = _segment_payload(request, body)
    if not isinstance(payload, dict):
        raise ApplicationError("The body must be a JSON object.", code="malformed_request")
    key = write_key_authenticate(_write_key_from(request, payload))
    if key is None:
        raise AuthenticationError("Unknown write key.", code="bad_write_key")
    request_tenant_set(key.tenant_id)
    if is_batch:
        messages = payload.get("batch")
        if not isinstance(messages, list):
            raise ApplicationError("`batch` must be a list.", code="malformed_request")
        if len(messages) > settings.INGEST_SEGMENT_BATCH_MAX_EVENTS:
            raise PayloadTooLargeError(
                f"At most {settings.INGEST_SEGMENT_BATCH_MAX_EVENTS} events a batch.",
                details={"limit_events": settings.INGEST_SEGMENT_BATCH_MAX_EVENTS},
            )
    else:
        messages = [payload]
    _rate_limit(key.tenant, key.key_id, len(messages))
    call_limit = settings.INGEST_SEGMENT_CALL_MAX_BYTES
    pre: dict[int, str] = {}
    if len(body) > call_limit:
        for i, m in enumerate(messages):
            encoded = json_or_none(m)
            if encoded is None:
                pre[i] = "message: nested too deeply"
            elif len(encoded) > call_limit:
                pre[i] = f"message: larger than {call_limit} bytes"
    events: list[dict[str, Any]] = []
    kept: list[int] = []
    traits: dict[str, dict[str, Any]] = {}
    for i, message in enumerate(messages):
        if i in pre:
            continue
        if isinstance(message, dict) and not message.get("messageId"):
            derived = segment_message_id(tenant_id=key.tenant_id, call=call, message=message)
            if derived is None:
                pre[i] = "message: nested too deeply"
                continue
            message = {**message, "messageId": derived}
        event, error, person_traits = _segment_envelope(message, call, payload.get("sentAt"), received_at)
        if event is None:
            pre[i] = error or "invalid"
            continue
        events.append(event)
        kept.append(i)
        if person_traits is not None:
            traits[event["user_id"]] = {**traits.get(event["user_id"], {}), **person_traits}
    result = event_batch_ingest(tenant=key.tenant, events=events, source="segment")
    _persons_upsert(key.tenant, traits)
    rejected = [
        {"index": i, "message_id": _id_of(messages[i], "messageId"), "errors": [reason]}
        for i, reason in pre.items()
    ]
    rejected.extend(
        {"index": kept[r["index"]], "message_id": r["event_id"], "errors": r["errors"]}
        for r in result.rejected
    )
    if pre:
        stats_count(rejected=len(pre))
    _key_touch(key)
    return _json_response(
        {
            "success": True,
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": sorted(rejected, key=lambda r: r["index"]),
        },
        200,
    )


def segment_call(request: HttpRequest, call: str | None) -> HttpResponse:
    """POST /v1/<call> (call None: /v1/batch and /v1/import)."""
    return _handle(request, lambda r: _segment(r, call))


# --- Lean dispatch --------------------------------------------------------------------------------------

SEGMENT_PATHS: dict[str, str | None] = {
    **{f"/v1/{c}": c for c in SEGMENT_CALLS},
    "/v1/batch": None,
    "/v1/import": None,
}
WEBHOOK_PATH = "/webhooks/passport/events"
SEGMENT_PREFIX = "/v1/"


def segment_cors_enabled(sender: Any, request: HttpRequest, **kwargs: Any) -> bool:
    """django-cors-headers' check_request_enabled receiver (connected in apps.py): the tracking API answers
    CORS for any origin, since write keys are public by design (they sit in every tenant's web page) and
    can only add events. django-cors-headers asks only for a request that carries an Origin outside
    CORS_ALLOWED_ORIGINS, so server SDKs pay nothing; the rest of the API keeps the allow-list. No
    Access-Control-Allow-Credentials: these endpoints read no cookie (the key travels in Authorization
    or in the body's writeKey), so browsers need not send any."""
    return request.path.startswith(SEGMENT_PREFIX)


def raw_ingest_route(path: str) -> Any:
    """The plain handler for a POST to one of the raw ingestion paths (same answers as the schema-visible
    APIViews in apis.py, which only wrap these), or None for any other path. Used by
    coliseum.ops.middleware to serve these paths without the session/auth/CSRF/messages middleware, none of
    which applies to key- or signature-authenticated JSON posts."""
    if path == WEBHOOK_PATH:
        return passport_webhook
    if path in SEGMENT_PATHS:
        call = SEGMENT_PATHS[path]
        return lambda request: segment_call(request, call)
    return None
