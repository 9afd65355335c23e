"""Attribution: every conversion concerning an artist is credited to the same fan's last touch of that artist
within the tenant's lookback window.

- Conversions: treasury.money_spent, concierto.event_attended, coliseum.vote_cast with an artist.
- Touches: player.track_played, social.track_shared, social.artist_followed, and any event with an artist
  whose context carries a campaign or a source. "Last" orders by (occurred_at, event_id in byte order), so
  the answer depends only on which events exist, never on the order they arrived in. A touch at the
  conversion's own instant counts; the conversion event never touches itself.
- Incremental and exact under late events, with the processor's batches as input (`attribution_apply` runs in
  the batch transaction): a conversion looks its touch up in the raw log (every event is logged before it is
  processed, so touches of the same batch or any earlier one are seen); a touch takes over the already-stored
  conversions it now precedes most closely. Both sides hold a per-(tenant, fan) advisory lock until commit, so
  a conversion and a touch of one fan processed concurrently by two workers cannot miss each other.
- Erasure of a fan deletes their rows (`attributions_erase_user`): a fan's touches only ever credit the same
  fan's conversions, so nobody else's attribution changes."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from typing import Any, Protocol

import psycopg
from django.db import connection, transaction

from ingestion.funnels.models import DEFAULT_LOOKBACK_DAYS, AttributedConversion, AttributionSettings

CONVERSION_TYPES = ("treasury.money_spent", "concierto.event_attended", "coliseum.vote_cast")
TOUCH_TYPES = ("player.track_played", "social.track_shared", "social.artist_followed")
DIRECT = "direct"
# Advisory lock namespace (first int4 key) for "attribution of one fan of one tenant".
FAN_LOCK_NAMESPACE = 730_309


class LoggedRef(Protocol):
    """What attribution needs of a processed event: its log row's key (the processor's LoggedEvent has it)."""

    pk: int
    occurred_at: Any


# The touch's source: a Segment-style context.campaign.source (or its name), else a plain context.source.
_SOURCE_SQL = """COALESCE(NULLIF(e.context->'campaign'->>'source', ''),
    NULLIF(e.context->'campaign'->>'name', ''),
    CASE WHEN jsonb_typeof(e.context->'source') = 'string' THEN NULLIF(e.context->>'source', '') END)"""
_IS_TOUCH_SQL = f"(e.type = ANY(%(touch_types)s) OR {_SOURCE_SQL} IS NOT NULL)"


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


_LOAD_SQL = f"""
SELECT e.id, e.event_id, e.type, e.occurred_at, e.user_id, e.artist_id, e.amount_minor, e.currency,
       e.type = ANY(%(conversion_types)s) AS is_conversion, {_IS_TOUCH_SQL} AS is_touch,
       COALESCE({_SOURCE_SQL}, %(direct)s) AS source
FROM unnest(%(pks)s::bigint[], %(times)s::timestamptz[]) AS k(id, occurred_at)
-- the log's primary key (id, occurred_at), one probe per row; partitions are pruned at run time per row (a
-- time span would scan everything between a late event and now)
JOIN ingestion_event e ON e.id = k.id AND e.occurred_at = k.occurred_at
WHERE e.tenant_id = %(tenant_id)s AND e.artist_id IS NOT NULL
  AND (e.type = ANY(%(conversion_types)s) OR {_IS_TOUCH_SQL})
"""  # noqa: S608 - constant fragments

# For each conversion of the batch, its last touch in the log (LATERAL: one index probe per conversion).
_CONVERSIONS_UPSERT_SQL = f"""
INSERT INTO funnels_attributedconversion AS c (
    tenant_id, artist_id, user_id, conversion_pk, conversion_event_id, conversion_type, conversion_at,
    amount_minor, currency, touch_pk, touch_event_id, touch_type, touch_at, source, updated_at)
SELECT %(tenant_id)s, v.artist_id, v.user_id, v.id, v.event_id, v.type, v.occurred_at, v.amount_minor,
       v.currency, t.id, t.event_id, t.type, t.occurred_at, t.source, now()
FROM unnest(%(c_pk)s::bigint[], %(c_eid)s::text[], %(c_type)s::text[], %(c_at)s::timestamptz[],
            %(c_user)s::text[], %(c_artist)s::bigint[], %(c_amount)s::bigint[], %(c_cur)s::text[])
     AS v(id, event_id, type, occurred_at, user_id, artist_id, amount_minor, currency)
LEFT JOIN LATERAL (
    SELECT e.id, e.event_id, e.type, e.occurred_at, COALESCE({_SOURCE_SQL}, %(direct)s) AS source
    FROM ingestion_event e
    WHERE e.tenant_id = %(tenant_id)s AND e.user_id = v.user_id AND e.artist_id = v.artist_id
      AND e.occurred_at <= v.occurred_at AND e.occurred_at >= v.occurred_at - %(lookback)s
      AND e.event_id <> v.event_id AND {_IS_TOUCH_SQL}
    ORDER BY e.occurred_at DESC, e.event_id COLLATE "C" DESC
    LIMIT 1
) t ON true
ORDER BY v.event_id, v.artist_id
ON CONFLICT (tenant_id, conversion_event_id, artist_id) DO UPDATE SET
    touch_pk = EXCLUDED.touch_pk, touch_event_id = EXCLUDED.touch_event_id, touch_type = EXCLUDED.touch_type,
    touch_at = EXCLUDED.touch_at, source = EXCLUDED.source, updated_at = now()
