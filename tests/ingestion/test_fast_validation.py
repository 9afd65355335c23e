"""The webhook's fast validation path (msgspec, from the request's bytes) answers and stores exactly what the
long path (orjson, then event_validate per event) does: every case goes to two tenants, once each way, and
the response bodies and logged rows must be the same."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any

import orjson
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coliseum.crypto import encrypt_secret
from coliseum.models import ApiKey, Tenant
from ingestion import http
from ingestion.catalog import CATALOG
from ingestion.services.ingest import EventRow
from tests.factories import TenantFactory
from tests.ingestion.conftest import HOUR0, WEBHOOK_SECRET
from tests.ingestion.test_http import post_webhook

LOGGED = """
SELECT e.event_id, e.type, e.occurred_at, e.user_id, e.session_id, e.device_id, a.external_id, s.external_id,
       e.city, e.genre, e.amount_minor, e.currency, e.properties::text, e.context::text, e.source
FROM ingestion_event e
LEFT JOIN coliseum_artist a ON a.id = e.artist_id
LEFT JOIN coliseum_show s ON s.id = e.show_id
WHERE e.tenant_id = %s
ORDER BY e.event_id
"""


@dataclass
class Keys:
    fast: ApiKey
    slow: ApiKey


@pytest.fixture
def keys(webhook_key: ApiKey) -> Keys:
    """The fixture's tenant takes the fast path; a second one, with its own key, the long path."""
    other = TenantFactory.create(plan="enterprise")
    secret = encrypt_secret(WEBHOOK_SECRET)
    slow = ApiKey.objects.create(tenant=other, kind="webhook", key_id="pk_long", secret_encrypted=secret)
    return Keys(fast=webhook_key, slow=slow)


@pytest.fixture
def fast_accepted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many events of each request the fast path accepted (so a parity test is not passing vacuously)."""
    counts: list[int] = []
    real = http.passport_events_prevalidate

    def spy(raw_events: Any, *, escapes: bool) -> list[Any] | None:
        events = real(raw_events, escapes=escapes)
        counts.append(sum(isinstance(e, EventRow) for e in events or ()))
        return events

    monkeypatch.setattr(http, "passport_events_prevalidate", spy)
    return counts


def logged(tenant: Tenant) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(LOGGED, [tenant.pk])
        return list(cursor.fetchall())


def post_both_ways(client: Client, keys: Keys, body: bytes, monkeypatch: pytest.MonkeyPatch) -> Any:
    """POST `body` through the fast path (tenant A) and the long path (tenant B); both must answer and log the
    same. Returns the fast path's response."""
    fast = post_webhook(client, keys.fast, body)
    with monkeypatch.context() as long_path:
        long_path.setattr(http, "_webhook_events_fast", lambda body: None)
        slow = post_webhook(client, keys.slow, body)
    assert (fast.status_code, fast.json()) == (slow.status_code, slow.json())
    assert logged(keys.fast.tenant) == logged(keys.slow.tenant)
    return fast


MOMENT = HOUR0 + timedelta(minutes=5)


def event(type_: str = "player.track_played", **envelope: Any) -> dict[str, Any]:
    """A valid event of `type_` carrying the catalog's example properties; `envelope` overrides fields."""
    out: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "occurred_at": MOMENT.isoformat(),
        "user_id": "fan-1",
        "properties": dict(CATALOG[type_].example) if type_ in CATALOG else {},
    }
    out.update(envelope)
    return out


def with_props(type_: str = "player.track_played", **props: Any) -> dict[str, Any]:
    base = event(type_)
    base["properties"] = {**base["properties"], **props}
    return base


def without(field: str, source: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in source.items() if k != field}


def batch(*events: Any) -> bytes:
    return orjson.dumps({"events": list(events)})


def test_every_catalog_example_takes_the_fast_path_and_is_stored_as_the_long_path_stores_it(
    client: Client, keys: Keys, monkeypatch: pytest.MonkeyPatch, fast_accepted: list[int]
) -> None:
    events = [
        event(name, session_id="s-1", device_id="d-1", context={"app": {"v": "5.2"}}) for name in CATALOG
    ]
    events += [event(name) for name in CATALOG]  # and without the optional envelope fields
    response = post_both_ways(client, keys, batch(*events), monkeypatch)
    assert response.status_code == 202
    assert response.json() == {"accepted": len(events), "duplicates": 0, "rejected": []}
    assert fast_accepted == [len(events)]
    assert len(logged(keys.fast.tenant)) == len(events)


