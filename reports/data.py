"""Everything a report says, gathered in one place, from the other apps' selectors only.

The figures come from `ingestion.selectors.rollup_totals` (the same function the KPI API sums) and the
ranks from `leaderboards.selectors` (what the leaderboard API answers), so a report always agrees with the
APIs for the same period. No SQL on other apps' tables here.

Each builder returns a plain JSON-ready dict (documented by REPORT_JSON_SCHEMA in reports.schema): the JSON
format is that dict, the PDF renders it, the CSV writes its `daily` series."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Collection
from datetime import date, datetime, time, timedelta
from typing import Any

from django.utils import timezone

from billing.entitlements import entitlements_for
from coliseum.errors import ApplicationError, NotFoundError
from coliseum.models import Artist, Show, Tenant

SCHEMA_VERSION = "coliseum.report/1"
METRICS = (
    "plays",
    "listen_seconds",
    "unique_listeners",
    "votes",
    "attendance",
    "money_spent",
    "money_earned",
    "follows",
    "shares",
)
ARTIST_METRICS = (
    "plays",
    "listen_seconds",
    "unique_listeners",
    "votes",
    "attendance",
    "money_earned",
    "follows",
    "shares",
)
MONEY_METRICS = ("money_spent", "money_earned")
RANK_METRICS = ("plays", "votes", "unique_listeners")
TOP_N = 10


class ReportDataUnavailable(ApplicationError):
    """The data sources (ingestion/leaderboards selectors) are not installed: a permanent failure."""

    code = "report_data_unavailable"
    status_code = 503


RollupTotals = Callable[..., dict[int, int]]


def _kpi(
    tenant: Tenant, metrics: Collection[str], start_day: date, end_day: date, *, artist_id: int | None = None
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Totals and the daily series from `kpi_series`, exactly what GET /api/v1/kpis answers for the period."""
    try:
        from ingestion.selectors import kpi_series
    except ImportError as exc:
        raise ReportDataUnavailable("Event rollups are not available on this installation yet.") from exc
    start, end = period_bounds(tenant, start_day, end_day)
    body = kpi_series(
        tenant_id=tenant.pk,
        metrics=list(metrics),
        period="daily",
        start=start,
        end=end,
        tz=tenant.timezone or "UTC",
        artist_id=artist_id,
    )
    totals = {m: int(body["totals"].get(m, 0)) for m in metrics}
    daily = [
        {"date": str(row["bucket"])[:10], **{m: int(row.get(m, 0)) for m in metrics}}
        for row in body["series"]
    ]
    return totals, daily


def _rollup_totals() -> RollupTotals:
    try:
        from ingestion.selectors import rollup_totals
    except ImportError as exc:  # until the ingestion issue lands
        raise ReportDataUnavailable("Event rollups are not available on this installation yet.") from exc
    return rollup_totals  # type: ignore[no-any-return]


def _leaderboard_selectors() -> Any | None:
    try:
        from leaderboards import selectors
    except ImportError:
        return None
    return selectors


def period_bounds(tenant: Tenant, start_day: date, end_day: date) -> tuple[datetime, datetime]:
    """[from 00:00, to+1 00:00) in the tenant's time zone, as aware datetimes."""
    tz = zoneinfo.ZoneInfo(tenant.timezone or "UTC")
    start = datetime.combine(start_day, time.min, tzinfo=tz)
    end = datetime.combine(end_day + timedelta(days=1), time.min, tzinfo=tz)
    return start, end


def _days(start_day: date, end_day: date) -> list[date]:
    return [start_day + timedelta(days=i) for i in range((end_day - start_day).days + 1)]


def _change(current: int, previous: int, *, enough_history: bool = True) -> dict[str, Any]:
    """The change against the previous period. Without enough history (see _history_covers) the percentage
    is None and `enough_history` false: the report says so instead of a meaningless "+11,940%"."""
    percent = (
        None if previous == 0 or not enough_history else round((current - previous) * 100.0 / previous, 1)
    )
    return {"absolute": current - previous, "percent": percent, "enough_history": enough_history}


