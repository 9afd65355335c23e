"""`make bench` sections for the leaderboards (each returns a dict of figures; each bounded < 3 minutes).

(e) event accepted -> WebSocket update received, p50/p95, 100 subscribers on 10 boards, real Daphne, for
    both channels_redis layers (RedisChannelLayer and RedisPubSubChannelLayer).
(f) leaderboard API throughput and p50/p99 at 20 concurrent clients against a real WSGI server (granian).
(g) full rebuild of every board family of a tenant from the rollups (LB_BENCH_G_EVENTS events; the tenant
    is kept between runs so the load happens once).

Standalone: `PYTHONPATH=. .venv/bin/python benchmarks/bench_leaderboards.py [e f g]`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {
    "redis": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}


def _django() -> None:
    import django
    from django.apps import apps

    if not apps.ready:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coliseum.settings.local")
        django.setup()


def _operator() -> Any:
    """Fixtures are written as an operator writes them, across tenants (row-level security's bypass)."""
    from coliseum.rls import system_scope

    return system_scope("benchmark fixtures")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def _server(args: list[str], port: int, env: dict[str, str]) -> Iterator[None]:
    process = subprocess.Popen(
        args, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {args}")
            time.sleep(0.2)
        time.sleep(0.5)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tenant(label: str, artists: int) -> tuple[Any, str, list[str]]:
    """An Enterprise tenant with a member (JWT) and artists; API rate limit lifted for the benchmark."""
    with _operator():
        return _tenant_create(label, artists)


def _tenant_create(label: str, artists: int) -> tuple[Any, str, list[str]]:
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import AccessToken

    from billing.services import entitlement_override_set
    from coliseum.models import Artist, Membership, Role, Tenant

    tenant = Tenant.objects.create(slug=f"bench-lb-{label}-{uuid.uuid4().hex[:8]}", name=f"Bench {label}")
    tenant.plan = "enterprise"
    tenant.save(update_fields=["plan"])
    entitlement_override_set(tenant=tenant, name="api_requests_per_minute", value=10**9, reason="benchmark")
    user = get_user_model().objects.create_user(username=f"{tenant.slug}-user", password=uuid.uuid4().hex)
    Membership.objects.create(user=user, tenant=tenant, role=Role.OWNER)
    externals = [f"art-{i:03d}" for i in range(artists)]
    Artist.objects.bulk_create(
        [Artist(tenant=tenant, external_id=e, name=f"Artist {e}", genres=["rock"]) for e in externals]
    )
    return tenant, str(AccessToken.for_user(user)), externals


def _cleanup(tenant: Any) -> None:
    """Best effort: a benchmark figure must not be lost to a cleanup problem elsewhere in the schema."""
    try:
        with _operator():
            tenant.delete()
    except Exception as exc:
        print(f"bench_leaderboards: {tenant.slug} left behind ({type(exc).__name__})", file=sys.stderr)


def _plays(externals: list[str], n: int, *, spread: timedelta, start: int = 0) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    step = spread / max(n, 1)
    return [
        {
            "event_id": f"bench-{uuid.uuid4().hex}",
            "type": "player.track_played",
            "occurred_at": (now - timedelta(seconds=30) - step * i).isoformat(),
            "user_id": f"fan-{(start + i) % 50_000}",
            "properties": {
                "track_id": "t1",
                "artist_id": externals[(start + i * 7) % len(externals)],
                "duration_seconds": 60 + i % 240,
                "city": ("Lisbon", "Porto", "Faro")[i % 3],
            },
        }
        for i in range(n)
    ]


# --- (e) --------------------------------------------------------------------------------------------------


class _WebSocket:
    """A minimal RFC 6455 client (text frames only): enough for 100 concurrent benchmark subscribers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, url: str) -> _WebSocket:
        parsed = urlparse(url)
        reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
        key = base64.b64encode(os.urandom(16)).decode()
        path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {parsed.hostname}:{parsed.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(head.decode(errors="replace"))
        return cls(reader, writer)

    async def send(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        header = bytearray([0x81])
        if len(payload) < 126:
            header.append(0x80 | len(payload))
        else:
            header.append(0x80 | 126)
            header += len(payload).to_bytes(2, "big")
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes(header) + mask + masked)
        await self.writer.drain()

    async def receive(self) -> dict[str, Any]:
        while True:
            first, second = await self.reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(await self.reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await self.reader.readexactly(8), "big")
            payload = await self.reader.readexactly(length)
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError("closed")
            if opcode == 0x1:
                return dict(json.loads(payload))

    def close(self) -> None:
        self.writer.close()


def _ingest_now(tenant: Any, events: list[dict[str, Any]]) -> None:
    from django.db import close_old_connections

    from ingestion.services import event_batch_ingest, processing_run_pending

    close_old_connections()
    with _operator():
        event_batch_ingest(tenant=tenant, events=events, source="import")
        processing_run_pending()


async def _latency_run(ws_url: str, tenant: Any, externals: list[str], events: int) -> dict[str, float]:
    boards = [{"metric": "plays", "window": w} for w in ("1h", "24h", "7d", "30d", "90d", "all")] + [
        {"metric": "listen_seconds", "window": w} for w in ("1h", "24h", "7d", "all")
    ]

    async def subscriber(board: dict[str, Any]) -> _WebSocket:
        for attempt in range(5):
            try:
                client = await _WebSocket.connect(ws_url)
                await client.send({"action": "subscribe", "board": board, "top": 10})
                while (message := await client.receive())["type"] != "snapshot":
                    if message["type"] == "error":
                        raise RuntimeError(message)
                return client
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                await asyncio.sleep(0.5 * (attempt + 1))  # the server may still be warming up
        raise RuntimeError("could not subscribe")

    clients = [await subscriber(boards[i % 10]) for i in range(100)]
    latencies: list[float] = []
    missed = 0
    for k in range(events):
        started = time.perf_counter()
        arrivals: list[float] = []

        async def wait_update(
            client: _WebSocket, arrivals: list[float] = arrivals, started: float = started
        ) -> None:
            while True:
                message = await client.receive()
                if message["type"] == "update":
                    arrivals.append(time.perf_counter() - started)
                    return

        waiters = [asyncio.create_task(wait_update(c)) for c in clients]
        # a play for one of 5 artists, all inside every board's top 10: each event changes all 10 boards
        await asyncio.to_thread(_ingest_now, tenant, _plays(externals[:5], 1, spread=timedelta(0), start=k))
        _done, pending = await asyncio.wait(waiters, timeout=5)
        for task in pending:
            task.cancel()
        missed += len(pending)
        latencies.extend(arrivals)
        await asyncio.sleep(1.1)  # past the coalescing interval: measure latency, not the rate limit
    for client in clients:
        client.close()
    return {
        "p50_ms": round(1000 * _pct(latencies, 0.5), 1),
        "p95_ms": round(1000 * _pct(latencies, 0.95), 1),
        "max_ms": round(1000 * max(latencies), 1) if latencies else float("nan"),
        "updates": len(latencies),
        "missed": missed,
    }


def section_e(ctx: Any = None) -> dict[str, Any]:
    """Event accepted -> WebSocket update received, 100 subscribers on 10 boards, both channel layers."""
    _django()
    from django.conf import settings

    events = int(os.environ.get("LB_BENCH_E_EVENTS", "15"))
    tenant, token, externals = _tenant("e", 20)
    figures: dict[str, Any] = {
        "title": "event accepted -> WebSocket update (100 subscribers on 10 boards, both channel layers)",
        "subscribers": 100,
        "boards": 10,
        "events": events,
        "load_avg": os.getloadavg()[0],
    }
    try:
        for name, backend in LAYERS.items():
            port = _free_port()
            env = {
                "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"],
                "CHANNEL_LAYER_BACKEND": backend,
                "PYTHONPATH": str(ROOT),
                # 100 screens of one member at one address: the per-user and per-address limits would
                # refuse 90 of them (README, leaderboards: "Connection limits"); the process maximum stays.
                "LEADERBOARD_WS_MAX_PER_USER": "0",
                "LEADERBOARD_WS_MAX_PER_IP": "0",
            }
            if getattr(settings, "REDIS_URL", None):
                env["REDIS_URL"] = settings.REDIS_URL
            args = [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "coliseum.asgi:application",
            ]
            with _server(args, port, env):
                url = f"ws://127.0.0.1:{port}/ws/leaderboards/?token={token}"
                result = asyncio.run(_latency_run(url, tenant, externals, events))
            figures.update({f"{name}_{k}": v for k, v in result.items()})
    finally:
        _cleanup(tenant)
    return figures


# --- (f) --------------------------------------------------------------------------------------------------


def section_f(ctx: Any = None) -> dict[str, Any]:
    """Leaderboard API at 20 concurrent clients (granian WSGI, 2 workers, as in the Procfile), ~10 s.

    The load comes from a separate process (`_load_main`): 20 asyncio connections over raw keep-alive
    sockets, each sending its next request as soon as the previous answer is read (closed loop), cycling
    through a mix of boards, filters, pages and an artist's placing. Each request's latency is taken from
    just before it is written to the end of its body being read, so queueing in the server counts."""
    _django()
    from coliseum.models import Artist

    tenant, token, externals = _tenant("f", 200)
    _ingest_now(tenant, _plays(externals, 5000, spread=timedelta(days=60)))
    with _operator():
        artist = Artist.objects.filter(tenant=tenant).order_by("pk").values_list("pk", flat=True)[17]
    port = _free_port()
    args = [
        sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "2", "--blocking-threads", "1", "--no-ws", "coliseum.wsgi:application",
    ]  # fmt: skip
    env = {"DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"], "PYTHONPATH": str(ROOT)}
    queries = [
        "metric=plays&window=24h",
        "metric=plays&window=7d&page=2&page_size=20",
        "metric=listen_seconds&window=30d&city=Lisbon",
        f"metric=plays&window=all&genre=rock&artist_id={artist}",
        "metric=plays&window=7d",
        "metric=plays&window=30d&page=3&page_size=25",
        "metric=unique_listeners&window=7d",
        "metric=plays&time_window=90d&city=Porto&page=2",
    ]
    duration = float(os.environ.get("LB_BENCH_F_SECONDS", "10"))
    shared_web = getattr(ctx, "web", None)  # make bench's running granian stack, when there is one
    try:
        with _server(args, port, env) if shared_web is None else contextlib.nullcontext():
            base = f"http://127.0.0.1:{port}" if shared_web is None else shared_web()
            job = {"url": base, "token": token, "queries": queries, "clients": 20, "seconds": duration}
            load = subprocess.run(
                [sys.executable, "-c", "from benchmarks.bench_leaderboards import _load_main; _load_main()"],
                cwd=ROOT, input=json.dumps(job), capture_output=True, text=True, timeout=duration + 120,
                env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True,
            )  # fmt: skip
            figures = json.loads(load.stdout)
    finally:
        _cleanup(tenant)
    latencies: list[float] = figures.pop("latencies")
    return {
        "title": "leaderboard API, 20 concurrent clients",
        "clients": 20,
        "board_variants": len(queries),
        "load_avg": os.getloadavg()[0],
        "requests": len(latencies),
        "errors": figures["errors"],
        "rps": round(len(latencies) / figures["elapsed"], 1),
        "p50_ms": round(1000 * _pct(latencies, 0.5), 2),
        "p99_ms": round(1000 * _pct(latencies, 0.99), 2),
        "mean_ms": round(1000 * statistics.fmean(latencies), 2) if latencies else float("nan"),
        "client_cpu_ms_per_request": round(1000 * figures["cpu"] / max(1, len(latencies)), 3),
    }


def _load_main() -> None:
    """Section f's load generator, in its own process: a job (JSON) on stdin, figures (JSON) on stdout."""
    job = json.loads(sys.stdin.read())
    began_cpu = time.process_time()
    latencies, errors, elapsed = asyncio.run(
        _load_run(job["url"], job["token"], job["queries"], job["clients"], job["seconds"])
    )
    cpu = time.process_time() - began_cpu
    print(json.dumps({"latencies": latencies, "errors": errors, "elapsed": elapsed, "cpu": cpu}))


async def _load_run(
    url: str, token: str, queries: list[str], clients: int, seconds: float
) -> tuple[list[float], int, float]:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    requests = [
        (
            f"GET /api/v1/leaderboards?{q} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: application/json\r\n\r\n"
        ).encode()
        for q in queries
    ]
    latencies: list[float] = []
    errors = 0

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        return status

    async def client(n: int, stop: float | None) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        i = n
        try:
            while True:
                request = requests[i % len(requests)]
                started = time.perf_counter()
                if stop is None:  # warm-up: each board computed once before the clock starts
                    await exchange(reader, writer, request)
                    if i - n >= len(requests):
                        return
                elif started >= stop:
                    return
                else:
                    status = await exchange(reader, writer, request)
                    latencies.append(time.perf_counter() - started)
                    errors += status != 200
                i += 1
        finally:
            writer.close()

    await client(0, None)
    began = time.perf_counter()
    await asyncio.gather(*(client(n, began + seconds) for n in range(clients)))
    return latencies, errors, time.perf_counter() - began


# --- (g) --------------------------------------------------------------------------------------------------


def section_g(ctx: Any = None) -> dict[str, Any]:
    """Rebuild every board family of a tenant from the rollups (the tenant and its events are kept)."""
    _django()
    from coliseum.models import Tenant
    from leaderboards.boards import BUCKETED_METRICS, MONEY_METRICS, BoardFamily
    from leaderboards.services import board_family_rebuild

    target = int(os.environ.get("LB_BENCH_G_EVENTS", "1000000"))  # the issue: a tenant with 1M events
    slug = "bench-leaderboards-g2"
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        tenant, _, externals = _tenant("g", 500)
        tenant.slug = slug
        tenant.name = "0"
        tenant.save(update_fields=["slug", "name"])
    externals = [f"art-{i:03d}" for i in range(500)]
    loaded = int(tenant.name) if tenant.name.isdigit() else 0
    load_seconds = 0.0
    if loaded < target:
        began = time.perf_counter()
        from ingestion.services import event_batch_ingest, processing_run_pending

        try:
            from tqdm import tqdm

            progress: Callable[..., Any] = tqdm
        except ImportError:  # pragma: no cover
            progress = lambda it, **_: it  # noqa: E731
        for offset in progress(range(loaded, target, 5000), desc="loading events", unit="batch"):
            events = _plays(externals, min(5000, target - offset), spread=timedelta(days=6), start=offset)
            # Spread over the last 6 days: inside ingestion's late horizon, so the load takes the incremental
            # path (older events are recomputed per hour bucket from the raw log: far slower to load).
            for i, e in enumerate(events):
                e["occurred_at"] = (
                    datetime.now(UTC) - timedelta(minutes=1 + ((offset + i) * 137) % (6 * 24 * 60))
                ).isoformat()
            event_batch_ingest(tenant=tenant, events=events, source="import")
            processing_run_pending()
            tenant.name = str(offset + len(events))
            tenant.save(update_fields=["name"])
        load_seconds = time.perf_counter() - began
        loaded = target
    families = [
        BoardFamily(tenant.pk, metric, "USD" if metric in MONEY_METRICS else "", city)
        for metric in sorted(BUCKETED_METRICS)
        for city in ("", "Lisbon", "Porto", "Faro")
    ]
    began = time.perf_counter()
    keys = sum(board_family_rebuild(family=f) for f in families)
    rebuild = time.perf_counter() - began
    return {
        "title": "full rebuild of a tenant's boards from the rollups",
        "events": loaded,
        "load_avg": os.getloadavg()[0],
        "load_seconds": round(load_seconds, 1),
        "families": len(families),
        "bucket_keys": keys,
        "rebuild_seconds": round(rebuild, 2),
        "rebuild_seconds_unfiltered_8_metrics": round(rebuild * 8 / len(families), 2),
    }


SECTIONS: dict[str, Callable[[Any], dict[str, Any]]] = {"e": section_e, "f": section_f, "g": section_g}


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coliseum.settings.local")
    for name in sys.argv[1:] or list(SECTIONS):
        print(name, json.dumps(SECTIONS[name](None)), flush=True)