OFFSET = MOMENT.astimezone(timezone(timedelta(hours=1))).isoformat()
# Events each case sends (after one valid event, so indexes in `rejected` are checked too).
CASES: dict[str, Callable[[], list[Any]]] = {
    "wrong property type": lambda: [with_props(duration_seconds="100")],
    "float for an int property": lambda: [with_props(duration_seconds=100.0)],
    "bool for an int property": lambda: [with_props(duration_seconds=True)],
    "property out of range": lambda: [with_props(duration_seconds=86_401)],
    "unknown property": lambda: [with_props(tempo=120)],
    "missing required property": lambda: [event(properties={"track_id": "t1"})],
    "properties missing, none required": lambda: [without("properties", event("profile.deletion_requested"))],
    "properties missing, some required": lambda: [without("properties", event())],
    "properties null": lambda: [event(properties=None)],
    "naive datetime": lambda: [event(occurred_at=MOMENT.replace(tzinfo=None).isoformat())],
    "offset datetime": lambda: [event(occurred_at=OFFSET)],
    "datetime with 7 fraction digits": lambda: [event(occurred_at=f"{MOMENT:%Y-%m-%dT%H:%M:%S}.1234567Z")],
    "datetime as a number": lambda: [event(occurred_at=1_795_000_000)],
    "datetime before 1970 in UTC": lambda: [event(occurred_at="1970-01-01T00:30:00+01:00")],
    "datetime after 9000": lambda: [event(occurred_at="9001-01-01T00:00:00Z")],
    "datetime past the calendar by its offset": lambda: [event(occurred_at="0001-01-01T00:00:00+01:00")],
    "bad uuid": lambda: [event(event_id="not-a-uuid")],
    "uppercase uuid": lambda: [event(event_id=str(uuid.uuid4()).upper())],
    "uuid without hyphens": lambda: [event(event_id=uuid.uuid4().hex)],
    "uuid in braces": lambda: [event(event_id="{" + str(uuid.uuid4()) + "}")],
    "uuid as a number": lambda: [event(event_id=12345)],
    "user_id too long": lambda: [event(user_id="u" * 201)],
    "user_id empty": lambda: [event(user_id="")],
    "user_id a number": lambda: [event(user_id=7)],
    "session_id too long": lambda: [event(session_id="s" * 201)],
    "device_id null": lambda: [event(device_id=None)],
    "NUL in a property": lambda: [with_props(track_id="t\x00")],
    "NUL in the context": lambda: [event(context={"ip": "1.2.3.4\x00"})],
    "NUL in a context key": lambda: [event(context={"i\x00p": "1.2.3.4"})],
    "NUL in user_id": lambda: [event(user_id="fan\x00")],
    "backslash-u0000 text in a property": lambda: [with_props(track_id="t\\u0000")],
    "backslash-u0000 text in the context": lambda: [event(context={"note": "\\u0000"})],
    "other backslashes": lambda: [with_props(track_id='t"1\\2/3\n')],
    "custom type": lambda: [event("custom.thing_done", properties={"any": ["thing", 1.5]})],
    "unknown type": lambda: [event("player.track_hummed")],
    "type that is no type": lambda: [event("Player Played")],
    "type missing": lambda: [without("type", event())],
    "extra envelope field": lambda: [event(channel="app")],
    "context with numbers": lambda: [
        event(context={"n": 1.5, "e": 1e16, "big": 18446744073709551615, "z": -0.0})
    ],
    "context empty": lambda: [event(context={})],
    "context null": lambda: [event(context=None)],
    "context a list": lambda: [event(context=[1])],
    "money event": lambda: [event("treasury.money_spent")],
    "event not an object": lambda: [1, "x", None, [], {}],
    "repeated event_id": lambda: [(e := event()), {**e, "user_id": "fan-2"}, {**e, "type": "unknown.x"}],
    "repeated across paths": lambda: [(e := event()), {**e, "event_id": e["event_id"].upper()}],
}