def _history_covers(tenant: Tenant, previous_period: dict[str, Any]) -> bool:
    """The rule for a percentage: the previous period must lie wholly inside the tenant's data, i.e. its
    earliest hour with data is at or before the previous period's first hour. A tenant with a day of history
    compared against a week that is mostly from before its data would otherwise show a huge growth."""
    try:
        from ingestion.selectors import rollup_first_bucket
    except ImportError as exc:
        raise ReportDataUnavailable("Event rollups are not available on this installation yet.") from exc
    first = rollup_first_bucket(tenant_id=tenant.pk)
    if first is None:
        return False
    start, _ = period_bounds(
        tenant, date.fromisoformat(previous_period["from"]), date.fromisoformat(previous_period["to"])
    )
    return bool(first <= start)


def rank_window(tenant: Tenant, days: int) -> str:
    """The board window matching the period's length, among those the tenant's plan may read."""
    wanted = (
        "24h" if days <= 1 else "7d" if days <= 7 else "30d" if days <= 30 else "90d" if days <= 90 else "all"
    )
    allowed = entitlements_for(tenant).leaderboard_windows
    if wanted in allowed:
        return wanted
    order = ("1h", "24h", "7d", "30d", "90d", "all")
    below = [w for w in order[: order.index(wanted)] if w in allowed]
    return below[-1] if below else allowed[0]


def _base(tenant: Tenant, kind: str, title: str, start_day: date, end_day: date) -> dict[str, Any]:
    days = (end_day - start_day).days + 1
    prev_end = start_day - timedelta(days=1)
    prev_start = prev_end - timedelta(days=days - 1)
    return {
        "schema": SCHEMA_VERSION,
        "kind": kind,
        "title": title,
        "tenant": {"slug": tenant.slug, "name": tenant.name},
        "currency": tenant.reporting_currency,
        "timezone": tenant.timezone,
        "period": {"from": start_day.isoformat(), "to": end_day.isoformat(), "days": days},
        "previous_period": {"from": prev_start.isoformat(), "to": prev_end.isoformat(), "days": days},
        "generated_at": timezone.now().isoformat(),
    }


def _totals(
    rollup: RollupTotals,
    tenant: Tenant,
    metrics: Collection[str],
    start: datetime,
    end: datetime,
    **filters: Any,
) -> dict[str, dict[int, int]]:
    return {m: rollup(tenant_id=tenant.pk, metric=m, start=start, end=end, **filters) for m in metrics}


def _daily(
    rollup: RollupTotals,
    tenant: Tenant,
    metrics: Collection[str],
    start_day: date,
    end_day: date,
    *,
    artist_id: int | None = None,
    **filters: Any,
) -> list[dict[str, Any]]:
    """One row per day; each value is the same rollup_totals sum the KPI API gives for that day."""
    rows: list[dict[str, Any]] = []
    ids = [artist_id] if artist_id is not None else None
    for day in _days(start_day, end_day):
        start, end = period_bounds(tenant, day, day)
        row: dict[str, Any] = {"date": day.isoformat()}
        for metric in metrics:
            per_artist = rollup(
                tenant_id=tenant.pk, metric=metric, start=start, end=end, artist_ids=ids, **filters
            )
            row[metric] = per_artist.get(artist_id, 0) if artist_id is not None else sum(per_artist.values())
        rows.append(row)
    return rows


MAX_CITY_CANDIDATES = 40


def _known_cities(tenant: Tenant, artist: Artist) -> list[str]:
    own = [artist.home_city, *artist.shows.values_list("city", flat=True)]
    known = [
        *Show.objects.filter(tenant=tenant).exclude(city="").values_list("city", flat=True).distinct()[:100],
        *Artist.objects.filter(tenant=tenant)
        .exclude(home_city="")
        .values_list("home_city", flat=True)
        .distinct()[:100],
    ]
    ordered = dict.fromkeys(c for c in [*own, *known] if c)  # the artist's own cities first
    return list(ordered)[:MAX_CITY_CANDIDATES]


