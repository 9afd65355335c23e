"""Attribution: every conversion concerning an artist is credited to the same fan's last touch of that artist
within the tenant's lookback window.

- Conversions: treasury.money_spent, concierto.event_attended, coliseum.vote_cast with an artist.
- Touches: player.track_played, social.track_shared, social.artist_followed, and any event with an artist
  whose context carries a campaign or a source. "Last" orders by (occurred_at, event_id in byte order), so
  the answer depends only on which events exist, never on the order they arrived in. A touch at the
  conversion's own instant counts; the conversion event never touches itself.
- Incremental and exact under late events, with the processor's batches as input (`attribution_apply_rows`
  runs in the batch transaction): every touch is recorded in `funnels_touch`, keyed exactly as a conversion
  looks it up (tenant, fan, artist, time, event id), before the batch's conversions look theirs up there, so
  touches of the same batch or any earlier one are seen; a touch takes over the already-stored conversions it
  now precedes most closely. Both sides hold a per-(tenant, fan) advisory lock until commit, so a conversion
  and a touch of one fan processed concurrently by two workers cannot miss each other.
- Erasure of a fan deletes their rows, touches included (`attributions_erase_user`): a fan's touches only ever
  credit the same fan's conversions, so nobody else's attribution changes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from typing import Any, Protocol

import psycopg
from django.db import connection, transaction

from ingestion.funnels.models import DEFAULT_LOOKBACK_DAYS, AttributedConversion, AttributionSettings
from ingestion.funnels.selectors import fan_conversions, fan_key

CONVERSION_TYPES = ("treasury.money_spent", "concierto.event_attended", "coliseum.vote_cast")
TOUCH_TYPES = ("player.track_played", "social.track_shared", "social.artist_followed")
DIRECT = "direct"
# Advisory lock namespace (first int4 key) for "attribution of one fan of one tenant".
FAN_LOCK_NAMESPACE = 730_309


class LoggedRef(Protocol):
    """What attribution needs of a processed event: its log row's key (the processor's LoggedEvent has it)."""

    pk: int
    occurred_at: Any


# What attribution needs of one log row: (log id, event id, type, occurred_at, fan, artist, amount_minor,
# currency, source), source being the campaign source or None (see SOURCE_SQL). The processor reads these in
# its claim; `attribution_apply` reads them from the log.
AttributionRow = tuple[int, str, str, datetime, str, int | None, int | None, str, str | None]

# The touch's source: a Segment-style context.campaign.source (or its name), else a plain context.source.
SOURCE_SQL = """COALESCE(NULLIF(e.context->'campaign'->>'source', ''),
    NULLIF(e.context->'campaign'->>'name', ''),
    CASE WHEN jsonb_typeof(e.context->'source') = 'string' THEN NULLIF(e.context->>'source', '') END)"""


def attribution_settings_update(*, tenant_id: int, lookback_days: int) -> AttributionSettings:
    """Set a tenant's lookback window (1 to 365 days); the stored conversions are re-decided with it."""
    if not 1 <= lookback_days <= 365:
        raise ValueError("lookback_days must be between 1 and 365")
    row, _ = AttributionSettings.objects.update_or_create(
        tenant_id=tenant_id, defaults={"lookback_days": lookback_days}
    )
    attributions_recompute(tenant_id=tenant_id)
    return row


def _cursor() -> psycopg.Cursor[Any]:
    from coliseum.rls import raw_connection

    return psycopg.Cursor(raw_connection())  # with the row-level security scope in place


# Parameters travel in binary (`%(name)b`): text-format arrays are quoted element by element in Python (a
# regex per element), about a third of the touches statement's time.
_LOAD_SQL = f"""
SELECT e.id, e.event_id, e.type, e.occurred_at, e.user_id, e.artist_id, e.amount_minor, e.currency,
       {SOURCE_SQL} AS source
FROM unnest(%(pks)b::bigint[], %(times)b::timestamptz[]) AS k(id, occurred_at)
-- the log's primary key (id, occurred_at), one probe per row; partitions are pruned at run time per row (a
-- time span would scan everything between a late event and now)
JOIN ingestion_event e ON e.id = k.id AND e.occurred_at = k.occurred_at
WHERE e.tenant_id = %(tenant_id)b AND e.artist_id IS NOT NULL
"""  # noqa: S608 - constant fragments

