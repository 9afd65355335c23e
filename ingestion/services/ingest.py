"""The one write path for events: validate, dedupe, append to the log and queue for processing.

`event_batch_ingest` is what every producer calls (webhook, Segment API, import, seed_demo, Stripe money
events). On return the accepted events are committed: dedupe keys, log rows and queue rows are written by one
SQL statement (a CTE) in one transaction, so there is no window in which an event is acknowledged but not
durable, or logged but not queued."""

from __future__ import annotations

import logging
import operator
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial, reduce
from typing import Annotated, Any

import msgspec
import orjson
import psycopg
from django.db import connection, transaction

from coliseum.models import Tenant
from coliseum.services import artists_resolve, shows_resolve
from ingestion.catalog import CATALOG, TYPE_PATTERN, properties_validate

logger = logging.getLogger(__name__)

SOURCES = ("passport", "segment", "import", "internal")

UserId = msgspec.Meta(min_length=1, max_length=200)
OptionalId = Annotated[str, msgspec.Meta(max_length=200)] | None


class EventEnvelope(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One event as producers send it (Passport shape; Segment calls are mapped onto it)."""

    event_id: Any
    type: str
    occurred_at: datetime
    user_id: str
    session_id: str | None = None
    device_id: str | None = None
    properties: dict[str, Any] = {}
    context: dict[str, Any] = {}


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]] = field(default_factory=list)


class EventRow(msgspec.Struct, gc=False):
    """One accepted event, shaped as a row of the ingest statement's JSON document (the fields are
    json_to_recordset's columns), so msgspec encodes a whole batch in C. `artist_id` and `show_id` hold the
    producer's external ids until `_rows_document` puts the primary keys in their place. `properties` and
    `context` are JSON already: what orjson writes, or the catalog Struct msgspec writes the same way."""

    event_id: str
    type: str
    occurred_at: datetime
    user_id: str
    session_id: str | None
    device_id: str | None
    artist_id: str | int | None
    show_id: str | int | None
    city: str
    genre: str
    amount_minor: int | None
    currency: str
    properties: msgspec.Raw | msgspec.Struct
    context: msgspec.Raw


_NO_CONTEXT = msgspec.Raw(b"{}")


# str(uuid.UUID(x)) == x for exactly these strings: skip the parse for the form producers send.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _event_id_clean(raw: Any, source: str) -> tuple[str | None, str | None]:
    if source == "passport":
        if not isinstance(raw, str):
            return None, "event_id: expected a UUID string"
        if len(raw) == 36 and _CANONICAL_UUID.fullmatch(raw):
            return raw, None
        try:
            return str(uuid.UUID(raw)), None
        except ValueError:
            return None, "event_id: expected a UUID"
    if isinstance(raw, str) and 1 <= len(raw) <= 200:
        return raw, None
    return None, "event_id: expected a string of 1 to 200 characters"


def event_validate(raw: Any, *, source: str) -> tuple[EventRow | None, list[str]]:
    """One event's full validation: envelope, type, properties. Never raises on any input."""
    if not isinstance(raw, dict):
        return None, ["event: expected an object"]
    try:
        env = msgspec.convert(raw, EventEnvelope, strict=False)
    except msgspec.ValidationError as exc:
        return None, [str(exc)]
    errors: list[str] = []
    event_id, err = _event_id_clean(env.event_id, source)
    if err:
        errors.append(err)
    if env.occurred_at.tzinfo is None:
        errors.append("occurred_at: a time zone offset is required (RFC 3339)")
    if not (1 <= len(env.user_id) <= 200):
        errors.append("user_id: expected 1 to 200 characters")
    for name in ("session_id", "device_id"):
        value = getattr(env, name)
        if value is not None and len(value) > 200:
            errors.append(f"{name}: at most 200 characters")
    # What the log stores, as orjson writes it (callers hand in any Python values; its number and date
    # formats are what jsonb keeps). It refuses what it cannot write, e.g. JSON nested over 254 levels deep.
    properties_json, context_json = json_or_none(env.properties), json_or_none(env.context)
    if properties_json is None or context_json is None:
        errors.append("event: properties or context nested too deeply")
    elif _nul_found((event_id, env.user_id, env.session_id, env.device_id), properties_json, context_json):
        errors.append("event: NUL characters are not allowed")
    if len(env.type) > 100 or not TYPE_PATTERN.match(env.type):
        errors.append("type: expected 'domain.action'")
        return None, errors
    props, prop_errors = properties_validate(env.type, env.properties)
    errors.extend(prop_errors)
    if errors or props is None or event_id is None or properties_json is None or context_json is None:
        return None, errors
    occurred = _occurred_utc(env.occurred_at)
    if occurred is None:
        return None, ["occurred_at: out of range"]
    amount = props.get("amount_minor")
    return (
        EventRow(
            event_id=event_id,
            type=env.type,
            occurred_at=occurred,
            user_id=env.user_id,
            session_id=env.session_id,
            device_id=env.device_id,
            artist_id=_str_or_none(props.get("artist_id")),
            show_id=_str_or_none(props.get("show_id")),
            city=_str_or_none(props.get("city")) or "",
            genre=_str_or_none(props.get("genre")) or "",
            amount_minor=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
            currency=_str_or_none(props.get("currency")) or "",
            properties=msgspec.Raw(properties_json if props is env.properties else orjson.dumps(props)),
            context=msgspec.Raw(context_json),
        ),
        [],
    )


def json_or_none(value: Any) -> bytes | None:
    """`value` as orjson writes it (what the log stores), or None for what it cannot write: JSON nested past
    254 levels parses but does not serialize, and such an event or message is rejected alone, never a 500."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return None


def _nul_found(texts: tuple[str | None, ...], *encoded: bytes) -> bool:
    """PostgreSQL text and jsonb cannot hold NUL: such an event is refused rather than failing the whole
    batch's statement. `encoded`: its properties and context as orjson writes them, NUL as the six characters
    \\u0000 (so a string holding a backslash followed by "u0000" is refused too, as it always has been)."""
    return any(text and "\x00" in text for text in texts) or any(b"\\u0000" in e for e in encoded)


def _occurred_utc(occurred: datetime) -> datetime | None:
    """An aware `occurred_at` in UTC, or None outside the years the log takes (1970..9000)."""
    try:
        utc = occurred.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 pushed past the calendar by its offset
        return None
    return utc if 1970 <= utc.year <= 9000 else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- The Passport webhook's fast path ---------------------------------------------------------------------
# For a valid catalog event, msgspec decodes and checks the whole envelope from the request's bytes in C (one
# tagged Struct per catalog type). Whatever it does not accept (any error, custom.* types, other spellings of
# an id, ...) goes through event_validate unchanged, so refusals and their messages stay exactly as they are;
# the fast path only ever says yes, and only to events event_validate would take with the same row.

_PROPERTY_COLUMNS = ("artist_id", "show_id", "city", "genre", "amount_minor", "currency")


def _property_columns(schema: type[msgspec.Struct]) -> tuple[bool, ...] | None:
    """Which of the log's property columns a type's properties carry, or None when one of them is not a
    string (an int for amount_minor) or None, which is all _passport_row knows how to copy: that type is then
    left to event_validate."""
    struct_info = msgspec.inspect.type_info(schema)
    assert isinstance(struct_info, msgspec.inspect.StructType)
    fields = {f.name: f.type for f in struct_info.fields}
    carried: list[bool] = []
    for name in _PROPERTY_COLUMNS:
        info = fields.get(name)
        carried.append(info is not None)
        if info is None:
            continue
        members = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
        expected = msgspec.inspect.IntType if name == "amount_minor" else msgspec.inspect.StrType
        if not all(isinstance(m, expected | msgspec.inspect.NoneType) for m in members):
            return None
    return tuple(carried)


def _passport_struct(name: str, schema: type[msgspec.Struct]) -> type[msgspec.Struct]:
    return msgspec.defstruct(
        f"Passport{schema.__name__}",
        [
            # 36 characters here; the canonical lowercase form is checked for the whole batch at once
            ("event_id", Annotated[str, msgspec.Meta(min_length=36, max_length=36)]),
            ("occurred_at", Annotated[datetime, msgspec.Meta(tz=True)]),
            ("user_id", Annotated[str, UserId]),
            ("session_id", OptionalId, None),
            ("device_id", OptionalId, None),
            ("properties", schema),
            ("context", msgspec.Raw, _NO_CONTEXT),  # parsed by orjson, as event_validate's input is
        ],
        tag_field="type",
        tag=name,
        forbid_unknown_fields=True,
        kw_only=True,
    )


# Struct class -> (type name, which of _PROPERTY_COLUMNS its properties carry)
_PASSPORT_TYPES: dict[type[msgspec.Struct], tuple[str, tuple[bool, ...]]] = {}
for _spec in CATALOG.values():
    _carried = _property_columns(_spec.schema)
    if _carried is not None:
        _PASSPORT_TYPES[_passport_struct(_spec.name, _spec.schema)] = (_spec.name, _carried)
_PASSPORT_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(reduce(operator.or_, _PASSPORT_TYPES))
_CANONICAL_UUIDS = re.compile(f"(?:{_CANONICAL_UUID.pattern})*")


def passport_events_prevalidate(raw_events: Sequence[msgspec.Raw], *, escapes: bool) -> list[Any] | None:
    """The events of one Passport webhook body, as their raw JSON: an EventRow for each one the fast path
    accepts (event_batch_ingest takes it as validated), else the event as orjson parses it, for
    event_validate. None when an event is not JSON that orjson accepts: the caller then parses the body the
    usual way, for the usual answer. `escapes`: whether the body holds a backslash at all (without one, no
    string in it can hold a NUL or a backslash, and the NUL check is skipped)."""
    events: list[Any] = []
    event_ids: list[str] = []
    for raw in raw_events:
        row = _passport_row(raw, escapes)
        if row is None:
            try:
                events.append(_parsed_in_body(raw))
            except orjson.JSONDecodeError:
                return None
        else:
            events.append(row)
            event_ids.append(row.event_id)
    # One regex call for the batch rather than one an event (each id is 36 characters, so the pattern's
    # pieces are exactly the ids); an id spelled another way is normalised or refused by event_validate.
    if not _CANONICAL_UUIDS.fullmatch("".join(event_ids)):
        for index, event in enumerate(events):
            if isinstance(event, EventRow) and not _CANONICAL_UUID.fullmatch(event.event_id):
                events[index] = _parsed_in_body(raw_events[index])
    return events


def _parsed_in_body(raw: msgspec.Raw) -> Any:
    """The event as orjson parses it two levels down, where it sits in the body: orjson refuses JSON nested
    more than 1024 levels deep, so this fails exactly when parsing the whole body would."""
    return orjson.loads(b"[[%b]]" % raw)[0][0]


def _passport_row(raw: msgspec.Raw, escapes: bool) -> EventRow | None:
    try:
        event = _PASSPORT_DECODER.decode(raw)
    except (msgspec.DecodeError, ValueError, RecursionError):  # ValueError: bad UTF-8
        return None
    occurred = _occurred_utc(event.occurred_at)
    if occurred is None:
        return None
    text = bytes(raw) if escapes or event.context is not _NO_CONTEXT else b""
    escaped = b"\\" in text
    context = event.context
    if context is not _NO_CONTEXT:
        # msgspec skips over a key given twice without all of orjson's checks (the last one wins in both): a
        # context named more than once, or with escapes, goes the long way.
        if escaped or text.count(b'"context"') != 1:
            return None
        try:
            parsed = orjson.loads(memoryview(context))
        except orjson.JSONDecodeError:
            return None
        encoded = json_or_none(parsed) if isinstance(parsed, dict) else None
        if encoded is None:
            return None
        context = msgspec.Raw(encoded)
    props = event.properties
    ids = (event.event_id, event.user_id, event.session_id, event.device_id)
    if escaped and _nul_found(ids, orjson.dumps(msgspec.to_builtins(props))):
        return None
    name, (artist, show, city, genre, amount, currency) = _PASSPORT_TYPES[type(event)]
    return EventRow(
        event.event_id,
        name,
        occurred,
        event.user_id,
        event.session_id,
        event.device_id,
        (props.artist_id or None) if artist else None,
        (props.show_id or None) if show else None,
        (props.city or "") if city else "",
        (props.genre or "") if genre else "",
        props.amount_minor if amount else None,
        (props.currency or "") if currency else "",
        props,
        context,
    )


# One statement, one round trip: claim the dedupe keys (ON CONFLICT DO NOTHING RETURNING gives exactly the
# ids no one has logged before, and makes a racing duplicate wait for the first writer's commit), log only
# those, and queue them for processing as ONE queue row holding their log ids and occurred_at values (the two
# array_agg run in one aggregate over the same rows, so their elements line up); HAVING leaves an
# all-duplicate request with no row. Duplicates inside one request are removed before this runs.
_INSERT_SQL = """
WITH batch AS (
    SELECT * FROM json_to_recordset(%s::json) AS b(
        event_id text, type text, occurred_at timestamptz, user_id text, session_id text, device_id text,
        artist_id bigint, show_id bigint, city text, genre text, amount_minor bigint, currency text,
        properties jsonb, context jsonb)
), fresh AS (
    INSERT INTO ingestion_event_key (tenant_id, event_id)
    SELECT %s, event_id FROM batch
    ON CONFLICT DO NOTHING
    RETURNING event_id
), logged AS (
    INSERT INTO ingestion_event (tenant_id, event_id, type, occurred_at, user_id, session_id, device_id,
        artist_id, show_id, city, genre, amount_minor, currency, properties, context, source)
    SELECT %s, b.event_id, b.type, b.occurred_at, b.user_id, b.session_id, b.device_id, b.artist_id,
        b.show_id, b.city, b.genre, b.amount_minor, b.currency, b.properties, b.context, %s
    FROM batch b JOIN fresh USING (event_id)
    RETURNING id, occurred_at
), queued AS (
    INSERT INTO ingestion_pending (tenant_id, event_count, event_pks, occurred_ats)
    SELECT %s, count(*), array_agg(id), array_agg(occurred_at) FROM logged
    HAVING count(*) > 0
    RETURNING event_count
)
SELECT coalesce(sum(event_count), 0) FROM queued
"""


# External id -> pk, per process. The mapping does not change once a row exists (resolve creates on first
# sight), so caching it saves two round trips per request on the hot path. Bounded in size, and dropped every
# few minutes so an operator's delete of an artist or show is picked up.
_RESOLVED_MAX = 200_000
_RESOLVED_TTL_SECONDS = 300.0
_resolved: dict[tuple[str, int, str], int] = {}
_resolved_since = [time.monotonic()]


def _resolve_cached(kind: str, tenant_id: int, external_ids: set[str]) -> dict[str, int]:
    if time.monotonic() - _resolved_since[0] > _RESOLVED_TTL_SECONDS:
        _resolved.clear()
        _resolved_since[0] = time.monotonic()
    found: dict[str, int] = {}
    missing: set[str] = set()
    for external_id in external_ids:
        pk = _resolved.get((kind, tenant_id, external_id))
        if pk is None:
            missing.add(external_id)
        else:
            found[external_id] = pk
    if missing:
        resolve = artists_resolve if kind == "artist" else shows_resolve
        fresh = resolve(tenant_id=tenant_id, external_ids=missing)
        if len(_resolved) + len(fresh) > _RESOLVED_MAX:
            _resolved.clear()
        for external_id, pk in fresh.items():
            _resolved[(kind, tenant_id, external_id)] = pk
        found.update(fresh)
    return found


_DOCUMENT_ENCODER = msgspec.json.Encoder()


def _rows_document(*, tenant_id: int, rows: list[EventRow]) -> str:
    """The batch as ONE json parameter (msgspec encodes the row Structs in C; PostgreSQL's json_to_recordset
    decodes it in C): much cheaper than dumping fourteen Python lists element by element."""
    artist_map = _resolve_cached(
        "artist", tenant_id, {r.artist_id for r in rows if isinstance(r.artist_id, str)}
    )
    show_map = _resolve_cached("show", tenant_id, {r.show_id for r in rows if isinstance(r.show_id, str)})
    for r in rows:
        if isinstance(r.artist_id, str):
            r.artist_id = artist_map.get(r.artist_id)
        if isinstance(r.show_id, str):
            r.show_id = show_map.get(r.show_id)
    return _DOCUMENT_ENCODER.encode(rows).decode()


def _rows_insert(*, tenant_id: int, rows: list[EventRow], source: str) -> int:
    document = _rows_document(tenant_id=tenant_id, rows=rows)
    from coliseum.rls import raw_connection

    raw = raw_connection()  # with the row-level security scope in place (the tenant's)
    # Server-side binding (Django's psycopg default is client-side quoting of the whole document); psycopg
    # prepares the statement after a few executions.
    with psycopg.Cursor(raw) as cursor:
        cursor.execute(_INSERT_SQL, [document, tenant_id, tenant_id, source, tenant_id])
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def event_batch_ingest(
    *, tenant: Tenant, events: Sequence[dict[str, Any] | EventRow], source: str
) -> IngestResult:
    """Validate, dedupe and durably log a batch of events for `tenant`. One bad event does not sink the
    batch: it is listed in `rejected` with its index and errors. Duplicates (already logged, or repeated
    within the batch) are counted in `duplicates` and change nothing. An EventRow in `events` (from
    passport_events_prevalidate) has been validated already."""
    rows, rejected, duplicates = _batch_validate(events, source=source)
    accepted = 0
    if rows and connection.in_atomic_block:
        # Inside the caller's transaction: durable when the caller commits; processing follows it.
        accepted = _rows_insert(tenant_id=tenant.pk, rows=rows, source=source)
        transaction.on_commit(partial(_processing_schedule, accepted=accepted))
        from ingestion.services.stats import stats_count

        stats_count(accepted=accepted, rejected=len(rejected), tenant_id=tenant.pk)
    else:
        if rows:
            # Keys, log and queue rows are written by ONE statement, which PostgreSQL runs atomically in its
            # own implicit transaction: committed when it returns, without BEGIN/COMMIT round trips.
            accepted = _rows_insert(tenant_id=tenant.pk, rows=rows, source=source)
        from ingestion.tasks import process_pending_schedule

        if accepted:
            process_pending_schedule(accepted=accepted, rejected=len(rejected), tenant_id=tenant.pk)
        elif rejected:
            from ingestion.services.stats import stats_count

            stats_count(rejected=len(rejected))
    duplicates += len(rows) - accepted
    return IngestResult(accepted=accepted, duplicates=duplicates, rejected=rejected)


def _batch_validate(
    events: Sequence[Any], *, source: str
) -> tuple[list[EventRow], list[dict[str, Any]], int]:
    """(rows to log, rejections, duplicates within the batch)."""
    rejected: list[dict[str, Any]] = []
    rows: list[EventRow] = []
    seen: set[str] = set()
    duplicates = 0
    for index, raw in enumerate(events):
        row: EventRow | None
        errors: list[str]
        if isinstance(raw, EventRow):
            row, errors = raw, []
        else:
            row, errors = event_validate(raw, source=source)
        if row is None:
            raw_id = raw.get("event_id") if isinstance(raw, dict) else None
            rejected.append(
                {
                    "index": index,
                    "event_id": raw_id if isinstance(raw_id, str) and len(raw_id) <= 200 else None,
                    "errors": errors,
                }
            )
            continue
        if row.event_id in seen:
            duplicates += 1
            continue
        seen.add(row.event_id)
        rows.append(row)
    return rows, rejected, duplicates


def _processing_schedule(*, accepted: int) -> None:
    from ingestion.tasks import process_pending_schedule

    process_pending_schedule(large=accepted)
