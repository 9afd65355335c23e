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

Speed: one SQL statement. The candidate rows come from the index (tenant_id, type, occurred_at) this app adds
to the log (only the funnel's types, only the date range); one window pass numbers each fan's rows and finds,
for every row, the next row matching each later step (frames anchored at the partition start, so PostgreSQL
aggregates them incrementally); starts that a later start dominates (a step-1 row directly followed by
another valid step-1 row that matches no later step: same path, later deadline) are dropped before the
chain is followed by K-1 hash joins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction

from ingestion.catalog import CATALOG


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


def _funnel_sql(
    steps: list[FunnelStep], *, artist_filter: bool, city: str | None
) -> tuple[str, dict[str, Any]]:
    k = len(steps)
    params: dict[str, Any] = {}
    matches = [
        step_matches_sql(s, params, i, artist_filter=artist_filter, city=city) for i, s in enumerate(steps)
    ]
    m_cols = ",\n           ".join(f"{m} AS m{i + 1}" for i, m in enumerate(matches))
    all_m = ", ".join(f"m{i}" for i in range(1, k + 1))
    later_any = " OR ".join(f"m{i}" for i in range(2, k + 1))
    # r numbers a fan's rows from the LAST one (1) backwards, so every window below shares one sort order;
    # the earliest later row matching step i is the largest r among the rows before this one in that order.
    next_cols = ",\n           ".join(
        f"max(CASE WHEN m{i} THEN r END) OVER w AS n{i}" for i in range(2, k + 1)
    )
    chain = ["s1 AS (SELECT u, r AS r1, t AS t1, n2 FROM starts)"]
    for i in range(2, k + 1):
        carried = ", ".join(f"p.t{j}" for j in range(2, i))
        carried = f"{carried}, " if carried else ""
        nxt = f", x.n{i + 1}" if i < k else ""
        link = (
            f"s{i} AS (SELECT p.u, p.r1, p.t1, {carried}x.t AS t{i}{nxt} FROM s{i - 1} p "  # noqa: S608
            f"LEFT JOIN (SELECT * FROM seq WHERE m{i}) x "
            f"ON x.u = p.u AND x.r = p.n{i} AND x.t <= p.t1 + %(within)s)"
        )  # generated column names only; every value is bound
        chain.append(link)
    depth = " + ".join(["1"] + [f"(t{i} IS NOT NULL)::int" for i in range(2, k + 1)])
    counts = ", ".join(f"count(*) FILTER (WHERE depth >= {i})" for i in range(1, k + 1))
    medians = ", ".join(
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t{i} - t{i - 1})) "
        f"FILTER (WHERE depth >= {i})"
        for i in range(2, k + 1)
    )
    sql = f"""
WITH ev AS (
    SELECT e.user_id COLLATE "C" AS u, e.occurred_at AS t, e.id,
           {m_cols}
    FROM ingestion_event e
    WHERE e.tenant_id = %(tenant_id)s AND e.type = ANY(%(types)s)
      AND e.occurred_at >= %(start)s AND e.occurred_at < %(horizon)s
), numbered AS (
    SELECT ev.*, row_number() OVER (PARTITION BY u ORDER BY t DESC, id DESC) AS r
    FROM ev WHERE {" OR ".join(f"m{i}" for i in range(1, k + 1))}
), walked AS (
    SELECT u, r, t, {all_m},
           {next_cols},
           -- lag ignores the frame: sharing the window keeps everything in one pass
           lag(t) OVER w AS next_t,
           lag({later_any}) OVER w AS next_later,
           lag(m1) OVER w AS next_first
    FROM numbered
    WINDOW w AS (PARTITION BY u ORDER BY t DESC, id DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), seq AS MATERIALIZED (
    -- only what the chain reads: the undominated starts and the rows of steps 2..K
    SELECT *, m1 AND t < %(end)s
              -- dominated: the very next row is another valid start that matches no later step
              AND NOT (next_first IS TRUE AND next_later IS FALSE AND next_t < %(end)s) AS is_start
    FROM walked
    WHERE (m1 AND t < %(end)s AND NOT (next_first IS TRUE AND next_later IS FALSE AND next_t < %(end)s))
       OR {later_any}
), starts AS (
    SELECT * FROM seq WHERE is_start
), {", ".join(chain)}
, best AS (
    SELECT DISTINCT ON (u) *, {depth} AS depth FROM s{k}
    ORDER BY u, {depth} DESC, r1 ASC
)
SELECT {counts}, {medians} FROM best
"""  # noqa: S608 - only generated column names; every value is bound
    params["types"] = sorted({s.type for s in steps})
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