# For each conversion of the batch, the fan's last touch of the artist within the lookback: one backward probe
# of funnels_touch_lookup per conversion (LATERAL), which is that table's only index.
_CONVERSIONS_UPSERT_SQL = """
INSERT INTO funnels_attributedconversion AS c (
    tenant_id, artist_id, user_id, conversion_pk, conversion_event_id, conversion_type, conversion_at,
    amount_minor, currency, touch_pk, touch_event_id, touch_type, touch_at, source, updated_at)
SELECT %(tenant_id)b, v.artist_id, v.user_id, v.id, v.event_id, v.type, v.occurred_at, v.amount_minor,
       v.currency, t.touch_pk, t.event_id, t.type, t.occurred_at, t.source, now()
FROM unnest(%(c_pk)b::bigint[], %(c_eid)b::text[], %(c_type)b::text[], %(c_at)b::timestamptz[],
            %(c_user)b::text[], %(c_artist)b::bigint[], %(c_amount)b::bigint[], %(c_cur)b::text[])
     AS v(id, event_id, type, occurred_at, user_id, artist_id, amount_minor, currency)
LEFT JOIN LATERAL (
    SELECT t.touch_pk, t.event_id, t.type, t.occurred_at, t.source
    FROM funnels_touch t
    WHERE t.tenant_id = %(tenant_id)b AND t.user_id = v.user_id AND t.artist_id = v.artist_id
      AND t.occurred_at <= v.occurred_at AND t.occurred_at >= v.occurred_at - %(lookback)b
      AND t.event_id <> v.event_id
    ORDER BY t.occurred_at DESC, t.event_id COLLATE "C" DESC
    LIMIT 1
) t ON true
ORDER BY v.event_id, v.artist_id
ON CONFLICT (tenant_id, conversion_event_id, artist_id) DO UPDATE SET
    touch_pk = EXCLUDED.touch_pk, touch_event_id = EXCLUDED.touch_event_id, touch_type = EXCLUDED.touch_type,
    touch_at = EXCLUDED.touch_at, source = EXCLUDED.source, updated_at = now()
"""

# The batch's touches, in one statement (the arrays travel once): recorded in funnels_touch (the
# conversions upsert that follows sees them), and each stored conversion of the same fan and artist that a
# touch now precedes most closely (within the lookback, and later than its current touch) is re-attributed to
# the best of them (late touches). The touches are inserted plainly (see _touches_apply for when a touch is
# already there).
_TOUCHES_APPLY_SQL = """
WITH t AS (
    SELECT t.*, %(tenant_id)b::bigint::text || ':' || t.user_id AS fan_key
    FROM unnest(%(t_pk)b::bigint[], %(t_eid)b::text[], %(t_type)b::text[], %(t_at)b::timestamptz[],
                %(t_user)b::text[], %(t_artist)b::bigint[], %(t_source)b::text[])
         AS t(id, event_id, type, occurred_at, user_id, artist_id, source)
), recorded AS (
    INSERT INTO funnels_touch (tenant_id, user_id, artist_id, occurred_at, event_id, touch_pk, type, source)
    SELECT %(tenant_id)b, t.user_id, t.artist_id, t.occurred_at, t.event_id, t.id, t.type, t.source FROM t
    {on_conflict}
)
UPDATE funnels_attributedconversion c
SET touch_pk = b.id, touch_event_id = b.event_id, touch_type = b.type, touch_at = b.occurred_at,
    source = b.source, updated_at = now()
FROM (
    SELECT DISTINCT ON (c2.id) c2.id AS conversion_row, t.*
    FROM t
    -- LATERAL (not flattened: OFFSET 0): one probe of funnels_conv_fan per touch. As a plain join the
    -- planner hashed every stored conversion of the tenant, each batch, until the tenant had about a million.
    -- By fan_key, which only funnels_conv_fan serves: no tenant_id condition of its own, or a planner without
    -- statistics takes an index led by tenant_id and filters every conversion of the tenant (migration 0005).
    CROSS JOIN LATERAL (
        SELECT c3.id FROM funnels_attributedconversion c3
        WHERE c3.fan_key = t.fan_key AND c3.artist_id = t.artist_id
          AND c3.conversion_at >= t.occurred_at AND c3.conversion_at <= t.occurred_at + %(lookback)b
          AND c3.conversion_event_id <> t.event_id
        OFFSET 0
    ) c2
    ORDER BY c2.id, t.occurred_at DESC, t.event_id COLLATE "C" DESC
) b
WHERE c.id = b.conversion_row
  AND (c.touch_at IS NULL
       OR (c.touch_at, c.touch_event_id COLLATE "C") < (b.occurred_at, b.event_id COLLATE "C"))
"""
_TOUCHES_APPLY_PLAIN_SQL = _TOUCHES_APPLY_SQL.format(on_conflict="")
_TOUCHES_APPLY_IDEMPOTENT_SQL = _TOUCHES_APPLY_SQL.format(on_conflict="ON CONFLICT DO NOTHING")


