"""The renderer on data dicts built here: PDF text and design, watermark, charts, CSV, the URL fetcher."""

from __future__ import annotations

import http.server
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from reports.charts import bar_chart, line_chart
from reports.rendering import Branding, render_csv, render_json, render_pdf
from tests.reports.conftest import pdf_text, rasterise_first_page

METRICS = (
    "plays",
    "listen_seconds",
    "unique_listeners",
    "votes",
    "attendance",
    "money_earned",
    "follows",
    "shares",
)


def artist_data(days: int = 30) -> dict[str, Any]:
    start = date(2026, 1, 1)
    daily: list[dict[str, Any]] = [
        {
            "date": (start + timedelta(days=i)).isoformat(),
            **{m: (i + 1) * (k + 1) for k, m in enumerate(METRICS)},
        }
        for i in range(days)
    ]
    totals = {m: sum(r[m] for r in daily) for m in METRICS}
    return {
        "schema": "coliseum.report/1",
        "kind": "artist",
        "title": "Maria Lua: artist report",
        "tenant": {"slug": "lisbon-live", "name": "Lisbon Live"},
        "currency": "EUR",
        "timezone": "UTC",
        "period": {"from": daily[0]["date"], "to": daily[-1]["date"], "days": days},
        "previous_period": {"from": "2025-12-02", "to": "2025-12-31", "days": days},
        "generated_at": "2026-02-01T08:00:00+00:00",
        "artist": {
            "id": 7,
            "external_id": "a7",
            "name": "Maria Lua",
            "genres": ["fado"],
            "home_city": "Lisbon",
        },
        "totals": totals,
        "previous_totals": {m: v // 2 for m, v in totals.items()},
        "change": {m: {"absolute": v - v // 2, "percent": 100.0} for m, v in totals.items()},
        "daily": daily,
        "ranks": {
            "window": "30d",
            "overall": {
                "plays": {"rank": 2, "score": 465},
                "votes": None,
                "unique_listeners": {"rank": 1, "score": 9},
            },
            "cities": [{"city": "Porto", "plays": {"rank": 1, "score": 40}}],
            "genres": [{"genre": "fado", "plays": {"rank": 3, "score": 465}}],
        },
        "top_cities": [{"city": "Porto", "plays": 40}],
        "top_shows": [
            {"show_id": 3, "title": "Coliseu Night", "city": "Porto", "attendance": 12, "votes": 30}
        ],
        "votes_per_show": [{"show_id": 3, "title": "Coliseu Night", "votes": 30}],
    }


def test_artist_pdf_reads_back_with_the_name_totals_ranks_and_page_numbers(tmp_path: Path) -> None:
    # given a 30-day artist report's figures
    data = artist_data()

    # when it is rendered to PDF
    pdf = render_pdf(data, Branding(qr_url="https://coliseum.test/r/token"))

    # then the text carries the artist, the exact totals, a rank, the tables and numbered pages
    text = pdf_text(pdf, tmp_path)
    assert "Maria Lua" in text
    assert f"{data['totals']['plays']:,}" in text  # 465
    assert f"EUR {data['totals']['money_earned'] / 100:,.2f}" in text  # minor units shown as major
    assert "Coliseu Night" in text
    assert "#2" in text
    pages = len(PdfReader(str(tmp_path / "report.pdf")).pages)
    assert pages >= 3
    assert f"Page 2 of {pages}" in text
    assert "BASIC PLAN" not in text
    png = rasterise_first_page(pdf, "report_artist_cover")
    assert png.stat().st_size > 1000


def test_artist_pdf_has_an_attribution_section_when_the_data_carries_one(tmp_path: Path) -> None:
    # given an artist report with attribution figures, and the same report without (a plan without funnels)
    data = artist_data()
    data["attribution"] = {
        "conversions": 9,
        "attributed": 7,
        "attributed_revenue": {"EUR": 4250},
        "by_touch_type": [
            {"key": "player.track_played", "attributed": True, "conversions": 5,
             "by_type": {"treasury.money_spent": 2, "coliseum.vote_cast": 3}, "revenue": {"EUR": 4000}},
            {"key": "social.track_shared", "attributed": True, "conversions": 2,
             "by_type": {"treasury.money_spent": 1, "concierto.event_attended": 1}, "revenue": {"EUR": 250}},
            {"key": None, "attributed": False, "conversions": 2,
             "by_type": {"coliseum.vote_cast": 2}, "revenue": {}},
        ],
        "by_source": [
            {"key": "tiktok", "attributed": True, "conversions": 2,
             "by_type": {"treasury.money_spent": 2}, "revenue": {"EUR": 4000}},
            {"key": "direct", "attributed": True, "conversions": 5,
             "by_type": {"coliseum.vote_cast": 5}, "revenue": {"EUR": 250}},
        ],
    }  # fmt: skip

    # when both are rendered
    text = pdf_text(render_pdf(data, Branding()), tmp_path)
    without = pdf_text(render_pdf(artist_data(), Branding()), tmp_path)

    # then the section lists each touch type and source with its conversions and revenue
    assert "Attribution" in text and "7 of 9 conversions" in text and "EUR 42.50" in text
    assert "Conversions per last touch" in text  # the chart's title
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert "Track played 5 2 0 3 EUR 40.00" in lines
    assert "Track shared 2 1 1 0 EUR 2.50" in lines
    assert "Unattributed 2 0 0 2 \u2013" in lines  # a dash: no money spent
    assert "tiktok 2 2 0 0 EUR 40.00" in lines
    assert "Attribution" not in without


def test_basic_watermark_appears_on_every_page(tmp_path: Path) -> None:
    # given a report rendered for a Basic tenant
    pdf = render_pdf(artist_data(), Branding(watermark=True))

    # then each page shows the watermark
    reader = PdfReader(_write(tmp_path, pdf))
    assert all("COLISEUM BASIC PLAN" in page.extract_text() for page in reader.pages)
    rasterise_first_page(pdf, "report_artist_watermarked")


def test_ninety_day_pdf_draws_line_charts(tmp_path: Path) -> None:
    # given 90 days of data, when rendered, then it is a valid multi-page PDF with every day in the table
    pdf = render_pdf(artist_data(days=90), Branding())
    text = pdf_text(pdf, tmp_path)
    assert "2026-03-31" in text
    assert "Plays per day" in text


def test_chart_helpers_draw_one_mark_per_value() -> None:
    labels = ["01-01", "01-02", "01-03"]
    bars = bar_chart(labels, [1, 5, 3], title="Votes <per> day")
    line = line_chart(labels, [1, 5, 3])
    assert bars.count("<rect") == 3
    assert "Votes &lt;per&gt; day" in bars  # labels are escaped
    assert line.count("<circle") == 3 and "<polyline" in line


def test_csv_is_the_daily_series_and_json_carries_the_same_numbers() -> None:
    data = artist_data(days=5)
    rows = render_csv(data).decode().splitlines()
    assert rows[0] == "date," + ",".join(METRICS)
    assert len(rows) == 6
    assert rows[1].startswith("2026-01-01,1,2,3")
    assert b'"plays": 15' in render_json(data)


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def test_renderer_never_fetches_a_url_even_if_one_reaches_the_template(tmp_path: Path) -> None:
    # given a local HTTP server and a logo pointing at it (as if a user had slipped a URL in)
    server = http.server.HTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/logo.png"
        # when the PDF is rendered
        pdf = render_pdf(artist_data(days=3), Branding(logo_data_uri=url))
    finally:
        server.shutdown()
        server.server_close()
    # then the PDF is made and the server was never asked for anything
    assert pdf.startswith(b"%PDF")
    assert _CountingHandler.hits == 0


def _write(tmp_path: Path, pdf: bytes) -> str:
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    return str(path)
