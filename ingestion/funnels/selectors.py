"""Funnels (pure reads of the event log) and the attribution summary.

Funnel definition (what `funnel_compute` returns, and what tests recompute by brute force):
- An event matches step k when its type is step k's type, its property filter (if any) holds
  (`properties->>prop = value`), and, for types that carry an artist, the artist / genre filter holds; for
  types that carry a city, the city filter holds.
- Events are ordered per fan by (occurred_at, log id). A *start* is a step-1 event in [from, to). From a start
  the fan's path takes, for each next step, the EARLIEST matching event strictly after the previous step's
  event, as long as it lies within `within` of the start (inclusive). Taking the earliest is optimal: it
  leaves the most room for the later steps.
- A fan's depth is the deepest step any of their starts reaches; the path whose times are reported (medians)
  is the one from the LATEST start that reaches that depth (the fan's most recent, tightest attempt).
- Step k counts the fans whose depth is >= k; conversions are ratios of those counts; the median time between
  steps is over the fans that reached the later step.

Speed: one SQL statement, and no sort of the step-1 rows (most of the candidate rows). The rows of steps
2..K become, per fan, arrays of times and ids sorted by (occurred_at, id) (a small sort). Every step-1 row
in [from, to) finds by binary search (width_bucket) how many step-2 rows come at or before it: g. Starts
sharing g share the first step-2 row after them, hence the rest of the path, and the latest of them has the
latest deadline and is the most recent attempt, so a hash aggregate keeps max(start) per (fan, g): exactly
the starts worth walking. The walk then takes one binary search per further step over those few starts.
Before this, one sort of every candidate row per (fan, time) fed window functions: measured 1.6 s of CPU
against 1.05 s now for the 3-step bench funnel (see the README)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet

from ingestion.catalog import CATALOG
from ingestion.funnels.models import AttributedConversion


@dataclass(frozen=True)
class FunnelStep:
    type: str
    prop: str | None = None
    value: str | None = None

    @property
    def carries_artist(self) -> bool:
        return "artist_id" in CATALOG[self.type].schema.__struct_fields__

    @property
    def carries_city(self) -> bool:
        return "city" in CATALOG[self.type].schema.__struct_fields__


def step_matches_sql(
    step: FunnelStep, params: dict[str, Any], index: int, *, artist_filter: bool, city: str | None
) -> str:
    """The SQL condition for "event e matches this step" (bound parameters go into `params`)."""
    parts = [f"e.type = %(type_{index})s"]
    params[f"type_{index}"] = step.type
    if step.prop is not None:
        # The property name is checked against the catalog before it gets here, and is bound anyway.
        parts.append(f"e.properties->>%(prop_{index})s = %(value_{index})s")
        params[f"prop_{index}"] = step.prop
        params[f"value_{index}"] = step.value
    if artist_filter and step.carries_artist:
        parts.append("e.artist_id = ANY(%(artist_ids)s)")
    if city is not None and step.carries_city:
        parts.append("e.city = %(city)s")
    # COALESCE: a missing property or artist gives NULL, and the walk needs plain true/false.
    return "COALESCE(" + " AND ".join(parts) + ", false)"


def _position_sql(t: str, pk: str, times: str, ids: str) -> str:
    """How many of a fan's rows of a step come at or before the row (t, pk) in (occurred_at, id) order.

    A binary search (width_bucket) over the fan's sorted times of that step; only when one of them shares
    the instant `t` are the ids of that tied block compared (rare in real data, common in the tests). NULL
    arrays (the fan has no row of that step) give 0. Arguments are generated column names, never input."""
    at_or_before = f"width_bucket({t}, {times})"
    before = f"width_bucket({t} - interval '1 microsecond', {times})"
    tied = f"(SELECT count(*)::int FROM unnest({ids}[{before} + 1 : {at_or_before}]) AS tied(pk) WHERE tied.pk <= {pk})"  # noqa: S608, E501
    return (
        f"CASE WHEN {times}[{at_or_before}] = {t} THEN {before} + {tied} ELSE coalesce({at_or_before}, 0) END"
    )


def _funnel_sql(
    steps: list[FunnelStep], *, artist_filter: bool, city: str | None
) -> tuple[str, dict[str, Any]]:
    k = len(steps)
    params: dict[str, Any] = {}
    matches = [
        step_matches_sql(s, params, i, artist_filter=artist_filter, city=city) for i, s in enumerate(steps)
    ]
    later = range(2, k + 1)
    m_cols = ", ".join(f"{matches[i - 1]} AS m{i}" for i in later)
    arrays = ",\n           ".join(
        f"array_agg(t ORDER BY t, id) FILTER (WHERE m{i}) AS ta{i}, "
        f"array_agg(id ORDER BY t, id) FILTER (WHERE m{i}) AS ia{i}"
        for i in later
    )
    # The walk over the (few) kept starts, one lateral step per funnel step: the next row of step i is the
    # first of the fan's step-i rows after the previous step's row, kept when it lies within `within` of the
    # start. Generated column names only; every value is bound.
    chain = [
        "CROSS JOIN LATERAL (SELECT CASE WHEN s.ta2[p.g + 1] <= p.t1 + %(within)s THEN s.ta2[p.g + 1] END "
        "AS t2, s.ia2[p.g + 1] AS id2) x2"
    ]
    for i in range(3, k + 1):
        position = _position_sql(f"x{i - 1}.t{i - 1}", f"x{i - 1}.id{i - 1}", f"s.ta{i}", f"s.ia{i}")
        chain.append(
            # OFFSET 0 keeps the position a subquery: computed once per row, not once per reference
            f"CROSS JOIN LATERAL (SELECT CASE WHEN x{i - 1}.t{i - 1} IS NOT NULL THEN 1 + {position} END "
            f"AS n OFFSET 0) n{i} "
            f"CROSS JOIN LATERAL (SELECT CASE WHEN s.ta{i}[n{i}.n] <= p.t1 + %(within)s "
            f"THEN s.ta{i}[n{i}.n] END AS t{i}, s.ia{i}[n{i}.n] AS id{i}) x{i}"
        )
    times = ", ".join(f"x{i}.t{i}" for i in later)
    chain_sql = "\n    ".join(chain)
    depth = " + ".join(["1"] + [f"(t{i} IS NOT NULL)::int" for i in later])
    counts = ", ".join(f"count(*) FILTER (WHERE depth >= {i})" for i in range(1, k + 1))
    medians = ", ".join(
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t{i} - t{i - 1})) "
        f"FILTER (WHERE depth >= {i})"
        for i in later
    )
    sql = f"""