@pytest.mark.parametrize("case", CASES)
def test_each_edge_case_answers_and_stores_as_the_long_path_does(
    client: Client, keys: Keys, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    response = post_both_ways(client, keys, batch(event(), *CASES[case]()), monkeypatch)
    assert response.status_code == 202, response.content


def test_an_offset_past_the_calendar_is_refused_not_a_server_error(client: Client, keys: Keys) -> None:
    bad = event(occurred_at="0001-01-01T00:00:00+01:00")
    response = post_webhook(client, keys.fast, batch(bad))
    assert response.status_code == 202
    assert response.json()["rejected"] == [
        {"index": 0, "event_id": bad["event_id"], "errors": ["occurred_at: out of range"]}
    ]


def _raw_batch(*raw_events: bytes) -> bytes:
    return b'{"events":[' + b",".join(raw_events) + b"]}"


def _raw_event(**replace: bytes) -> bytes:
    """A valid event as text, with some members' JSON given literally (for spellings orjson never writes)."""
    out = event()
    parts = [
        orjson.dumps(k) + b":" + (replace.pop(k) if k in replace else orjson.dumps(v)) for k, v in out.items()
    ]
    parts += [orjson.dumps(k) + b":" + v for k, v in replace.items()]
    return b"{" + b",".join(parts) + b"}"


RAW_BODIES: dict[str, tuple[int, Callable[[], bytes]]] = {
    "not JSON": (400, lambda: b'{"events": ['),
    "events not a list": (400, lambda: b'{"events": {}}'),
    "a list, not an object": (400, lambda: orjson.dumps([event()])),
    "one event, no batch": (202, lambda: orjson.dumps(event())),
    "extra top-level key": (202, lambda: b'{"meta": 1, "events": ' + orjson.dumps([event()]) + b"}"),
    "pretty printed": (202, lambda: orjson.dumps({"events": [event(), event()]}, option=orjson.OPT_INDENT_2)),
    "trailing newline": (202, lambda: batch(event(), event()) + b"\n"),
    "empty batch": (202, lambda: b'{"events":[]}'),
    "events given twice": (400, lambda: b'{"events":[1e400],"events":' + orjson.dumps([event()]) + b"}"),
    "events given twice, valid": (202, lambda: b'{"events":[],"events":' + orjson.dumps([event()]) + b"}"),
    "events key escaped, twice": (
        400,
        lambda: b'{"events":[1e400],"\\u0065vents":' + orjson.dumps([event()]) + b"}",
    ),
    "context given twice, first not JSON": (
        400,
        lambda: _raw_batch(_raw_event(context=b'{"a":1e400},"context":{}')),
    ),
    "context given twice, bad UTF-8": (
        400,
        lambda: _raw_batch(_raw_event(context=b'{"a":"\xff"},"context":{"b":1}')),
    ),
    "context given twice, valid": (202, lambda: _raw_batch(_raw_event(context=b'{"a":1},"context":{"b":2}'))),
    "properties given twice": (
        202,
        lambda: _raw_batch(
            _raw_event(
                properties=b'{"track_id":"t1"},"properties":{"track_id":"t2","artist_id":"a2","duration_seconds":3}'
            )
        ),
    ),
    "properties given twice, first invalid": (
        202,
        lambda: _raw_batch(
            _raw_event(
                properties=b'{"x":1},"properties":{"track_id":"t2","artist_id":"a2","duration_seconds":3}'
            )
        ),
    ),
    "type given twice": (
        202,
        lambda: _raw_batch(_raw_event(type=b'"custom.x","type":"player.track_played"')),
    ),
    "bad UTF-8 in a property": (
        400,
        lambda: _raw_batch(
            _raw_event(properties=b'{"track_id":"t\xff","artist_id":"a1","duration_seconds":3}')
        ),
    ),
    "lone surrogate escape": (
        400,
        lambda: _raw_batch(
            _raw_event(properties=b'{"track_id":"t\\ud800","artist_id":"a1","duration_seconds":3}')
        ),
    ),
    "escaped non-ASCII and NUL spelled with escapes": (
        202,
        lambda: _raw_batch(
            _raw_event(properties=b'{"track_id":"Z\\u00fcrich","artist_id":"a\\u0031","duration_seconds":3}'),
            _raw_event(properties=b'{"track_id":"\\u005cu0000","artist_id":"a1","duration_seconds":3}'),
            _raw_event(properties=b'{"track_id":"\\\\\\u00750000","artist_id":"a1","duration_seconds":3}'),
            _raw_event(user_id=b'"\\u0000"'),
        ),
    ),
    "integer spelled -0 and with an exponent": (
        202,
        lambda: _raw_batch(
            _raw_event(properties=b'{"track_id":"t1","artist_id":"a1","duration_seconds":-0}'),
            _raw_event(properties=b'{"track_id":"t1","artist_id":"a1","duration_seconds":1e2}'),
        ),
    ),
    "huge integer": (
        202,
        lambda: _raw_batch(
            _raw_event(
                properties=b'{"track_id":"t1","artist_id":"a1","duration_seconds":18446744073709551616}'
            ),
            _raw_event(context=b'{"n":18446744073709551616123}'),
        ),
    ),
    "context nested deeper than orjson writes": (
        202,
        lambda: _raw_batch(_raw_event(context=b'{"a":' + b"[" * 300 + b"]" * 300 + b"}")),
    ),
    "deeply nested context": (
        202,
        lambda: _raw_batch(_raw_event(context=b'{"a":' + b"[" * 990 + b"]" * 990 + b"}")),
    ),
    "too deeply nested context": (
        400,
        lambda: _raw_batch(_raw_event(context=b'{"a":' + b"[" * 1030 + b"]" * 1030 + b"}")),
    ),
    "too many events": (413, lambda: batch(*[event() for _ in range(1001)])),
}


@pytest.mark.parametrize("case", RAW_BODIES)
def test_each_unusual_body_answers_and_stores_as_the_long_path_does(
    client: Client, keys: Keys, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    status, body = RAW_BODIES[case]
    response = post_both_ways(client, keys, body(), monkeypatch)
    assert response.status_code == status, response.content


@pytest.fixture
def deep_recursion() -> Iterator[None]:
    """A process that may recurse deeper than by default: msgspec then reads JSON deeper than orjson does."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(5000)
    yield
    sys.setrecursionlimit(limit)


@pytest.mark.parametrize("depth", [1021, 1022, 1023])
def test_json_nested_past_orjsons_limit_is_malformed_as_before(
    client: Client, keys: Keys, monkeypatch: pytest.MonkeyPatch, deep_recursion: None, depth: int
) -> None:
    nested = b"[" * depth + b"]" * depth  # orjson refuses a body nested over 1024 levels: from 1022 here
    body = _raw_batch(_raw_event(event_id=b"5", context=nested))
    response = post_both_ways(client, keys, body, monkeypatch)
    assert response.status_code == (202 if depth < 1022 else 400)


def test_event_size_limit_in_a_large_body(
    client: Client, keys: Keys, monkeypatch: pytest.MonkeyPatch, fast_accepted: list[int]
) -> None:
    limit = django_settings.INGEST_EVENT_MAX_BYTES
    raw_events = [orjson.dumps(event()) for _ in range(150)]  # a body over the limit: each event is measured
    near = orjson.dumps(event(context={"pad": "x" * (limit - 250)}))
    assert limit - 300 < len(near) <= limit
    raw_events.append(near)  # the raw-length bound says "maybe": measured, and under
    raw_events.append(orjson.dumps(event(context={"pad": "x" * limit})))  # over
    raw_events.append(_raw_event(context=b'{"n":[' + b",".join([b"1e5"] * (limit // 6)) + b"]}"))  # over once
    raw_events.append(orjson.dumps(event("custom.big", properties={"pad": "y" * limit})))  # over, long path
    response = post_both_ways(client, keys, _raw_batch(*raw_events), monkeypatch)
    assert response.status_code == 202
    assert [r["index"] for r in response.json()["rejected"]] == [151, 152, 153]
    assert response.json()["accepted"] == 151
    assert fast_accepted == [153]


def test_a_repeated_request_is_all_duplicates(
    client: Client, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = batch(event(), event("coliseum.vote_cast"), event("custom.thing"))
    post_both_ways(client, keys, body, monkeypatch)
    response = post_both_ways(client, keys, body, monkeypatch)
    assert response.json() == {"accepted": 0, "duplicates": 3, "rejected": []}


# A valid event, then one of a few mutations (or none): batches mixing what each path takes.
MUTATIONS: list[Callable[[dict[str, Any]], Any]] = [
    lambda e: e,
    lambda e: {**e, "properties": {**e["properties"], "extra": 1}},
    lambda e: {k: v for k, v in e.items() if k != "user_id"},
    lambda e: {**e, "occurred_at": e["occurred_at"].replace("+00:00", "")},
    lambda e: {**e, "event_id": e["event_id"].upper()},
    lambda e: {**e, "context": {"ip": "10.0.0.1", "ratio": 0.25}},
    lambda e: {**e, "session_id": "s" * 201},
    lambda e: {**e, "user_id": "f\x00n"},
    lambda e: {**e, "type": "custom.other"},
]
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)


@st.composite
def mixed_events(draw: st.DrawFn) -> Any:
    base = event(draw(st.sampled_from(sorted(CATALOG))))
    mutated = draw(st.sampled_from(MUTATIONS))(base)
    if draw(st.booleans()) and isinstance(mutated, dict) and isinstance(mutated.get("properties"), dict):
        props = mutated["properties"]
        name = draw(st.sampled_from(sorted(props) or ["x"]))
        mutated = {**mutated, "properties": {**props, name: draw(json_scalars)}}
    return mutated


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(mixed_events(), max_size=12))
def test_random_mixed_batches_answer_and_store_as_the_long_path_does(
    client: Client, keys: Keys, monkeypatch: pytest.MonkeyPatch, events: list[Any]
) -> None:
    response = post_both_ways(client, keys, batch(*events), monkeypatch)
    assert response.status_code in (202, 400)