def attribution_apply(*, tenant_id: int, events: Iterable[LoggedRef]) -> int:
    """Attribute one tenant's logged events, given by their log keys (read from the log here). Call inside
    the batch transaction, or alone (it then opens one). Returns how many conversion rows were written or
    re-attributed. Applying an event twice changes nothing."""
    # Only rows with an artist can be a conversion or a touch (the processor's LoggedEvent carries artist_id;
    # other inputs are all looked up).
    refs = [(e.pk, e.occurred_at) for e in events if getattr(e, "artist_id", True)]
    if not refs:
        return 0
    outer: AbstractContextManager[Any] = nullcontext() if connection.in_atomic_block else transaction.atomic()
    with outer, _cursor() as cursor:
        cursor.execute(
            _LOAD_SQL,
            {"pks": [r[0] for r in refs], "times": [r[1] for r in refs], "tenant_id": tenant_id},
        )
        return _attribute(cursor, tenant_id, cursor.fetchall())


def attribution_apply_rows(*, tenant_id: int, rows: Sequence[AttributionRow]) -> int:
    """Attribute one tenant's rows of a processing batch, as the processor read them (no log read). Call
    inside the batch transaction, after its other writes. Returns conversion rows written or re-attributed."""
    outer: AbstractContextManager[Any] = nullcontext() if connection.in_atomic_block else transaction.atomic()
    with outer, _cursor() as cursor:
        return _attribute(cursor, tenant_id, rows)


def _attribute(cursor: psycopg.Cursor[Any], tenant_id: int, rows: Sequence[AttributionRow]) -> int:
    # Only conversions and touches reach SQL (a ticket view without a campaign is neither), and a batch with
    # neither costs no statement at all.
    conversions = [r for r in rows if r[5] is not None and r[2] in CONVERSION_TYPES]
    touches = [r for r in rows if r[5] is not None and (r[2] in TOUCH_TYPES or r[8] is not None)]
    if not conversions and not touches:
        return 0
    lookback = _fans_lock(cursor, tenant_id, {r[4] for r in (*conversions, *touches)})
    written = 0
    if touches:
        # First: conversions of this same batch then find these touches.
        touches.sort(key=lambda r: (r[4], r[5], r[3], r[1]))  # index order
        written += _touches_apply(
            cursor,
            {
                "tenant_id": tenant_id,
                "lookback": lookback,
                **_arrays("t", touches),
                "t_source": [r[8] or DIRECT for r in touches],
            },
        )
    written += _conversions_attribute(cursor, tenant_id, conversions, lookback)
    return written


def _touches_apply(cursor: psycopg.Cursor[Any], params: dict[str, Any]) -> int:
    """Record and apply a batch's touches. The processor hands each event over once (its claim is
    exactly-once), so the touches are new and a plain INSERT records them: `ON CONFLICT DO NOTHING` costs a
    speculative insertion per row (measured: ~40% of the insert's time, the touch insert being the processor's
    largest statement). A touch that is already recorded (an event applied again through
    `attribution_apply`, or recorded by the migration that filled the table while it was still queued) makes
    the plain statement fail: the batch then rolls back to a savepoint and takes the idempotent statement,
    with the same result."""
    cursor.execute("SAVEPOINT funnels_touches")
    try:
        cursor.execute(_TOUCHES_APPLY_PLAIN_SQL, params)
    except psycopg.errors.UniqueViolation:
        cursor.execute("ROLLBACK TO SAVEPOINT funnels_touches")
        cursor.execute(_TOUCHES_APPLY_IDEMPOTENT_SQL, params)
    written = max(cursor.rowcount, 0)
    cursor.execute("RELEASE SAVEPOINT funnels_touches")
    return written