WITH later AS MATERIALIZED (
    -- per fan, the rows of each step 2..K as two arrays (times, ids) sorted by (occurred_at, id)
    SELECT u, {arrays}
    FROM (
        SELECT e.user_id COLLATE "C" AS u, e.occurred_at AS t, e.id, {m_cols}
        FROM ingestion_event e
        WHERE e.tenant_id = %(tenant_id)s AND e.type = ANY(%(later_types)s)
          AND e.occurred_at >= %(start)s AND e.occurred_at < %(horizon)s
    ) ev
    WHERE {" OR ".join(f"m{i}" for i in later)}
    GROUP BY u
), starts AS MATERIALIZED (
    -- g: how many step-2 rows come at or before the start, so its path continues at step-2 row g + 1.
    -- Starts sharing g share the rest of the path and the latest has the latest deadline (and is the
    -- fan's most recent attempt), so only the latest start per (fan, g) is walked. No sort of the
    -- step-1 rows: a hash join to the fan's arrays and a hash aggregate.
    SELECT f.u, {_position_sql("f.t", "f.id", "s.ta2", "s.ia2")} AS g, max(f.t) AS t1
    FROM (
        SELECT e.user_id COLLATE "C" AS u, e.occurred_at AS t, e.id
        FROM ingestion_event e
        WHERE e.tenant_id = %(tenant_id)s AND {matches[0]}
          AND e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
    ) f
    LEFT JOIN later s ON s.u = f.u
    GROUP BY 1, 2
), walked AS MATERIALIZED (
    SELECT p.u, p.g, p.t1, {times}
    FROM starts p LEFT JOIN later s ON s.u = p.u
    {chain_sql}
), best AS (
    SELECT DISTINCT ON (u) *, {depth} AS depth FROM walked
    ORDER BY u, {depth} DESC, g DESC
)
SELECT {counts}, {medians} FROM best
"""  # noqa: S608 - only generated column names; every value is bound
    params["later_types"] = sorted({s.type for s in steps[1:]})
    return sql, params


def funnel_compute(
    *,
    tenant_id: int,
    steps: list[FunnelStep],
    start: datetime,
    end: datetime,
    within: timedelta,
    artist_ids: list[int] | None = None,
    city: str | None = None,
) -> dict[str, Any]:
    """Per step: distinct fans reaching it in order within `within` of their first step, conversions from the
    previous and the first step, and the median seconds from the previous step. `artist_ids` (an artist, or
    a genre's artists) restricts the steps whose type carries an artist."""
    if not 2 <= len(steps) <= 6:
        raise ValueError("a funnel has 2 to 6 steps")
    sql, params = _funnel_sql(steps, artist_filter=artist_ids is not None, city=city)
    params.update(
        tenant_id=tenant_id,
        start=start,
        end=end,
        horizon=end + within,
        within=within,
        artist_ids=list(artist_ids or []),
        city=city,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # JIT compilation costs more than it saves on this one-shot statement (measured: ~1.3 s of 7 s); the
        # one big sort (fan, time) of 90 days x 1M events (83 MB) stays in memory instead of spilling to disk.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL work_mem = '128MB'")
        cursor.execute(sql, params)
        row = cursor.fetchone()
    k = len(steps)
    counts = [int(c or 0) for c in row[:k]] if row else [0] * k
    medians = list(row[k:]) if row else [None] * (k - 1)
    out = []
    for i, step in enumerate(steps):
        users = counts[i]
        previous = counts[i - 1] if i else None
        median = medians[i - 1] if i else None
        out.append(
            {
                "step": i + 1,
                "type": step.type,
                "filter": {step.prop: step.value} if step.prop else None,
                "users": users,
                "conversion_from_previous": _ratio(users, previous) if i else None,
                "conversion_from_first": _ratio(users, counts[0]),
                "median_seconds_from_previous": round(float(median), 3) if median is not None else None,
            }
        )
    return {"steps": out}


def _ratio(part: int, whole: int | None) -> float | None:
    return round(part / whole, 4) if whole else None


def attribution_summary(
    *,
    tenant_id: int,
    start: datetime,
    end: datetime,
    group_by: str,
    artist_id: int | None = None,
) -> list[dict[str, Any]]:
    """Conversions over [start, end) per touch type or touch source (None: unattributed), each with its counts
    per conversion type and attributed revenue (money spent, minor units) per currency."""
    column = {"touch_type": "touch_type", "source": "source"}[group_by]
    sql = f"""
        SELECT {column}, conversion_type, currency, count(*), coalesce(sum(amount_minor), 0)
        FROM funnels_attributedconversion
        WHERE tenant_id = %s AND conversion_at >= %s AND conversion_at < %s
          AND (%s::bigint IS NULL OR artist_id = %s::bigint)
        GROUP BY 1, 2, 3 ORDER BY 1 NULLS LAST, 2, 3
    """  # noqa: S608 - the column comes from a fixed mapping
    with connection.cursor() as cursor:
        cursor.execute(sql, [tenant_id, start, end, artist_id, artist_id])
        rows = cursor.fetchall()
    groups: dict[str | None, dict[str, Any]] = {}
    for key, conversion_type, currency, count, amount in rows:
        group = groups.setdefault(
            key, {"key": key, "attributed": key is not None, "conversions": 0, "by_type": {}, "revenue": {}}
        )
        group["conversions"] += count
        group["by_type"][conversion_type] = group["by_type"].get(conversion_type, 0) + count
        if conversion_type == "treasury.money_spent" and currency:
            group["revenue"][currency] = group["revenue"].get(currency, 0) + int(amount)
    return list(groups.values())


def attributed_revenue(
    *, tenant_id: int, start: datetime, end: datetime, artist_id: int | None = None
) -> dict[str, int]:
    """Money spent over [start, end) that is attributed to a touch, in minor units per currency (for the KPI
    `attributed_revenue` and the artist report's attribution section)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT currency, sum(amount_minor) FROM funnels_attributedconversion
            WHERE tenant_id = %s AND conversion_at >= %s AND conversion_at < %s
              AND conversion_type = 'treasury.money_spent' AND touch_pk IS NOT NULL
              AND (%s::bigint IS NULL OR artist_id = %s::bigint)
            GROUP BY currency ORDER BY currency
            """,
            [tenant_id, start, end, artist_id, artist_id],
        )
        return {currency: int(total) for currency, total in cursor.fetchall()}


def attributed_revenue_buckets(
    *,
    tenant_id: int,
    start: datetime,
    end: datetime,
    currency: str,
    period: str = "hourly",
    tz: str = "UTC",
    artist_id: int | None = None,
) -> dict[datetime, int]:
    """Attributed money spent in `currency` (minor units) per KPI bucket, for the KPI `attributed_revenue`.

    Bucketed like the rollups bucket money_spent, so the two series line up: by the conversion's UTC hour,
    and for `daily` by the local day in `tz` of that hour; a conversion counts when its hour starts in
    [start, end). Keys are the buckets' starts (aware datetimes)."""
    hour = "date_trunc('hour', conversion_at, 'UTC')"
    bucket = hour if period == "hourly" else f"(date_trunc('day', {hour} AT TIME ZONE %s) AT TIME ZONE %s)"
    bucket_params: list[Any] = [] if period == "hourly" else [tz, tz]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT {bucket}, sum(amount_minor) FROM funnels_attributedconversion
            WHERE tenant_id = %s AND conversion_type = 'treasury.money_spent' AND touch_pk IS NOT NULL
              AND currency = %s AND (%s::bigint IS NULL OR artist_id = %s::bigint)
              -- the plain range lets the (tenant, conversion_at) index narrow; the hour rule decides
              AND conversion_at >= %s AND conversion_at < %s::timestamptz + interval '1 hour'
              AND {hour} >= %s AND {hour} < %s
            GROUP BY 1
            """,  # noqa: S608 - the bucket expression is one of two fixed strings
            [*bucket_params, tenant_id, currency, artist_id, artist_id, start, end, start, end],
        )
        return {b: int(total) for b, total in cursor.fetchall() if total}


def fan_key(tenant_id: int, user_id: str) -> str:
    """A fan of a tenant as one value: funnels_attributedconversion.fan_key, generated as
    `tenant_id::text || ':' || user_id` (funnels migration 0005), the key of its fan index."""
    return f"{int(tenant_id)}:{user_id}"


def fan_conversions(*, tenant_id: int, user_id: str) -> QuerySet[AttributedConversion]:
    """One fan's conversion rows, found through the fan index rather than every row of the tenant (the model
    does not declare the generated column, so the condition is spelled in SQL)."""
    return AttributedConversion.objects.filter(tenant_id=tenant_id, user_id=user_id).extra(
        where=["fan_key = %s"], params=[fan_key(tenant_id, user_id)]
    )


def fan_touches_count(*, tenant_id: int, user_id: str) -> int:
    """How many recorded touches one fan of a tenant has (what an erasure of the fan removes)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM funnels_touch WHERE tenant_id = %s AND user_id = %s", [tenant_id, user_id]
        )
        return int(cursor.fetchone()[0])
