"""One data subject's rows in the event-log tables: gathering them for an export, and erasing them.

Owned here (plain SQL next to the tables, see the STYLE guide); the privacy app calls these two services.

Erasure runs in ONE transaction holding the tenant's advisory lock exclusively (processing holds it shared,
backfill exclusively), so no increment for that tenant is in flight while the touched buckets are rebuilt:
1. the subject's log rows (hot partitions and the `archive` schema), their dedupe keys, their identify
   traits, listener rows and counted votes are deleted. Their queued log ids stay in the queue rows they
   share with other fans' events: processing takes the tenant's lock before it joins a claimed row to the
   log, so it finds those log rows gone and skips them (processing.py, _PICK_SQL), and this transaction
   never waits on a queue row a batch has locked;
2. every hour bucket that held one of their log rows is recomputed from the REMAINING raw events (hot and
   archive; rows still queued are left to the processor, exactly as the backfill path does), including the
   bucket's listener rows, so unique-listener counts drop by one where the subject was the only play;
3. every hour bucket that held one of their counted votes has its vote rollups rebuilt from the remaining
   counted votes. The first-vote rule is per (show, round, fan), so removing one fan never changes which
   vote of another fan counts: re-deciding is re-summing the remaining counted votes.
The result counts what went, the rollup amounts included. The caller corrects the tenant's Redis boards
after the commit (boards are a cache of the rollups)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from django.db import transaction

from ingestion.services.processing import (
    TENANT_LOCK_NAMESPACE,
    _cursor,
    hour_floor,
)
from ingestion.services.rollup import ARCHIVE_TABLE, archive_exists, bucket_recompute

_EVENT_COLUMNS = (
    "id, event_id, type, occurred_at, received_at, user_id, session_id, device_id, artist_id, show_id, city, "
    "genre, amount_minor, currency, properties, context, source"
)


def _log_tables(cursor: psycopg.Cursor[Any]) -> list[tuple[str, str]]:
    """(label, table) for the hot log and, when retention has archived anything, the archive."""
    tables = [("hot", "ingestion_event")]
    if archive_exists(cursor):
        tables.append(("archive", ARCHIVE_TABLE))
    return tables


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _json(value: Any) -> Any:
    # Django's psycopg setup hands jsonb back as text (its JSONField decodes it); decode it here.
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def subject_data_gather(*, tenant_id: int, user_id: str) -> dict[str, Any]:
    """Everything the event-log tables hold about one fan of one tenant, as JSON-ready values."""
    names = [c.strip() for c in _EVENT_COLUMNS.split(",")]
    out: dict[str, Any] = {"events": [], "traits": None, "listener_hours": [], "counted_votes": []}
    with transaction.atomic(), _cursor() as cursor:
        event_ids: list[str] = []
        for label, table in _log_tables(cursor):
            cursor.execute(
                f"SELECT {_EVENT_COLUMNS} FROM {table} WHERE tenant_id = %s AND user_id = %s "  # noqa: S608
                "ORDER BY occurred_at, id",
                [tenant_id, user_id],
            )
            for row in cursor.fetchall():
                item = {n: _jsonable(v) for n, v in zip(names, row, strict=True)}
                item.pop("id")
                item["properties"], item["context"] = _json(item["properties"]), _json(item["context"])
                item["storage"] = label
                out["events"].append(item)
                event_ids.append(item["event_id"])
        cursor.execute(
            "SELECT traits, first_seen_at, updated_at FROM ingestion_person "
            "WHERE tenant_id = %s AND user_id = %s",
            [tenant_id, user_id],
        )
        person = cursor.fetchone()
        if person is not None:
            out["traits"] = {
                "traits": _json(person[0]),
                "first_seen_at": _jsonable(person[1]),
                "updated_at": _jsonable(person[2]),
            }
        cursor.execute(
            "SELECT event_id, received_at FROM ingestion_event_key "
            "WHERE tenant_id = %s AND event_id = ANY(%s) ORDER BY received_at, event_id",
            [tenant_id, event_ids],
        )
        out["dedupe_keys"] = [{"event_id": e, "received_at": _jsonable(r)} for e, r in cursor.fetchall()]
        cursor.execute(
            "SELECT bucket, artist_id, city, show_id FROM ingestion_listener_hourly "
            "WHERE tenant_id = %s AND user_id = %s ORDER BY bucket, artist_id",
            [tenant_id, user_id],
        )
        out["listener_hours"] = [
            {"bucket": _jsonable(b), "artist_id": a, "city": c, "show_id": s or None}
            for b, a, c, s in cursor.fetchall()
        ]
        cursor.execute(
            "SELECT show_id, round, event_id, occurred_at, artist_id, weight, city "
            "FROM ingestion_vote_counted WHERE tenant_id = %s AND user_id = %s ORDER BY show_id, round",
            [tenant_id, user_id],
        )
        out["attributions"] = _attributions(tenant_id, user_id)
        out["counted_votes"] = [
            {
                "show_id": s,
                "round": r,
                "event_id": e,
                "occurred_at": _jsonable(o),
                "artist_id": a,
                "weight": w,
                "city": c,
            }
            for s, r, e, o, a, w, c in cursor.fetchall()
        ]
    return out


def _attributions(tenant_id: int, user_id: str) -> list[dict[str, Any]]:
    """The fan's attributed conversions (ingestion.funnels), when that app is installed."""
    from django.apps import apps

    if not apps.is_installed("ingestion.funnels"):
        return []
    from ingestion.funnels.selectors import fan_conversions

    rows = fan_conversions(tenant_id=tenant_id, user_id=user_id).order_by("conversion_at")
    fields = [
        "artist_id",
        "conversion_event_id",
        "conversion_type",
        "conversion_at",
        "amount_minor",
        "currency",
        "touch_event_id",
        "touch_type",
        "touch_at",
        "source",
    ]
    return [{k: _jsonable(v) for k, v in row.items()} for row in rows.values(*fields)]