def artist_report_data(
    *, tenant: Tenant, artist_id: int, start_day: date, end_day: date, title: str = ""
) -> dict[str, Any]:
    artist = Artist.objects.filter(tenant=tenant, pk=artist_id).first()
    if artist is None:
        raise NotFoundError("No such artist.")
    rollup = _rollup_totals()
    data = _base(tenant, "artist", title or f"{artist.name}: artist report", start_day, end_day)
    start, end = period_bounds(tenant, start_day, end_day)
    p = data["previous_period"]
    ids = [artist.pk]
    totals, daily = _kpi(tenant, ARTIST_METRICS, start_day, end_day, artist_id=artist.pk)
    previous, _ = _kpi(
        tenant,
        ARTIST_METRICS,
        date.fromisoformat(p["from"]),
        date.fromisoformat(p["to"]),
        artist_id=artist.pk,
    )
    data["artist"] = {
        "id": artist.pk,
        "external_id": artist.external_id,
        "name": artist.name,
        "genres": list(artist.genres),
        "home_city": artist.home_city,
    }
    data["totals"] = totals
    data["previous_totals"] = previous
    covered = _history_covers(tenant, p)
    data["previous_period"]["enough_history"] = covered
    data["change"] = {m: _change(totals[m], previous[m], enough_history=covered) for m in ARTIST_METRICS}
    data["daily"] = daily

    # Top cities by plays. rollup_totals answers one city at a time and no selector lists the cities an
    # artist was played in, so the candidates are the cities the tenant knows: its shows' and its artists'
    # home cities (capped). A city seen only in events is missed until ingestion offers a per-city selector.
    cities = _known_cities(tenant, artist)
    city_plays: list[dict[str, Any]] = []
    for city in cities:
        value = rollup(tenant_id=tenant.pk, metric="plays", start=start, end=end, city=city, artist_ids=ids)
        city_plays.append({"city": city, "plays": value.get(artist.pk, 0)})
    city_plays.sort(key=lambda r: (-r["plays"], r["city"]))
    data["top_cities"] = [c for c in city_plays if c["plays"]][:TOP_N]

    shows = list(artist.shows.filter(tenant=tenant).order_by("-starts_at", "title")[:50])
    show_rows: list[dict[str, Any]] = []
    for show in shows:
        att = rollup(
            tenant_id=tenant.pk, metric="attendance", start=start, end=end, show_id=show.pk, artist_ids=ids
        )
        votes = rollup(
            tenant_id=tenant.pk, metric="votes", start=start, end=end, show_id=show.pk, artist_ids=ids
        )
        show_rows.append(
            {
                "show_id": show.pk,
                "title": show.title,
                "city": show.city,
                "starts_at": show.starts_at.isoformat() if show.starts_at else None,
                "attendance": att.get(artist.pk, 0),
                "votes": votes.get(artist.pk, 0),
            }
        )
    data["top_shows"] = sorted(show_rows, key=lambda r: (-r["attendance"], r["title"]))[:TOP_N]
    data["votes_per_show"] = [
        {"show_id": r["show_id"], "title": r["title"], "votes": r["votes"]}
        for r in sorted(show_rows, key=lambda r: (-r["votes"], r["title"]))
        if r["votes"]
    ]
    data["ranks"] = _artist_ranks(
        tenant, artist, data["period"]["days"], [c["city"] for c in data["top_cities"][:3]]
    )
    data["attribution"] = _artist_attribution(tenant, artist.pk, start, end)
    return data


def _artist_attribution(
    tenant: Tenant, artist_id: int, start: datetime, end: datetime
) -> dict[str, Any] | None:
    """The artist's conversions in the period per last touch type and per touch source, exactly what
    GET /api/v1/attribution answers for the same range, and the attributed revenue (the KPI's figure).
    None when the plan has no funnels (the API refuses it too) or the funnels app is not installed."""
    if not entitlements_for(tenant).funnels:
        return None
    try:
        from ingestion.funnels.selectors import attributed_revenue, attribution_summary
    except ImportError:
        return None
    by_type = attribution_summary(
        tenant_id=tenant.pk, start=start, end=end, group_by="touch_type", artist_id=artist_id
    )
    by_source = attribution_summary(
        tenant_id=tenant.pk, start=start, end=end, group_by="source", artist_id=artist_id
    )
    return {
        "conversions": sum(g["conversions"] for g in by_type),
        "attributed": sum(g["conversions"] for g in by_type if g["attributed"]),
        "attributed_revenue": attributed_revenue(
            tenant_id=tenant.pk, start=start, end=end, artist_id=artist_id
        ),
        "by_touch_type": by_type,
        "by_source": by_source,
    }


