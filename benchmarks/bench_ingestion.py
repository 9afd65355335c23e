"""Ingestion sections of `make bench` (see run.py):

(a) batch ingestion: 100 events a request from concurrent clients through the signed webhook on granian WSGI:
    events/s, p50/p99 request latency; first the ingest path alone, then with the Celery workers processing
    alongside on the same cores (see section_a).
(b) single-event requests at a steady 200 req/s (open loop: latency counted from the scheduled send time),
    after a warm-up of BENCH_B_WARMUP_SECONDS at the same rate, reported apart.
(c) raw psycopg COPY of the same events into the same table, in the same run: this machine's limit; a/c.
(d) processing: drain throughput of the Celery workers and accept-to-rollup lag (p50/p95) under load.
    "Keeps up with (a)": the workers' drain rate of a backlog is at least (a)'s ingest rate (measured twice:
    on (a)'s own backlog in (a), and on a 60k in-process backlog here)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import itertools
import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from benchmarks.run import Context, cpu_by_component, cpu_per_item, pct

SECRET = "bench-webhook-secret"
A_SECONDS = float(os.environ.get("BENCH_A_SECONDS", "15"))
A_CLIENTS = int(os.environ.get("BENCH_A_CLIENTS", "6"))
A_MAX_REQUESTS = 4000  # bodies built ahead; at ~20k events/s 2,500 ran out before BENCH_A_SECONDS
B_SECONDS = float(os.environ.get("BENCH_B_SECONDS", "10"))
B_WARMUP_SECONDS = float(os.environ.get("BENCH_B_WARMUP_SECONDS", "3"))
B_RATE = 200
C_ROWS = 100_000
D_EVENTS = 60_000


def _tenant(ctx: Context) -> tuple[Any, str]:
    """One Enterprise tenant with a webhook key, shared by the ingestion sections."""
    cached = getattr(ctx, "_ingest_tenant", None)
    if cached:
        return cached  # type: ignore[no-any-return]
    from coliseum.crypto import encrypt_secret
    from coliseum.models import ApiKey, Artist, Tenant

    tenant = Tenant.objects.create(
        slug=f"bench-ingest-{uuid.uuid4().hex[:6]}", name="Bench ingest", plan="enterprise"
    )
    key = ApiKey.objects.create(
        tenant=tenant,
        kind="webhook",
        key_id=f"pk_bench_{uuid.uuid4().hex[:8]}",
        secret_encrypted=encrypt_secret(SECRET),
    )
    Artist.objects.bulk_create(
        [Artist(tenant=tenant, external_id=f"art-{i}", name=f"Artist {i}") for i in range(200)]
    )
    ctx._ingest_tenant = (tenant, key.key_id)  # type: ignore[attr-defined]
    return tenant, key.key_id


_counter = itertools.count()


def _events(n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    out = []
    for _ in range(n):
        i = next(_counter)
        artist = f"art-{i % 200}"
        props: dict[str, Any]
        if i % 10 == 0:
            type_ = "coliseum.vote_cast"
            props = {"artist_id": artist, "show_id": f"show-{i % 5}", "round": 1 + i % 3, "weight": 1}
        else:
            type_ = "player.track_played"
            city = ("Lisbon", "Porto")[i % 2]
            props = {
                "track_id": f"t{i % 5000}",
                "artist_id": artist,
                "duration_seconds": 30 + i % 200,
                "city": city,
            }
        out.append(
            {
                "event_id": str(uuid.uuid4()),
                "type": type_,
                "occurred_at": (now - timedelta(seconds=i % 600)).isoformat(),
                "user_id": f"fan-{i % 20000}",
                "properties": props,
            }
        )
    return out


def _signed(body: bytes) -> str:
    t = str(int(time.time()))
    return f"t={t},v1={hmac.new(SECRET.encode(), t.encode() + b'.' + body, hashlib.sha256).hexdigest()}"


def _post(conn: http.client.HTTPConnection, key_id: str, body: bytes) -> int:
    conn.request(
        "POST",
        "/webhooks/passport/events",
        body=body,
        headers={
            "Content-Type": "application/json",
            "X-Passport-Key": key_id,
            "X-Passport-Signature": _signed(body),
        },
    )
    response = conn.getresponse()
    response.read()
    return response.status


def _lag_reset() -> None:
    from django_redis import get_redis_connection

    from ingestion.services.stats import LAG_SAMPLES_KEY

    get_redis_connection("default").delete(LAG_SAMPLES_KEY)


def _lag_samples() -> list[float]:
    from django_redis import get_redis_connection

    from ingestion.services.stats import LAG_SAMPLES_KEY

    return [float(x) for x in get_redis_connection("default").lrange(LAG_SAMPLES_KEY, 0, -1)]


def _pending() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(event_count), 0) FROM ingestion_pending")  # queued events
        return int(cursor.fetchone()[0])


def _wait_drained(limit_seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit_seconds:
        if _pending() == 0:
            return time.monotonic() - started
        time.sleep(0.05)
    return float("nan")


def _a_load(port: int, key_id: str) -> dict[str, Any]:
    """A_SECONDS of 100-event requests from A_CLIENTS closed-loop clients: rate, latencies, CPU per event."""
    bodies = [orjson.dumps({"events": _events(100)}) for _ in range(A_MAX_REQUESTS)]
    source = iter(bodies)
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stop_at = time.monotonic() + A_SECONDS

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop_at:
            with lock:
                body = next(source, None)
            if body is None:
                break
            t0 = time.perf_counter()
            status = _post(conn, key_id, body)
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    started = time.monotonic()
    cpu_before = cpu_by_component()
    threads = [threading.Thread(target=client) for _ in range(A_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    cpu_after = cpu_by_component()
    accepted = statuses.get(202, 0) * 100
    return {
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "non_202": sum(v for k, v in statuses.items() if k != 202),
        "events": accepted,
        "events_per_second": round(accepted / elapsed),
        "p50_ms": round((pct(latencies, 0.5) or 0) * 1000, 1),
        "p99_ms": round((pct(latencies, 0.99) or 0) * 1000, 1),
        # Where the CPU went while the clients ran, in microseconds per accepted event (both cores: 2 s of CPU
        # per wall second).
        "cpu_us_per_event": cpu_per_item(cpu_before, cpu_after, accepted),
    }


def section_a(ctx: Context) -> dict[str, Any]:
    """Three phases. 1) The ingest path alone (no Celery workers yet): the figure compared with (c), as (c)
    is the log's insert capacity alone. 2) The workers start and drain what 1) queued: processing's rate on
    (a)'s own events ("keeps up" when it is at least 1)'s rate), and the rate of the whole box when it both
    takes and processes events. 3) The ingest path again with the workers processing alongside on the same two
    cores, as a single-machine deployment would run: its rate, the backlog it leaves and the lag meanwhile."""
    _, key_id = _tenant(ctx)
    port = int(ctx.web().rsplit(":", 1)[1])
    alone_measured = not ctx.workers_started  # with ONLY=b,a the workers are up already: phase 1 is skipped
    figures: dict[str, Any] = {"title": "batch ingestion, 100 events/request, webhook on granian WSGI"}
    figures.update({"clients": A_CLIENTS, "web_workers": ctx.web_workers})
    if alone_measured:
        alone = _a_load(port, key_id)
        figures.update(alone)
        backlog = _pending()
        ctx.workers()
        drained = _wait_drained(300)
        drain_rate = backlog / drained if drained == drained and drained > 0 else 0.0
        figures.update(
            {
                "backlog_events": backlog,
                "backlog_drained_s": round(drained, 2),
                "processing_events_per_second": round(drain_rate),
                "processing_keeps_up": drain_rate >= alone["events_per_second"],
                "ingested_and_processed_events_per_second": round(
                    alone["events"] / (alone["seconds"] + drained) if drained == drained else 0
                ),
            }
        )
        ctx.a_events_per_second = alone["events_per_second"]  # type: ignore[attr-defined]
    else:
        ctx.workers()
    _lag_reset()
    alongside = _a_load(port, key_id)
    backlog = _pending()
    drain = _wait_drained(120)
    lags = _lag_samples()
    figures.update(
        {
            f"with_processing_{name}": value
            for name, value in alongside.items()
            if name in ("events_per_second", "p50_ms", "p99_ms", "non_202", "cpu_us_per_event")
        }
    )
    figures.update(
        {
            "with_processing_backlog_at_end": backlog,
            "with_processing_drain_after_end_s": round(drain, 2),
            "with_processing_lag_p50_ms": pct(lags, 0.5),
            "with_processing_lag_p95_ms": pct(lags, 0.95),
        }
    )
    if not alone_measured:
        ctx.a_events_per_second = alongside["events_per_second"]  # type: ignore[attr-defined]
    return figures


def section_b(ctx: Context) -> dict[str, Any]:
    """One open-loop stream at B_RATE: the first B_WARMUP_SECONDS are the warm-up (every client's keep-alive
    connection, the server threads' database and Redis connections, the workers' first tasks, beat starting),
    reported apart as `warmup_*`; the next B_SECONDS are the steady state the target is about."""
    _, key_id = _tenant(ctx)
    url = ctx.web()
    ctx.workers()
    port = int(url.rsplit(":", 1)[1])
    warm = int(B_WARMUP_SECONDS * B_RATE)
    total = warm + int(B_SECONDS * B_RATE)
    bodies = [orjson.dumps(e) for e in _events(total)]
    latencies: list[float] = []
    service: list[float] = []
    warmup: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    counter = itertools.count()
    t0 = time.monotonic() + 0.5
    cpu: dict[str, dict[int, tuple[str, float]]] = {}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            i = next(counter)
            if i >= total:
                break
            scheduled = t0 + i / B_RATE
            delay = scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent = time.monotonic()
            status = _post(conn, key_id, bodies[i])
            done = time.monotonic()
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if i < warm:
                    warmup.append(done - scheduled)
                else:
                    latencies.append(done - scheduled)
                    service.append(done - sent)
        conn.close()

    def cpu_at_end_of_warmup() -> None:
        time.sleep(max(0.0, t0 + B_WARMUP_SECONDS - time.monotonic()))
        cpu["before"] = cpu_by_component()

    threads = [threading.Thread(target=client) for _ in range(16)] + [
        threading.Thread(target=cpu_at_end_of_warmup)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    achieved = len(latencies) / (time.monotonic() - t0 - B_WARMUP_SECONDS)
    cpu_after = cpu_by_component()

    def ms(values: list[float], q: float) -> float:
        return round((pct(values, q) or 0) * 1000, 2)

    return {
        "title": "single-event requests at a steady 200 req/s (open loop)",
        "warmup_seconds": B_WARMUP_SECONDS,
        "warmup_p50_ms": ms(warmup, 0.5),
        "warmup_p99_ms": ms(warmup, 0.99),
        "requests": len(latencies),
        "achieved_rps": round(achieved, 1),
        "non_202": sum(v for k, v in statuses.items() if k != 202),
        "p50_ms": ms(latencies, 0.5),
        "p99_ms": ms(latencies, 0.99),
        "service_p50_ms": ms(service, 0.5),
        "service_p99_ms": ms(service, 0.99),
        # Where the CPU went, in microseconds per request (the workers process each event meanwhile).
        "cpu_us_per_request": cpu_per_item(cpu["before"], cpu_after, len(latencies)),
    }


def section_c(ctx: Context) -> dict[str, Any]:
    """COPY the same kind of events (same columns the ingest path writes) into the same partitioned log."""
    import psycopg

    tenant, _ = _tenant(ctx)
    events = _events(C_ROWS)
    rows = [
        (tenant.pk, e["event_id"], e["type"], e["occurred_at"], e["user_id"], None, None, 1, None,
         e["properties"].get("city", ""), "", None, "", orjson.dumps(e["properties"]).decode(), "{}",
         "bench-copy")
        for e in events
    ]  # fmt: skip
    columns = (
        "tenant_id, event_id, type, occurred_at, user_id, session_id, device_id, artist_id, show_id, city,"
        " genre, amount_minor, currency, properties, context, source"
    )
    with psycopg.connect(f"dbname={ctx.database}") as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(f"COPY ingestion_event ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
    rate = C_ROWS / elapsed
    a_rate = getattr(ctx, "a_events_per_second", None)
    return {
        "title": "raw psycopg COPY into ingestion_event (the machine's limit)",
        "rows": C_ROWS,
        "rows_per_second": round(rate),
        "ratio_a_over_c": round(a_rate / rate, 3) if a_rate else "run section a too",
    }


def section_d(ctx: Context) -> dict[str, Any]:
    """Backlog drain by the Celery workers, and lag under a steady HTTP load of half of (a)'s rate."""
    from django.db import transaction

    from ingestion.services import event_batch_ingest

    tenant, key_id = _tenant(ctx)
    url = ctx.web()
    ctx.workers()
    _wait_drained(60)
    # 1) throughput: queue D_EVENTS in-process in one transaction (the workers see the whole backlog at once
    # when it commits, so the drain is timed alone, not mixed with the loading), then the workers drain it
    started = time.monotonic()
    with transaction.atomic():
        for _ in range(D_EVENTS // 1000):
            event_batch_ingest(tenant=tenant, events=_events(1000), source="import")
    loaded = time.monotonic() - started
    drained = _wait_drained(180)
    drain_rate = D_EVENTS / drained if drained == drained else 0.0  # NaN: not drained in time
    # 2) lag under a steady load (half of (a)'s rate, or 2000 ev/s), 100-event requests
    rate = min(float(getattr(ctx, "a_events_per_second", 4000.0)) / 2, 20_000.0)
    port = int(url.rsplit(":", 1)[1])
    requests_per_second = max(1.0, rate / 100)
    seconds = 10.0
    bodies = [orjson.dumps({"events": _events(100)}) for _ in range(int(requests_per_second * seconds))]
    _lag_reset()
    counter = itertools.count()
    t0 = time.monotonic() + 0.3

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            i = next(counter)
            if i >= len(bodies):
                break
            delay = t0 + i / requests_per_second - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            _post(conn, key_id, bodies[i])
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _wait_drained(60)
    lags = _lag_samples()
    a_rate = getattr(ctx, "a_events_per_second", None)
    return {
        "title": "processing (Celery workers): drain throughput and accept-to-rollup lag",
        "worker_processes": ctx.worker_concurrency,
        "backlog_events": D_EVENTS,
        "backlog_loaded_s": round(loaded, 2),
        "drained_after_commit_s": round(drained, 2),
        "processing_events_per_second": round(drain_rate),
        "keeps_up_with_a": (drain_rate >= a_rate) if a_rate else "run section a too",
        "steady_load_events_per_second": round(rate),
        "lag_samples": len(lags),
        "lag_p50_ms": pct(lags, 0.5),
        "lag_p95_ms": pct(lags, 0.95),
        "lag_max_ms": max(lags) if lags else None,
    }


SECTIONS = {"a": section_a, "b": section_b, "c": section_c, "d": section_d}
