"""The one write path for events: validate, dedupe, append to the log and queue for processing.

`event_batch_ingest` is what every producer calls (webhook, Segment API, import, seed_demo, Stripe money
events). On return the accepted events are committed: dedupe keys, log rows and queue rows are written by one
SQL statement (a CTE) in one transaction, so there is no window in which an event is acknowledged but not
durable, or logged but not queued."""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import psycopg
from django.db import connection, transaction

from coliseum.models import Tenant
from coliseum.services import artists_resolve, shows_resolve
from ingestion.catalog import TYPE_PATTERN, properties_validate

logger = logging.getLogger(__name__)

SOURCES = ("passport", "segment", "import", "internal")

UserId = msgspec.Meta(min_length=1, max_length=200)


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


@dataclass(slots=True)
class _Row:
    event_id: str
    type: str
    occurred_at: datetime
    user_id: str
    session_id: str | None
    device_id: str | None
    artist_ext: str | None
    show_ext: str | None
    city: str
    genre: str
    amount_minor: int | None
    currency: str
    properties: dict[str, Any]
    context: dict[str, Any]


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


def event_validate(raw: Any, *, source: str) -> tuple[_Row | None, list[str]]:
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
    # PostgreSQL text and jsonb cannot hold NUL: refuse it here rather than fail the whole batch's statement.
    if any("\x00" in v for v in (event_id or "", env.user_id, env.session_id or "", env.device_id or "")) or (
        (env.properties and b"\\u0000" in orjson.dumps(env.properties))
        or (env.context and b"\\u0000" in orjson.dumps(env.context))
    ):
        errors.append("event: NUL characters are not allowed")
    if len(env.type) > 100 or not TYPE_PATTERN.match(env.type):
        errors.append("type: expected 'domain.action'")
        return None, errors
    props, prop_errors = properties_validate(env.type, env.properties)
    errors.extend(prop_errors)
    if errors or props is None or event_id is None:
        return None, errors
    occurred = env.occurred_at.astimezone(UTC)
    if not (1970 <= occurred.year <= 9000):
        return None, ["occurred_at: out of range"]
    amount = props.get("amount_minor")
    return (
        _Row(
            event_id=event_id,
            type=env.type,
            occurred_at=occurred,
            user_id=env.user_id,
            session_id=env.session_id,
            device_id=env.device_id,
            artist_ext=_str_or_none(props.get("artist_id")),
            show_ext=_str_or_none(props.get("show_id")),
            city=_str_or_none(props.get("city")) or "",
            genre=_str_or_none(props.get("genre")) or "",
            amount_minor=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
            currency=_str_or_none(props.get("currency")) or "",
            properties=props,
            context=env.context,
        ),
        [],
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# One statement, one round trip: claim the dedupe keys (ON CONFLICT DO NOTHING RETURNING gives exactly the
# ids no one has logged before, and makes a racing duplicate wait for the first writer's commit), log only
# those, and queue them for processing. Duplicates inside one request are removed before this runs.
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
    INSERT INTO ingestion_pending (tenant_id, event_pk, occurred_at)
    SELECT %s, id, occurred_at FROM logged
    RETURNING 1
)
SELECT count(*) FROM queued
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


def _rows_insert(*, tenant_id: int, rows: list[_Row], source: str) -> int:
    artist_map = _resolve_cached("artist", tenant_id, {r.artist_ext for r in rows if r.artist_ext})
    show_map = _resolve_cached("show", tenant_id, {r.show_ext for r in rows if r.show_ext})
    # The whole batch travels as ONE json parameter (orjson encodes it in C; PostgreSQL's json_to_recordset
    # decodes it in C): much cheaper than dumping fourteen Python lists element by element.
    document = orjson.dumps(
        [
            {
                "event_id": r.event_id,
                "type": r.type,
                "occurred_at": r.occurred_at,
                "user_id": r.user_id,
                "session_id": r.session_id,
                "device_id": r.device_id,
                "artist_id": artist_map.get(r.artist_ext) if r.artist_ext else None,
                "show_id": show_map.get(r.show_ext) if r.show_ext else None,
                "city": r.city,
                "genre": r.genre,
                "amount_minor": r.amount_minor,
                "currency": r.currency,
                "properties": r.properties,
                "context": r.context,
            }
            for r in rows
        ]
    ).decode()
    from coliseum.rls import raw_connection

    raw = raw_connection()  # with the row-level security scope in place (the tenant's)
    # Server-side binding (Django's psycopg default is client-side quoting of the whole document); psycopg
    # prepares the statement after a few executions.
    with psycopg.Cursor(raw) as cursor:
        cursor.execute(_INSERT_SQL, [document, tenant_id, tenant_id, source, tenant_id])
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def event_batch_ingest(*, tenant: Tenant, events: list[dict[str, Any]], source: str) -> IngestResult:
    """Validate, dedupe and durably log a batch of events for `tenant`. One bad event does not sink the
    batch: it is listed in `rejected` with its index and errors. Duplicates (already logged, or repeated
    within the batch) are counted in `duplicates` and change nothing."""
    rejected: list[dict[str, Any]] = []
    rows: list[_Row] = []
    seen: set[str] = set()
    duplicates = 0
    for index, raw in enumerate(events):
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
    accepted = 0
    if rows and connection.in_atomic_block:
        # Inside the caller's transaction: durable when the caller commits; processing follows it.
        accepted = _rows_insert(tenant_id=tenant.pk, rows=rows, source=source)
        transaction.on_commit(_processing_schedule)
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


def _processing_schedule() -> None:
    from ingestion.tasks import process_pending_schedule

    process_pending_schedule()
