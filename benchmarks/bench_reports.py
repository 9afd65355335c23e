"""(h) Time to render a 90-day artist PDF report, from the rollups to the PDF bytes; target < 3 s.

Discovered by benchmarks/run.py (`make bench`): SECTIONS maps a section letter to fn(ctx) -> figures.
Seeds its own tenant ("bench-reports") through ingestion's one write path, idempotently (fixed event ids)."""

from __future__ import annotations

import os
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

EVENTS_PER_DAY = 60
DAYS = 90
RUNS = 3


def _seed() -> tuple[Any, Any, date, date]:
    from coliseum.models import Artist, Show, Tenant
    from ingestion.services import event_batch_ingest, processing_run_pending

    tenant, _ = Tenant.objects.get_or_create(
        slug="bench-reports",
        defaults={"name": "Bench Reports", "plan": "enterprise", "reporting_currency": "EUR"},
    )
    end_day = datetime.now(UTC).date() - timedelta(days=1)
    start_day = end_day - timedelta(days=DAYS - 1)
    events: list[dict[str, Any]] = []
    for d in range(DAYS):
        day = start_day + timedelta(days=d)
        # A weekly rhythm and a slow rise, so the charts have a shape.
        for i in range(EVENTS_PER_DAY - 20 + (d % 7) * 3 + d // 10):
            at = datetime(day.year, day.month, day.day, 10, i % 60, tzinfo=UTC)
            artist_ext = f"bench-a{i % 8}"
            if i % 10 == 0:
                kind, props = (
                    "coliseum.vote_cast",
                    {"artist_id": artist_ext, "show_id": f"bench-s{d % 5}", "round": 1},
                )
            elif i % 15 == 1:
                kind = "treasury.money_earned"
                props = {"artist_id": artist_ext, "amount_minor": 500 + i, "currency": "EUR", "reason": "tip"}
            else:
                kind = "player.track_played"
                city = ("Lisbon", "Porto", "Madrid")[i % 3]
                props = {
                    "track_id": f"t{i}",
                    "artist_id": artist_ext,
                    "duration_seconds": 120 + i,
                    "city": city,
                }
            events.append(
                {"event_id": f"bench-rep-{day.isoformat()}-{i}", "type": kind, "occurred_at": at.isoformat(),
                 "user_id": f"fan-{(d * 7 + i) % 400}", "properties": props}
            )  # fmt: skip
    for offset in range(0, len(events), 1000):
        event_batch_ingest(tenant=tenant, events=events[offset : offset + 1000], source="import")
    processing_run_pending()
    artist = Artist.objects.get(tenant=tenant, external_id="bench-a0")
    for show in Show.objects.filter(tenant=tenant):
        show.lineup.add(artist)
    return tenant, artist, start_day, end_day


def artist_pdf_90d(ctx: Any = None) -> dict[str, Any]:
    from reports.data import artist_report_data
    from reports.rendering import Branding, render_pdf

    tenant, artist, start_day, end_day = _seed()
    timings, data_timings, size = [], [], 0
    for _ in range(RUNS):
        started = time.perf_counter()
        data = artist_report_data(tenant=tenant, artist_id=artist.pk, start_day=start_day, end_day=end_day)
        gathered = time.perf_counter()
        pdf = render_pdf(data, Branding(qr_url="https://coliseum.example/r/bench"))
        timings.append(time.perf_counter() - started)
        data_timings.append(gathered - started)
        size = len(pdf)
    median = statistics.median(timings)
    return {
        "title": "90-day artist PDF report, rollups to PDF bytes (target < 3 s)",
        "h_artist_pdf_90d_seconds": round(median, 3),
        "h_data_gathering_seconds": round(statistics.median(data_timings), 3),
        "h_pdf_bytes": size,
        "h_target_seconds": 3.0,
        "h_ok": median < 3.0,
    }


SECTIONS = {"h": artist_pdf_90d}


if __name__ == "__main__":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coliseum.settings.local")
    django.setup()
    import logging

    logging.getLogger("weasyprint").setLevel(logging.WARNING)
    print(artist_pdf_90d())
