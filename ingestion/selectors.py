"""Reads over the rollups (the contract other apps use): rollup_totals, kpi_series, show_round_votes,
rollup_first_bucket, ingest_stats.
The KPI reads also offer `attributed_revenue`, from ingestion.funnels.selectors.

Ranges are half-open [start, end) over HOUR buckets: a bucket counts when its start lies in the range
(callers that pass whole hours get exact figures). unique_listeners is always an exact COUNT(DISTINCT user)
over the (tenant, hour, artist, city, show, user) listener table, never a sum of per-bucket counts."""

from __future__ import annotations

import time
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection

from coliseum.models import Tenant
from ingestion.catalog import METRICS, MONEY_METRICS
from ingestion.funnels.selectors import attributed_revenue_buckets
from ingestion.services.stats import stats_read

# What the KPI endpoints offer: the rollup metrics, and money spent that attribution credits to a touch
# (read from the funnels app through its selector; needs the `funnels` entitlement at the API).
ATTRIBUTION_METRICS = ("attributed_revenue",)
KPI_METRICS = (*METRICS, *ATTRIBUTION_METRICS)


def _filters(
    *,
    tenant_id: int,
    start: datetime | None,
    end: datetime | None,
    city: str | None,
    show_id: int | None,
    artist_ids: Collection[int] | None,
) -> tuple[list[str], list[Any]]:
    where = ["tenant_id = %s"]
    params: list[Any] = [tenant_id]
    if start is not None:
        where.append("bucket >= %s")
        params.append(start)
    if end is not None:
        where.append("bucket < %s")
        params.append(end)
    if city is not None:
        where.append("city = %s")
        params.append(city)
    if show_id is not None:
        where.append("show_id = %s")
        params.append(show_id)
    if artist_ids is not None:
        where.append("artist_id = ANY(%s)")
        params.append(list(artist_ids))
    return where, params


def _reporting_currency(tenant_id: int) -> str:
    return Tenant.objects.filter(pk=tenant_id).values_list("reporting_currency", flat=True).first() or "USD"


