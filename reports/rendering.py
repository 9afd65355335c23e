"""Turn a report's data dict (reports.data) into bytes: PDF (WeasyPrint), JSON or CSV.

The PDF never reaches the network or the file system for a resource: every image (logo, QR code) is
embedded as a data: URI and the URL fetcher refuses any other scheme, so a user-supplied value can never
make the renderer fetch a URL."""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

import segno
from django.template.loader import render_to_string

from ingestion.catalog import METRIC_LABELS as CATALOG_METRIC_LABELS

from .charts import ACCENT, bar_chart, line_chart

METRIC_LABELS: dict[str, str] = {**CATALOG_METRIC_LABELS, "events": "Activity"}
MONEY = ("money_spent", "money_earned")
DASH = "\u2013"


@dataclass
class Branding:
    primary_color: str = ACCENT
    logo_data_uri: str = ""
    watermark: bool = False
    qr_url: str = ""


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Section:
    """A titled part of the report after the details (e.g. the artist's attribution)."""

    title: str
    note: str = ""
    charts: list[dict[str, Any]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass
class Page:
    """What the generic template shows; built per kind from the data dict."""

    subtitle: str
    tiles: list[dict[str, str]] = field(default_factory=list)
    charts: list[dict[str, Any]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)


def fmt_value(metric: str, value: int | None, currency: str) -> str:
    if value is None:
        return DASH
    if metric in MONEY:
        # Minor units to major: every supported reporting currency has two decimals.
        return f"{currency} {value / 100:,.2f}"
    if metric == "listen_seconds":
        hours = value / 3600
        return f"{hours:,.1f} h" if hours >= 1 else f"{value // 60:,} min"
    return f"{value:,}"


# What a change says when the previous period starts before the tenant's data (reports/data.py's rule).
NOT_ENOUGH_HISTORY = "not enough history to compare"


def _fmt_change(change: dict[str, Any] | None) -> tuple[str, str]:
    if not change:
        return "", "flat"
    pct = change.get("percent")
    absolute = int(change.get("absolute") or 0)
    if change.get("enough_history") is False:
        return NOT_ENOUGH_HISTORY, "flat"
    if pct is None:
        return ("new" if absolute > 0 else DASH), ("up" if absolute > 0 else "flat")
    arrow = "▲" if pct > 0 else "▼" if pct < 0 else "■"
    return f"{arrow} {abs(pct):.1f}% vs previous period", ("up" if pct > 0 else "down" if pct < 0 else "flat")


def _tiles(data: dict[str, Any]) -> list[dict[str, str]]:
    tiles = []
    for metric, value in data.get("totals", {}).items():
        text, css = _fmt_change(data.get("change", {}).get(metric))
        tiles.append(
            {
                "label": METRIC_LABELS.get(metric, metric),
                "value": fmt_value(metric, value, data["currency"]),
                "change": text,
                "trend": css,
            }
        )
    return tiles


def _series_charts(data: dict[str, Any], metrics: list[str], color: str) -> list[dict[str, Any]]:
    daily = data.get("daily", [])
    labels = [row["date"][5:] for row in daily]
    charts = []
    for metric in metrics:
        values = [float(row.get(metric, 0)) for row in daily]
        if metric in MONEY:
            values = [v / 100 for v in values]
        chart = line_chart if len(values) > 14 else bar_chart
        title = f"{METRIC_LABELS.get(metric, metric)} per day"
        charts.append({"title": title, "svg": chart(labels, values, title=title, color=color)})
    return charts


def _rank(found: dict[str, int] | None) -> str:
    return DASH if not found else f"#{found['rank']}"


def _artist_page(data: dict[str, Any], color: str) -> Page:
    artist, cur = data["artist"], data["currency"]
    page = Page(subtitle=artist["name"], tiles=_tiles(data))
    page.charts = _series_charts(data, ["plays", "unique_listeners", "votes", "money_earned"], color)
    ranks = data.get("ranks", {})
    rank_rows = [[f"Overall · {METRIC_LABELS[m]}", _rank(r)] for m, r in ranks.get("overall", {}).items()]
    rank_rows += [[f"{c['city']} · Plays", _rank(c["plays"])] for c in ranks.get("cities", [])]
    rank_rows += [[f"{g['genre'].title()} · Plays", _rank(g["plays"])] for g in ranks.get("genres", [])]
    page.tables.append(
        Table(
            "Leaderboard ranks",
            ["Board", "Rank"],
            rank_rows,
            note=f"Live boards, {ranks.get('window', '')} window, at the time of rendering.",
        )
    )
    page.tables.append(
        Table(
            "Top cities",
            ["City", "Plays"],
            [[c["city"], f"{c['plays']:,}"] for c in data.get("top_cities", [])],
        )
    )
    page.tables.append(
        Table(
            "Top shows",
            ["Show", "City", "Attendance", "Votes"],
            [
                [s["title"], s["city"], f"{s['attendance']:,}", f"{s['votes']:,}"]
                for s in data.get("top_shows", [])
            ],
        )
    )
    page.tables.append(
        Table(
            "Daily totals",
            ["Date", "Plays", "Listeners", "Votes", "Attendance", "Earned"],
            [
                [
                    r["date"],
                    f"{r['plays']:,}",
                    f"{r['unique_listeners']:,}",
                    f"{r['votes']:,}",
                    f"{r['attendance']:,}",
                    fmt_value("money_earned", r["money_earned"], cur),
                ]
                for r in data.get("daily", [])
            ],
        )
    )
    if data.get("attribution"):
        page.sections.append(_attribution_section(data["attribution"], color))
    return page


TOUCH_LABELS = {
    "player.track_played": "Track played",
    "social.track_shared": "Track shared",
    "social.artist_followed": "Artist followed",
}


def _money(revenue: dict[str, int]) -> str:
    """Minor units per currency, each shown in major units ("EUR 12.50, USD 3.00")."""
    return ", ".join(fmt_value("money_spent", v, c) for c, v in sorted(revenue.items())) or DASH


def _attribution_section(attribution: dict[str, Any], color: str) -> Section:
    columns = ["Conversions", "Purchases", "Attended", "Votes", "Money spent"]

    def rows(groups: list[dict[str, Any]], label: Any) -> list[list[str]]:
        return [
            [
                label(g["key"]) if g["key"] is not None else "Unattributed",
                f"{g['conversions']:,}",
                f"{g['by_type'].get('treasury.money_spent', 0):,}",
                f"{g['by_type'].get('concierto.event_attended', 0):,}",
                f"{g['by_type'].get('coliseum.vote_cast', 0):,}",
                _money(g["revenue"]),
            ]
            for g in groups
        ]

    by_type = attribution.get("by_touch_type", [])
    labels = [TOUCH_LABELS.get(g["key"], g["key"]) if g["key"] else "Unattributed" for g in by_type]
    title = "Conversions per last touch"
    section = Section(
        "Attribution",
        note=(
            f"{attribution['attributed']:,} of {attribution['conversions']:,} conversions (purchases, "
            "attendance, votes) followed a touch of the artist by the same fan within the lookback window; "
            f"attributed revenue {_money(attribution.get('attributed_revenue', {}))}."
        ),
    )
    if by_type:
        values = [float(g["conversions"]) for g in by_type]
        section.charts.append({"title": title, "svg": bar_chart(labels, values, title=title, color=color)})
    section.tables.append(
        Table("By last touch type", ["Last touch", *columns], rows(by_type, lambda k: TOUCH_LABELS.get(k, k)))
    )
    section.tables.append(
        Table(
            "By source",
            ["Source", *columns],
            rows(attribution.get("by_source", []), str),
            note="The touch's campaign source; `direct` when it had none.",
        )
    )
    return section


def _show_page(data: dict[str, Any], color: str) -> Page:
    show = data["show"]
    where = ", ".join(x for x in (show.get("venue"), show.get("city")) if x)
    page = Page(subtitle=f"{show['title']}" + (f" — {where}" if where else ""), tiles=_tiles(data))
    page.charts = _series_charts(data, ["attendance", "votes"], color)
    for rnd in data.get("rounds", []):
        winner = rnd.get("winner")
        page.tables.append(
            Table(
                f"Round {rnd['round']} votes",
                ["Artist", "Votes"],
                [
                    [
                        v["artist"] + (" ★" if winner and v["artist_id"] == winner["artist_id"] else ""),
                        f"{v['votes']:,}",
                    ]
                    for v in rnd["votes"]
                ],
                note=(f"Winner: {winner['artist']}." if winner else "No single winner (tie or no votes).")
                + " Standings over the whole show, first vote per fan per round.",
            )
        )
    page.tables.append(
        Table(
            "Attendance by artist",
            ["Artist", "Attendance"],
            [[r["artist"], f"{r['attendance']:,}"] for r in data.get("attendance_by_artist", [])],
        )
    )
    board = data.get("city_board")
    if board and isinstance(board.get("board"), dict):
        rows = board["board"].get("entries") or []
        page.tables.append(
            Table(
                f"{board['city']} board ({board['window']}, votes)",
                ["Rank", "Artist", "Score"],
                [
                    [
                        str(r.get("rank", "")),
                        str(r.get("artist_name") or r.get("artist", "")),
                        f"{r.get('score', 0):,}",
                    ]
                    for r in rows
                ],
            )
        )
    return page


def _tenant_page(data: dict[str, Any], color: str) -> Page:
    page = Page(subtitle=data["tenant"]["name"], tiles=_tiles(data))
    page.charts = _series_charts(data, ["events"], color)
    for metric in ("plays", "votes", "money_earned", "attendance"):
        rows = data.get("top_artists", {}).get(metric, [])
        page.tables.append(
            Table(
                f"Top artists · {METRIC_LABELS[metric]}",
                ["Artist", METRIC_LABELS[metric]],
                [[r["artist"], fmt_value(metric, r["value"], data["currency"])] for r in rows],
            )
        )
    page.tables.append(
        Table(
            "Top movers (plays vs previous period)",
            ["Artist", "Plays", "Change"],
            [
                [
                    r["artist"],
                    f"{r['plays']:,}",
                    f"{r['absolute']:+,}"
                    + (
                        f" ({r['percent']:+.1f}%)"
                        if r["percent"] is not None
                        else f" ({NOT_ENOUGH_HISTORY})"
                        if r.get("enough_history") is False
                        else ""
                    ),
                ]
                for r in data.get("top_movers", [])
            ],
        )
    )
    return page


PAGE_BUILDERS = {"artist": _artist_page, "show": _show_page, "tenant": _tenant_page}


def _qr_data_uri(url: str) -> str:
    return segno.make(url, error="m").svg_data_uri(scale=3, dark="#3b2f2a")


def _refuse_everything_but_data_uris() -> Any:
    from weasyprint.urls import URLFetcher

    # Only data: URIs (our own embedded logo and QR code). http(s):, file:, ftp: are all refused.
    return URLFetcher(allowed_protocols={"data"}, allow_redirects=False, timeout=1)


def render_html(data: dict[str, Any], branding: Branding) -> str:
    page = PAGE_BUILDERS[data["kind"]](data, branding.primary_color)
    context = {
        "data": data,
        "page": page,
        "branding": branding,
        "qr": _qr_data_uri(branding.qr_url) if branding.qr_url else "",
    }
    return render_to_string("reports/report.html", context)


def render_pdf(data: dict[str, Any], branding: Branding) -> bytes:
    from weasyprint import HTML

    html = render_html(data, branding)
    pdf = HTML(string=html, url_fetcher=_refuse_everything_but_data_uris()).write_pdf()
    assert isinstance(pdf, bytes)
    return pdf


def render_json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False).encode("utf-8")


def render_csv(data: dict[str, Any]) -> bytes:
    """The daily series: one row per day, one column per metric (money in minor units, as in JSON)."""
    daily = data.get("daily", [])
    columns = ["date", *[k for k in (daily[0] if daily else {}) if k != "date"]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in daily:
        writer.writerow([row.get(c, "") for c in columns])
    return buffer.getvalue().encode("utf-8")


def logo_data_uri(content_type: str, content: bytes) -> str:
    return f"data:{content_type};base64,{base64.b64encode(content).decode('ascii')}"