def _artist_ranks(tenant: Tenant, artist: Artist, days: int, cities: list[str]) -> dict[str, Any]:
    selectors = _leaderboard_selectors()
    window = rank_window(tenant, days)
    out: dict[str, Any] = {"window": window, "overall": {}, "cities": [], "genres": []}
    if selectors is None:
        return out

    def rank(metric: str, **filters: Any) -> dict[str, int] | None:
        found = selectors.artist_rank(
            tenant=tenant, metric=metric, window=window, artist_id=artist.pk, **filters
        )
        return None if found is None else {"rank": int(found[0]), "score": int(found[1])}

    out["overall"] = {m: rank(m) for m in RANK_METRICS}
    out["cities"] = [{"city": c, "plays": rank("plays", city=c)} for c in cities]
    out["genres"] = [{"genre": g, "plays": rank("plays", genre=g)} for g in list(artist.genres)[:3]]
    return out


def show_report_data(
    *, tenant: Tenant, show_id: int, start_day: date, end_day: date, title: str = ""
) -> dict[str, Any]:
    show = Show.objects.filter(tenant=tenant, pk=show_id).first()
    if show is None:
        raise NotFoundError("No such show.")
    rollup = _rollup_totals()
    from ingestion.selectors import show_round_votes

    data = _base(tenant, "show", title or f"{show.title}: show report", start_day, end_day)
    start, end = period_bounds(tenant, start_day, end_day)
    lineup = {a.pk: a for a in show.lineup.all()}
    att = rollup(tenant_id=tenant.pk, metric="attendance", start=start, end=end, show_id=show.pk)
    spent = rollup(tenant_id=tenant.pk, metric="money_spent", start=start, end=end, show_id=show.pk)
    names = {a.pk: a.name for a in Artist.objects.filter(tenant=tenant, pk__in=set(att) | set(lineup))}
    rounds_raw = show_round_votes(tenant_id=tenant.pk, show_id=show.pk)
    voted_ids = {aid for votes in rounds_raw.values() for aid in votes}
    names.update({a.pk: a.name for a in Artist.objects.filter(tenant=tenant, pk__in=voted_ids - set(names))})
    rounds: list[dict[str, Any]] = []
    for number in sorted(rounds_raw):
        votes = sorted(rounds_raw[number].items(), key=lambda kv: (-kv[1], names.get(kv[0], "")))
        rounds.append(
            {
                "round": number,
                "votes": [
                    {"artist_id": aid, "artist": names.get(aid, str(aid)), "votes": v} for aid, v in votes
                ],
                "winner": (
                    {"artist_id": votes[0][0], "artist": names.get(votes[0][0], "")}
                    if votes and (len(votes) == 1 or votes[0][1] > votes[1][1])
                    else None
                ),
            }
        )
    data["show"] = {
        "id": show.pk,
        "external_id": show.external_id,
        "title": show.title,
        "venue": show.venue,
        "city": show.city,
        "starts_at": show.starts_at.isoformat() if show.starts_at else None,
        "lineup": [{"artist_id": a.pk, "artist": a.name} for a in lineup.values()],
    }
    # A fan's attendance is recorded per artist on the bill, so the show's attendance is the largest
    # per-artist count, not the sum (which would count a fan once per act).
    data["totals"] = {
        "attendance": max(att.values(), default=0),
        "money_spent": sum(spent.values()),
        # Votes in the period, from the rollups (the daily chart sums to it). `rounds` below are the show's
        # standings over its whole life, as GET /api/v1/shows/{id}/standings gives them.
        "votes": sum(
            rollup(tenant_id=tenant.pk, metric="votes", start=start, end=end, show_id=show.pk).values()
        ),
    }
    data["attendance_by_artist"] = [
        {"artist_id": aid, "artist": names.get(aid, str(aid)), "attendance": v}
        for aid, v in sorted(att.items(), key=lambda kv: -kv[1])
    ]
    data["rounds"] = rounds
    data["daily"] = _daily(
        rollup, tenant, ("attendance", "money_spent", "votes"), start_day, end_day, show_id=show.pk
    )
    data["city_board"] = _city_board(tenant, show, data["period"]["days"], list(lineup))
    return data