@dataclass
class ErasureResult:
    events: int = 0
    archived_events: int = 0
    dedupe_keys: int = 0
    traits: int = 0
    listener_rows: int = 0
    counted_votes: int = 0
    attributions: int = 0
    touches: int = 0
    buckets_recomputed: int = 0
    vote_buckets_recomputed: int = 0
    buckets: list[datetime] = field(default_factory=list)
    # what the recount took off the rollups, per metric (money per currency): "plays", "money_spent_eur"
    rollups_removed: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Every count, the rollup amounts as `rollup_<metric>`: the privacy receipt's result."""
        counts = {k: v for k, v in self.__dict__.items() if isinstance(v, int)}
        return counts | {f"rollup_{k}": v for k, v in sorted(self.rollups_removed.items())}


def _vote_bucket_recompute(cursor: psycopg.Cursor[Any], tenant_id: int, bucket: datetime) -> int:
    """Rebuild one hour's vote rollups from the counted votes; returns how many votes it lost."""
    cursor.execute(
        "DELETE FROM ingestion_rollup_hourly WHERE tenant_id = %s AND bucket = %s AND metric = 'votes' "
        "RETURNING value",
        [tenant_id, bucket],
    )
    before = sum(v for (v,) in cursor.fetchall())
    cursor.execute(
        """
        INSERT INTO ingestion_rollup_hourly
            (tenant_id, metric, bucket, artist_id, city, show_id, currency, value)
        SELECT %s, 'votes', %s, artist_id, city, show_id, '', sum(weight)
        FROM ingestion_vote_counted
        WHERE tenant_id = %s AND occurred_at >= %s AND occurred_at < %s
        GROUP BY artist_id, city, show_id
        RETURNING value
        """,
        [tenant_id, bucket, tenant_id, bucket, bucket + timedelta(hours=1)],
    )
    return int(before - sum(v for (v,) in cursor.fetchall()))


def subject_erase(*, tenant_id: int, user_id: str) -> ErasureResult:
    """Delete one fan's rows from the event-log tables and correct the rollups derived from them."""
    result = ErasureResult()
    with transaction.atomic(), _cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [TENANT_LOCK_NAMESPACE, tenant_id])
        archive = archive_exists(cursor)
        buckets: set[datetime] = set()
        event_ids: list[str] = []
        for label, table in _log_tables(cursor):
            cursor.execute(
                f"DELETE FROM {table} WHERE tenant_id = %s AND user_id = %s "  # noqa: S608
                "RETURNING id, event_id, occurred_at",
                [tenant_id, user_id],
            )
            rows = cursor.fetchall()
            if label == "hot":
                result.events = len(rows)
            else:
                result.archived_events = len(rows)
            event_ids.extend(r[1] for r in rows)
            buckets.update(hour_floor(r[2]) for r in rows)
        cursor.execute(
            "DELETE FROM ingestion_event_key WHERE tenant_id = %s AND event_id = ANY(%s)",
            [tenant_id, event_ids],
        )
        result.dedupe_keys = cursor.rowcount
        cursor.execute(
            "DELETE FROM ingestion_person WHERE tenant_id = %s AND user_id = %s", [tenant_id, user_id]
        )
        result.traits = cursor.rowcount
        cursor.execute(
            "DELETE FROM ingestion_listener_hourly WHERE tenant_id = %s AND user_id = %s RETURNING bucket",
            [tenant_id, user_id],
        )
        result.listener_rows = len(cursor.fetchall())
        cursor.execute(
            "DELETE FROM ingestion_vote_counted WHERE tenant_id = %s AND user_id = %s RETURNING occurred_at",
            [tenant_id, user_id],
        )
        voted = cursor.fetchall()
        vote_buckets = {hour_floor(o) for (o,) in voted}
        result.counted_votes = len(voted)
        from django.apps import apps

        if apps.is_installed("ingestion.funnels"):
            # Attribution credits a fan's conversions to the same fan's touches only: deleting their rows
            # changes nobody else's attribution (see ingestion.funnels.services).
            from ingestion.funnels.selectors import fan_touches_count
            from ingestion.funnels.services import attributions_erase_user

            result.touches = fan_touches_count(tenant_id=tenant_id, user_id=user_id)
            result.attributions = attributions_erase_user(tenant_id=tenant_id, user_id=user_id)
        # Buckets whose raw events retention already dropped keep their rollups (rollups outlive raw events):
        # only buckets that held one of the subject's log rows are recounted.
        removed: dict[str, int] = defaultdict(int)
        for bucket in sorted(buckets):
            # boards are corrected by the caller, after the commit
            for change in bucket_recompute(cursor, tenant_id, bucket, archive=archive):
                kind = f"{change.metric}_{change.currency.lower()}" if change.currency else change.metric
                removed[kind] -= change.value
        for bucket in sorted(vote_buckets):
            removed["votes"] += _vote_bucket_recompute(cursor, tenant_id, bucket)
        result.rollups_removed = {metric: value for metric, value in removed.items() if value}
        result.buckets_recomputed = len(buckets)
        result.vote_buckets_recomputed = len(vote_buckets)
        result.buckets = sorted(buckets | vote_buckets)
    return result
