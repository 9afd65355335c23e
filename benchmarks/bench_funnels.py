"""Funnels and attribution (`make bench ONLY=i`): a 90-day funnel over 1M logged events, and attribution of
processor-sized batches.

Load: one server-side INSERT ... SELECT over generate_series (COPY speed, no client round trips) writes 1M
events for one tenant over the last 90 days: 20,000 fans, 50 artists, a realistic mix (55% plays, 25% other
types, 6% shares, 4% follows, 4% money spent, 4% votes, 2% attendance), then VACUUM (ANALYZE). Each funnel
is run 3 times; the figures are the median and the best wall time of funnel_compute (the query plus Python),
in the tenant's row-level-security scope as a request runs it, on the machine as shared with everyone else
(see the load average in latest.json)."""

from __future__ import annotations

import contextlib
import statistics
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

EVENTS = 1_000_000
FANS = 20_000
ARTISTS = 50

_LOAD_SQL = """
SELECT setseed(0.42);
INSERT INTO ingestion_event (tenant_id, event_id, type, occurred_at, user_id, artist_id, city, amount_minor,
    currency, properties, context, source)
SELECT %(tenant_id)s, 'bench-' || g, k.type, %(end)s - (random() * interval '90 days'),
       'fan-' || (floor(random() * %(fans)s))::int,
       CASE WHEN k.type LIKE 'session.%%' THEN NULL ELSE %(artist0)s + floor(random() * %(artists)s)::int END,
       CASE WHEN random() < 0.5 THEN 'Lisbon' ELSE 'Porto' END,
       CASE WHEN k.type = 'treasury.money_spent' THEN 500 + floor(random() * 5000)::int END,
       CASE WHEN k.type = 'treasury.money_spent' THEN 'EUR' ELSE '' END,
       CASE WHEN k.type = 'social.track_shared'
            THEN jsonb_build_object('channel', CASE WHEN random() < 0.5 THEN 'whatsapp' ELSE 'sms' END)
            ELSE '{}'::jsonb END,
       '{}'::jsonb, 'import'
FROM generate_series(1, %(events)s) g
CROSS JOIN LATERAL (SELECT random() AS p, g AS gg) r
CROSS JOIN LATERAL (SELECT CASE
    WHEN r.p < 0.55 THEN 'player.track_played'
    WHEN r.p < 0.80 THEN 'session.app_opened'
    WHEN r.p < 0.86 THEN 'social.track_shared'
    WHEN r.p < 0.90 THEN 'social.artist_followed'
    WHEN r.p < 0.94 THEN 'treasury.money_spent'
    WHEN r.p < 0.98 THEN 'coliseum.vote_cast'
    ELSE 'concierto.event_attended' END AS type) k;
"""


def _scope(name: str, *args: Any) -> Any:
    """coliseum.rls's scope `name` (row-level security), or nothing on a tree without it: fixtures are
    written in system scope, and the measured reads run in the tenant's scope as a request's would."""
    try:
        from coliseum import rls
    except ImportError:
        return contextlib.nullcontext()
    return getattr(rls, name)(*args)


def _timed(fn: Any, runs: int = 3) -> tuple[float, float, Any]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 3), round(min(times), 3), result


def funnels_90d(ctx: Any = None) -> dict[str, Any]:
    from django.db import connection

    from coliseum.models import Artist, Tenant
    from ingestion.funnels.selectors import FunnelStep, funnel_compute
    from ingestion.funnels.services import attribution_apply

    tenant = Tenant.objects.create(slug="bench-funnels", name="Bench funnels", plan="pro")
    with _scope("system_scope", "benchmark fixtures"):
        artists = Artist.objects.bulk_create(
            [Artist(tenant=tenant, external_id=f"fa{i}", name=f"Funnel artist {i}") for i in range(ARTISTS)]
        )
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=90)
    t0 = time.perf_counter()
    # as the tables' owner: ANALYZE needs it
    with _scope("owner_scope"), connection.cursor() as cursor:
        cursor.execute(
            _LOAD_SQL,
            {
                "tenant_id": tenant.pk,
                "end": end,
                "fans": FANS,
                "artist0": artists[0].pk,
                "artists": ARTISTS,
                "events": EVENTS,
            },
        )
        # A log in steady state, as autovacuum leaves it: statistics, hint bits and the visibility map set.
        # Right after a 1M-row bulk insert the first readers pay for setting hint bits on every page
        # (measured: the first funnel ~1 s slower) and autovacuum then competes for the 2 cores.
        cursor.execute("VACUUM (ANALYZE) ingestion_event")
    load_seconds = round(time.perf_counter() - t0, 1)

    def run(steps: list[FunnelStep], **kw: Any) -> Any:
        with _scope("tenant_scope", tenant.pk):
            return funnel_compute(
                tenant_id=tenant.pk, steps=steps, start=start, end=end, within=timedelta(days=7), **kw
            )

    three = [
        FunnelStep("player.track_played"),
        FunnelStep("social.artist_followed"),
        FunnelStep("treasury.money_spent"),
    ]
    med3, best3, body3 = _timed(lambda: run(three))
    five = [
        FunnelStep("player.track_played"),
        FunnelStep("social.track_shared", "channel", "whatsapp"),
        FunnelStep("social.artist_followed"),
        FunnelStep("coliseum.vote_cast"),
        FunnelStep("treasury.money_spent"),
    ]
    med5, best5, body5 = _timed(lambda: run(five))
    med_a, best_a, _ = _timed(lambda: run(three, artist_ids=[artists[0].pk]))

    # Attribution of processor-sized batches (2,000 log rows each) taken from the loaded log.
    with _scope("tenant_scope", tenant.pk), connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, occurred_at FROM ingestion_event WHERE tenant_id = %s "
            "ORDER BY occurred_at DESC LIMIT 6000",
            [tenant.pk],
        )
        refs = [SimpleNamespace(pk=pk, occurred_at=at) for pk, at in cursor.fetchall()]
    batch_times = []
    for i in range(0, len(refs), 2000):
        t1 = time.perf_counter()
        with _scope("tenant_scope", tenant.pk):
            attribution_apply(tenant_id=tenant.pk, events=refs[i : i + 2000])
        batch_times.append(time.perf_counter() - t1)
    return {
        "title": "funnels over 1M events / 90 days (20k fans), and attribution batches",
        "events_loaded": EVENTS,
        "load_seconds": load_seconds,
        "funnel_3_steps_median_s": med3,
        "funnel_3_steps_best_s": best3,
        "funnel_3_steps_users": "/".join(str(s["users"]) for s in body3["steps"]),
        "funnel_5_steps_with_property_median_s": med5,
        "funnel_5_steps_with_property_best_s": best5,
        "funnel_5_steps_users": "/".join(str(s["users"]) for s in body5["steps"]),
        "funnel_3_steps_one_artist_median_s": med_a,
        "funnel_3_steps_one_artist_best_s": best_a,
        "attribution_batch_2000_median_s": round(statistics.median(batch_times), 3),
    }


SECTIONS = {"i": funnels_90d}