def _city_board(tenant: Tenant, show: Show, days: int, lineup_ids: list[int]) -> dict[str, Any] | None:
    selectors = _leaderboard_selectors()
    if selectors is None or not show.city:
        return None
    window = rank_window(tenant, days)
    anchor = lineup_ids[0] if lineup_ids else None
    page = selectors.board_page(
        tenant=tenant, metric="votes", window=window, city=show.city, page=1, page_size=10, artist_id=anchor
    )
    return {"city": show.city, "metric": "votes", "window": window, "board": page}


def tenant_report_data(*, tenant: Tenant, start_day: date, end_day: date, title: str = "") -> dict[str, Any]:
    rollup = _rollup_totals()
    data = _base(tenant, "tenant", title or f"{tenant.name}: activity report", start_day, end_day)
    start, end = period_bounds(tenant, start_day, end_day)
    p = data["previous_period"]
    prev_start_day, prev_end_day = date.fromisoformat(p["from"]), date.fromisoformat(p["to"])
    prev_start, prev_end = period_bounds(tenant, prev_start_day, prev_end_day)
    # Tenant-wide totals and series: the KPI API's own figures (exact distinct listeners included).
    totals, daily = _kpi(tenant, METRICS, start_day, end_day)
    previous, _ = _kpi(tenant, METRICS, prev_start_day, prev_end_day)
    data["totals"] = totals
    data["previous_totals"] = previous
    covered = _history_covers(tenant, p)
    data["previous_period"]["enough_history"] = covered
    data["change"] = {m: _change(totals[m], previous[m], enough_history=covered) for m in METRICS}
    per_artist = _totals(rollup, tenant, METRICS, start, end)
    prev_plays = rollup(tenant_id=tenant.pk, metric="plays", start=prev_start, end=prev_end)
    ids = set().union(*(set(v) for v in per_artist.values()), set(prev_plays))
    names = dict(Artist.objects.filter(tenant=tenant, pk__in=ids).values_list("pk", "name"))
    data["top_artists"] = {
        m: [
            {"artist_id": aid, "artist": names.get(aid, str(aid)), "value": v}
            for aid, v in sorted(per_artist[m].items(), key=lambda kv: (-kv[1], names.get(kv[0], "")))[:TOP_N]
            if v
        ]
        for m in METRICS
    }
    movers: list[dict[str, Any]] = []
    for aid in ids:
        now_v, before = per_artist["plays"].get(aid, 0), prev_plays.get(aid, 0)
        if now_v != before:
            movers.append(
                {
                    "artist_id": aid,
                    "artist": names.get(aid, str(aid)),
                    "plays": now_v,
                    **_change(now_v, before, enough_history=covered),
                }
            )
    movers.sort(key=lambda r: (-abs(r["absolute"]), r["artist"]))
    data["top_movers"] = movers[:TOP_N]
    # "events" per day: the day's count-type activity (plays + votes + attendance + follows + shares).
    for row in daily:
        row["events"] = sum(row[m] for m in ("plays", "votes", "attendance", "follows", "shares"))
    data["daily"] = daily
    return data


def report_data(*, tenant: Tenant, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    start_day, end_day = date.fromisoformat(params["from"]), date.fromisoformat(params["to"])
    title = params.get("title") or ""
    if kind == "artist":
        return artist_report_data(
            tenant=tenant,
            artist_id=int(params["artist_id"]),
            start_day=start_day,
            end_day=end_day,
            title=title,
        )
    if kind == "show":
        return show_report_data(
            tenant=tenant, show_id=int(params["show_id"]), start_day=start_day, end_day=end_day, title=title
        )
    return tenant_report_data(tenant=tenant, start_day=start_day, end_day=end_day, title=title)