def rollup_totals(
    *,
    tenant_id: int,
    metric: str,
    start: datetime | None,
    end: datetime | None,
    city: str | None = None,
    show_id: int | None = None,
    currency: str | None = None,
    artist_ids: Collection[int] | None = None,
) -> dict[int, int]:
    """Exact per-artist value of `metric` over [start, end) (None = unbounded). Money metrics are in
    `currency` (None: the tenant's reporting currency)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    if artist_ids is not None and not artist_ids:
        return {}
    where, params = _filters(
        tenant_id=tenant_id, start=start, end=end, city=city, show_id=show_id, artist_ids=artist_ids
    )
    where.append("artist_id <> 0")
    if metric == "unique_listeners":
        sql = (
            "SELECT artist_id, count(DISTINCT user_id) FROM ingestion_listener_hourly WHERE "  # noqa: S608
            + " AND ".join(where)
            + " GROUP BY artist_id"
        )
    else:
        where.append("metric = %s")
        params.append(metric)
        if metric in MONEY_METRICS:
            where.append("currency = %s")
            params.append(currency or _reporting_currency(tenant_id))
        sql = (
            "SELECT artist_id, sum(value) FROM ingestion_rollup_hourly WHERE "  # noqa: S608
            + " AND ".join(where)
            + " GROUP BY artist_id"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {int(a): int(v) for a, v in cursor.fetchall() if v}


def rollup_first_bucket(*, tenant_id: int) -> datetime | None:
    """The start of the tenant's earliest hour with data (any metric), None when it has none: where its
    history begins, so a comparison with an earlier period can tell a quiet period from one before it."""
    # One index probe per metric on the primary key (tenant_id, metric, bucket, ...).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(first) FROM unnest(%s::text[]) AS m(metric), LATERAL (SELECT min(bucket) AS first "
            "FROM ingestion_rollup_hourly r WHERE r.tenant_id = %s AND r.metric = m.metric) AS f",
            [list(METRICS), tenant_id],
        )
        row = cursor.fetchone()
    return row[0] if row and row[0] is not None else None


def _series_bounds(period: str, start: datetime, end: datetime, tz: ZoneInfo) -> list[datetime]:
    """Bucket starts (UTC) covering [start, end): whole UTC hours, or local midnights (DST-correct)."""
    out: list[datetime] = []
    if period == "hourly":
        t = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        while t < end:
            out.append(t)
            t += timedelta(hours=1)
        return out
    day: date = start.astimezone(tz).date()
    while True:
        t = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
        if t >= end:
            break
        out.append(t)
        day += timedelta(days=1)
    return out


def kpi_series(
    *,
    tenant_id: int,
    metrics: Collection[str],
    period: str,
    start: datetime,
    end: datetime,
    tz: str = "UTC",
    artist_id: int | None = None,
    currency: str | None = None,
) -> dict[str, Any]:
    """A gap-filled series and totals, the body of GET /api/v1/kpis (reports reuse it so numbers agree).

    Daily buckets are local days in `tz` (DST-correct: a day is 23, 24 or 25 hours of UTC hour buckets).
    `artist_id` None: the whole tenant (money and attendance not tied to an artist included).
    unique_listeners per bucket and in the totals is an exact distinct count."""
    zone = ZoneInfo(tz)
    starts = _series_bounds(period, start, end, zone)
    if not starts:
        return {"period": period, "tz": tz, "series": [], "totals": {m: 0 for m in metrics}}
    range_start, range_end = (
        starts[0],
        (
            starts[-1] + timedelta(hours=1)
            if period == "hourly"
            else datetime.combine(
                starts[-1].astimezone(zone).date() + timedelta(days=1), datetime.min.time(), tzinfo=zone
            ).astimezone(UTC)
        ),
    )
    range_end = min(range_end, end) if period == "hourly" else range_end
    cur = currency or _reporting_currency(tenant_id)
    bucket_sql = (
        "bucket" if period == "hourly" else "(date_trunc('day', bucket AT TIME ZONE %s) AT TIME ZONE %s)"
    )
    bucket_params: list[Any] = [] if period == "hourly" else [tz, tz]
    series: dict[datetime, dict[str, int]] = {s: {m: 0 for m in metrics} for s in starts}
    totals: dict[str, int] = {m: 0 for m in metrics}
    artist_filter = " AND artist_id = %s" if artist_id is not None else ""
    artist_params: list[Any] = [artist_id] if artist_id is not None else []
    with connection.cursor() as cursor:
        plain = [m for m in metrics if m != "unique_listeners" and m not in ATTRIBUTION_METRICS]
        if plain:
            cursor.execute(
                f"SELECT {bucket_sql} AS b, metric, sum(value) FROM ingestion_rollup_hourly "  # noqa: S608
                "WHERE tenant_id = %s AND metric = ANY(%s) AND bucket >= %s AND bucket < %s"
                f"{artist_filter} AND (currency = '' OR currency = %s) GROUP BY 1, 2",
                [*bucket_params, tenant_id, plain, range_start, range_end, *artist_params, cur],
            )
            for b, metric, value in cursor.fetchall():
                key = b.astimezone(UTC)
                if key in series:
                    series[key][metric] += int(value)
                totals[metric] += int(value)
        if "unique_listeners" in metrics:
            cursor.execute(
                f"SELECT {bucket_sql} AS b, count(DISTINCT user_id) FROM ingestion_listener_hourly "  # noqa: S608
                f"WHERE tenant_id = %s AND bucket >= %s AND bucket < %s{artist_filter} GROUP BY 1",
                [*bucket_params, tenant_id, range_start, range_end, *artist_params],
            )
            for b, value in cursor.fetchall():
                key = b.astimezone(UTC)
                if key in series:
                    series[key]["unique_listeners"] = int(value)
            cursor.execute(
                "SELECT count(DISTINCT user_id) FROM ingestion_listener_hourly "  # noqa: S608
                f"WHERE tenant_id = %s AND bucket >= %s AND bucket < %s{artist_filter}",
                [tenant_id, range_start, range_end, *artist_params],
            )
            row = cursor.fetchone()
            totals["unique_listeners"] = int(row[0]) if row else 0
    if "attributed_revenue" in metrics:
        # Money metrics are in one currency (`cur`); attributed revenue follows money_spent exactly.
        for b, value in attributed_revenue_buckets(
            tenant_id=tenant_id,
            start=range_start,
            end=range_end,
            currency=cur,
            period=period,
            tz=tz,
            artist_id=artist_id,
        ).items():
            key = b.astimezone(UTC)
            if key in series:
                series[key]["attributed_revenue"] += value
            totals["attributed_revenue"] += value
    return {
        "period": period,
        "tz": tz,
        "currency": cur,
        "series": [
            {"bucket": s.astimezone(zone).isoformat(), **values} for s, values in sorted(series.items())
        ],
        "totals": totals,
    }


def show_round_votes(*, tenant_id: int, show_id: int, round: int | None = None) -> dict[int, dict[int, int]]:
    """{round: {artist_pk: counted weighted votes}} for a show, under the first-vote-per-user rule."""
    sql = (
        "SELECT round, artist_id, sum(weight) FROM ingestion_vote_counted "
        "WHERE tenant_id = %s AND show_id = %s AND artist_id <> 0"
    )
    params: list[Any] = [tenant_id, show_id]
    if round is not None:
        sql += " AND round = %s"
        params.append(round)
    out: dict[int, dict[int, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql + " GROUP BY round, artist_id", params)
        for r, artist, votes in cursor.fetchall():
            out.setdefault(int(r), {})[int(artist)] = int(votes)
    return out


def ingest_stats() -> dict[str, Any]:
    """For the health endpoint: accepted in the last 1 / 5 minutes, events/s, ingest lag, rejects."""
    with connection.cursor() as cursor:
        # A queue row holds one request's events: the backlog in events is the sum of their counts.
        cursor.execute(
            "SELECT extract(epoch FROM now() - min(received_at)), coalesce(sum(event_count), 0) "
            "FROM ingestion_pending"
        )
        row = cursor.fetchone()
    lag = float(row[0]) if row and row[0] is not None else 0.0
    accepted_5m = stats_read(kind="accepted", minutes=5)
    return {
        "accepted_1m": stats_read(kind="accepted", minutes=1),
        "accepted_5m": accepted_5m,
        "events_per_second": round(accepted_5m / 300.0, 2),
        "pending": int(row[1]) if row else 0,
        "lag_seconds": round(max(lag, 0.0), 3),
        "rejected_5m": stats_read(kind="rejected", minutes=5),
        "rate_limited_5m": stats_read(kind="rate_limited", minutes=5),
        "measured_at": int(time.time()),
    }


def kpi_summary(
    *,
    tenant: Tenant,
    start: datetime,
    end: datetime,
    mover_metric: str = "plays",
    attribution: bool = False,
) -> dict[str, Any]:
    """Tenant totals over [start, end) and the top movers of `mover_metric` against the previous range of
    equal length. Money totals are in the tenant's reporting currency. `attribution`: the totals include
    `attributed_revenue` (same hour-bucket rule as the rollups)."""
    currency = tenant.reporting_currency
    totals: dict[str, int] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT metric, sum(value) FROM ingestion_rollup_hourly WHERE tenant_id = %s AND bucket >= %s "
            "AND bucket < %s AND (currency = '' OR currency = %s) GROUP BY metric",
            [tenant.pk, start, end, currency],
        )
        totals = {m: int(v) for m, v in cursor.fetchall()}
        cursor.execute(
            "SELECT count(DISTINCT user_id) FROM ingestion_listener_hourly "
            "WHERE tenant_id = %s AND bucket >= %s AND bucket < %s",
            [tenant.pk, start, end],
        )
        row = cursor.fetchone()
    totals["unique_listeners"] = int(row[0]) if row else 0
    metrics = KPI_METRICS if attribution else METRICS
    if attribution:
        totals["attributed_revenue"] = sum(
            attributed_revenue_buckets(tenant_id=tenant.pk, start=start, end=end, currency=currency).values()
        )
    previous_start = start - (end - start)
    now_values = rollup_totals(tenant_id=tenant.pk, metric=mover_metric, start=start, end=end)
    before = rollup_totals(tenant_id=tenant.pk, metric=mover_metric, start=previous_start, end=start)
    changes = sorted(
        ((a, now_values.get(a, 0) - before.get(a, 0)) for a in set(now_values) | set(before)),
        key=lambda item: (-abs(item[1]), item[0]),
    )[:10]
    from coliseum.models import Artist

    names = {
        a.pk: (a.external_id, a.name)
        for a in Artist.objects.filter(tenant=tenant, pk__in=[a for a, _ in changes])
    }
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "currency": currency,
        "totals": {m: totals.get(m, 0) for m in metrics},
        "movers": {
            "metric": mover_metric,
            "previous_from": previous_start.isoformat(),
            "items": [
                {
                    "artist_id": names.get(a, ("", ""))[0],
                    "name": names.get(a, ("", ""))[1],
                    "value": now_values.get(a, 0),
                    "previous": before.get(a, 0),
                    "change": change,
                }
                for a, change in changes
            ],
        },
    }