"""  # noqa: S608 - constant fragments

# Late touches: each stored conversion of the same fan and artist that the batch's touches now precede most
# closely (within the lookback, and later than its current touch) is re-attributed to the best of them.
_TOUCHES_APPLY_SQL = """
UPDATE funnels_attributedconversion c
SET touch_pk = b.id, touch_event_id = b.event_id, touch_type = b.type, touch_at = b.occurred_at,
    source = b.source, updated_at = now()
FROM (
    SELECT DISTINCT ON (c2.id) c2.id AS conversion_row, t.*
    FROM unnest(%(t_pk)s::bigint[], %(t_eid)s::text[], %(t_type)s::text[], %(t_at)s::timestamptz[],
                %(t_user)s::text[], %(t_artist)s::bigint[], %(t_source)s::text[])
         AS t(id, event_id, type, occurred_at, user_id, artist_id, source)
    JOIN funnels_attributedconversion c2
      ON c2.tenant_id = %(tenant_id)s AND c2.user_id = t.user_id AND c2.artist_id = t.artist_id
     AND c2.conversion_at >= t.occurred_at AND c2.conversion_at <= t.occurred_at + %(lookback)s
     AND c2.conversion_event_id <> t.event_id
    ORDER BY c2.id, t.occurred_at DESC, t.event_id COLLATE "C" DESC
) b
WHERE c.id = b.conversion_row
  AND (c.touch_at IS NULL
       OR (c.touch_at, c.touch_event_id COLLATE "C") < (b.occurred_at, b.event_id COLLATE "C"))
"""


def attribution_apply(*, tenant_id: int, events: Iterable[LoggedRef]) -> int:
    """Attribute one tenant's processed events (call inside the batch transaction). Returns how many
    conversion rows were written or re-attributed."""
    # Only rows with an artist can be a conversion or a touch (the processor's LoggedEvent carries artist_id;
    # other inputs are all looked up).
    refs = [(e.pk, e.occurred_at) for e in events if getattr(e, "artist_id", True)]
    if not refs:
        return 0
    # In the processor's batch transaction already: no savepoint round trips. Called on its own, the locks
    # need a transaction to live in.
    outer: AbstractContextManager[Any] = nullcontext() if connection.in_atomic_block else transaction.atomic()
    with outer, _cursor() as cursor:
        cursor.execute(
            _LOAD_SQL,
            {
                "pks": [r[0] for r in refs],
                "times": [r[1] for r in refs],
                "tenant_id": tenant_id,
                "conversion_types": list(CONVERSION_TYPES),
                "touch_types": list(TOUCH_TYPES),
                "direct": DIRECT,
            },
        )
        rows = cursor.fetchall()
        if not rows:
            return 0
        lookback = _fans_lock(cursor, tenant_id, (r[4] for r in rows))
        written = 0
        conversions = [r for r in rows if r[8]]
        touches = [r for r in rows if r[9]]
        if touches:
            # Touches first: conversions of this same batch are then inserted already attributed.
            cursor.execute(
                _TOUCHES_APPLY_SQL,
                {
                    "tenant_id": tenant_id,
                    "lookback": lookback,
                    "t_pk": [r[0] for r in touches],
                    "t_eid": [r[1] for r in touches],
                    "t_type": [r[2] for r in touches],
                    "t_at": [r[3] for r in touches],
                    "t_user": [r[4] for r in touches],
                    "t_artist": [r[5] for r in touches],
                    "t_source": [r[10] for r in touches],
                },
            )
            written += max(cursor.rowcount, 0)
        written += _conversions_attribute(cursor, tenant_id, conversions, lookback)
    return written


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
            "direct": DIRECT,
            "touch_types": list(TOUCH_TYPES),
            "c_pk": [r[0] for r in conversions],
            "c_eid": [r[1] for r in conversions],
            "c_type": [r[2] for r in conversions],
            "c_at": [r[3] for r in conversions],
            "c_user": [r[4] for r in conversions],
            "c_artist": [r[5] for r in conversions],
            "c_amount": [r[6] if r[2] == "treasury.money_spent" else None for r in conversions],
            "c_cur": [r[7] if r[2] == "treasury.money_spent" else "" for r in conversions],
        },
    )
    return max(cursor.rowcount, 0)


RECOMPUTE_CHUNK = 5000


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
            cursor.execute(
                "SELECT conversion_pk, conversion_event_id, conversion_type, conversion_at, user_id, "
                "artist_id, amount_minor, currency FROM funnels_attributedconversion "
                "WHERE tenant_id = %s AND user_id = ANY(%s) ORDER BY conversion_event_id, artist_id",
                [tenant_id, chunk],
            )
            done += _conversions_attribute(cursor, tenant_id, cursor.fetchall(), lookback)
    return done


def attributions_erase_user(*, tenant_id: int, user_id: str) -> int:
    """Delete every attribution row of one fan of one tenant (the privacy erasure job calls this in its
    transaction). Returns how many rows were deleted."""
    deleted, _ = AttributedConversion.objects.filter(tenant_id=tenant_id, user_id=user_id).delete()
    return int(deleted)