def _arrays(prefix: str, rows: Sequence[tuple[Any, ...]]) -> dict[str, list[Any]]:
    """Log id, event id, type, time, fan and artist of the rows, one array parameter each (`<prefix>_pk`)."""
    return {f"{prefix}_{name}": [r[i] for r in rows] for i, name in enumerate(_ROW_FIELDS)}


_ROW_FIELDS = ("pk", "eid", "type", "at", "user", "artist")


def _fans_lock(cursor: psycopg.Cursor[Any], tenant_id: int, user_ids: Iterable[str]) -> timedelta:
    """Per-(tenant, fan) transaction locks, taken in sorted order (no deadlock cycles between batches).
    Returns the tenant's lookback, read in the same round trip."""
    cursor.execute(
        "SELECT (SELECT count(pg_advisory_xact_lock(%s, h)) FROM (SELECT DISTINCT hashtext(u) AS h "
        "FROM unnest(%s::text[]) AS u ORDER BY 1) s), "
        "(SELECT lookback_days FROM funnels_attributionsettings WHERE tenant_id = %s)",
        [FAN_LOCK_NAMESPACE, sorted({f"{tenant_id}:{u}" for u in user_ids}), tenant_id],
    )
    row = cursor.fetchone()
    return timedelta(days=(row[1] if row and row[1] else DEFAULT_LOOKBACK_DAYS))


def _conversions_attribute(
    cursor: psycopg.Cursor[Any], tenant_id: int, conversions: list[tuple[Any, ...]], lookback: timedelta
) -> int:
    """Insert or re-decide conversions: (log id, event id, type, time, fan, artist, amount, currency, ...)."""
    if not conversions:
        return 0
    cursor.execute(
        _CONVERSIONS_UPSERT_SQL,
        {
            "tenant_id": tenant_id,
            "lookback": lookback,
            **_arrays("c", conversions),
            "c_amount": [r[6] if r[2] == "treasury.money_spent" else None for r in conversions],
            "c_cur": [r[7] if r[2] == "treasury.money_spent" else "" for r in conversions],
        },
    )
    return max(cursor.rowcount, 0)


RECOMPUTE_CHUNK = 5000
_RECOMPUTE_SQL = """
SELECT conversion_pk, conversion_event_id, conversion_type, conversion_at, user_id, artist_id, amount_minor,
       currency
FROM funnels_attributedconversion WHERE fan_key = ANY(%s) ORDER BY conversion_event_id, artist_id
"""


def attributions_recompute(*, tenant_id: int) -> int:
    """Re-decide every stored conversion of a tenant from the raw log with the tenant's current lookback
    (after a lookback change). Chunked by fan, each chunk under the fans' locks. Returns rows re-decided."""
    fans = sorted(
        set(AttributedConversion.objects.filter(tenant_id=tenant_id).values_list("user_id", flat=True))
    )
    done = 0
    for i in range(0, len(fans), RECOMPUTE_CHUNK):
        chunk = fans[i : i + RECOMPUTE_CHUNK]
        with transaction.atomic(), _cursor() as cursor:
            lookback = _fans_lock(cursor, tenant_id, chunk)
            cursor.execute(_RECOMPUTE_SQL, [[fan_key(tenant_id, user_id) for user_id in chunk]])
            done += _conversions_attribute(cursor, tenant_id, cursor.fetchall(), lookback)
    return done


def attributions_erase_user(*, tenant_id: int, user_id: str) -> int:
    """Delete every attribution row of one fan of one tenant, and their recorded touches (the privacy erasure
    job calls this in its transaction). Returns how many conversion rows were deleted."""
    deleted, _ = fan_conversions(tenant_id=tenant_id, user_id=user_id).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM funnels_touch WHERE tenant_id = %s AND user_id = %s", [tenant_id, user_id]
        )
    return int(deleted)


def touches_drop(*, before: datetime, since: datetime | None = None) -> int:
    """Forget the recorded touches of events that log retention dropped: those that occurred in [since,
    before) (since None: everything before). The conversions already credited keep their credit, as rollups
    outlive raw events. Runs in the caller's transaction, next to the DROP of the events' partition or chunks.
    Returns how many touches went."""
    with connection.cursor() as cursor:
        if since is None:
            cursor.execute("DELETE FROM funnels_touch WHERE occurred_at < %s", [before])
        else:
            cursor.execute(
                "DELETE FROM funnels_touch WHERE occurred_at >= %s AND occurred_at < %s", [since, before]
            )
        return int(cursor.rowcount)
