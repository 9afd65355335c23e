"""Per-request figures in Redis: what the health endpoint, alerts, history and /metrics read.

Each request adds to two Redis hashes for its endpoint group in ONE write that does not wait for Redis'
replies (a connection per thread in `CLIENT REPLY OFF` mode: the request path no longer waits a round trip
for its own metrics; the readers below first make sure their thread's writes are applied):
- `ops:req:m:<minute>:<group>`: that minute's count, 5xx count, duration sum and histogram buckets
  (expire after 2 hours; the health endpoint reads the last 5 minutes);
- `ops:req:t:<group>`: the same, cumulative, plus counts per status class (Prometheus counters).
Because every web process writes to the same Redis, the figures are correct across any number of worker
processes and machines without prometheus_client's multiprocess directory."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from .redis import ops_redis

GROUPS = ("ingest", "leaderboards", "kpis", "reports", "admin", "other")
# Upper bounds in seconds (Prometheus `le`); the last bucket is +Inf.
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MINUTE_TTL_SECONDS = 2 * 3600

_PREFIXES: tuple[tuple[str, str], ...] = (
    ("/webhooks/", "ingest"),  # Passport webhook
    ("/v1/", "ingest"),  # Segment-compatible API
    ("/api/v1/leaderboards", "leaderboards"),
    ("/api/v1/realtime", "leaderboards"),
    ("/api/v1/jumbotron", "leaderboards"),
    ("/jumbotron", "leaderboards"),
    ("/api/v1/kpis", "kpis"),
    ("/api/v1/funnels", "kpis"),
    ("/api/v1/reports", "reports"),
    ("/api/v1/report-schedules", "reports"),
    ("/r/", "reports"),
    ("/api/v1/admin/", "admin"),
    ("/admin/", "admin"),
)


def group_for_path(path: str) -> str:
    for prefix, group in _PREFIXES:
        if path.startswith(prefix):
            return group
    if path.startswith("/api/v1/shows/") and path.endswith("/standings"):
        return "leaderboards"
    return "other"


def bucket_index(seconds: float) -> int:
    for i, bound in enumerate(BUCKETS):
        if seconds <= bound:
            return i
    return len(BUCKETS)


def current_minute(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 60)


_writers = threading.local()


def _writer() -> redis.Connection:
    """This thread's connection for request figures, replies switched off (a new one after a fork)."""
    conn: redis.Connection | None = getattr(_writers, "conn", None)
    if conn is None or _writers.pid != os.getpid():
        pool = ops_redis().connection_pool
        conn = pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": 2.0})
        conn.connect()
        conn.send_command("CLIENT", "REPLY", "OFF")
        _writers.conn, _writers.pid = conn, os.getpid()
    return conn


def _writes_applied() -> None:
    """Wait until Redis has applied what this thread wrote (it handles a connection's commands in order): the
    readers call it, so a process reads its own figures, as the health check and /metrics did before."""
    conn: redis.Connection | None = getattr(_writers, "conn", None)
    if conn is None or _writers.pid != os.getpid():
        return
    try:
        conn.send_command("CLIENT", "REPLY", "ON")
        conn.read_response()
        conn.send_command("CLIENT", "REPLY", "OFF")
    except (redis.RedisError, OSError):
        conn.disconnect()
        _writers.conn = None


def request_record(*, group: str, status: int, seconds: float, now: float | None = None) -> None:
    """Count one finished request: one write, no wait for Redis' replies; raises redis errors (a broken
    connection) to the caller, and the next call reconnects."""
    minute = current_minute(now)
    b = f"b{bucket_index(seconds)}"
    minute_key = f"ops:req:m:{minute}:{group}"
    total_key = f"ops:req:t:{group}"
    commands: list[tuple[Any, ...]] = [
        ("HINCRBY", minute_key, "n", 1),
        ("HINCRBY", minute_key, b, 1),
        ("HINCRBYFLOAT", minute_key, "s", seconds),
        ("EXPIRE", minute_key, MINUTE_TTL_SECONDS),
        ("HINCRBY", total_key, "n", 1),
        ("HINCRBY", total_key, b, 1),
        ("HINCRBYFLOAT", total_key, "s", seconds),
        ("HINCRBY", total_key, f"c{status // 100}xx", 1),
    ]
    if status >= 500:
        commands.append(("HINCRBY", minute_key, "e", 1))
    conn = _writer()
    try:
        conn.send_packed_command(conn.pack_commands(commands))
    except (redis.RedisError, OSError):
        conn.disconnect()
        _writers.conn = None
        raise


@dataclass
class GroupStats:
    requests: int = 0
    errors: int = 0
    seconds_sum: float = 0.0
    buckets: list[int] | None = None

    def __post_init__(self) -> None:
        if self.buckets is None:
            self.buckets = [0] * (len(BUCKETS) + 1)

    def add(self, raw: dict[bytes, bytes]) -> None:
        assert self.buckets is not None
        self.requests += int(raw.get(b"n", 0))
        self.errors += int(raw.get(b"e", 0))
        self.seconds_sum += float(raw.get(b"s", 0.0))
        for i in range(len(self.buckets)):
            self.buckets[i] += int(raw.get(f"b{i}".encode(), 0))

    def quantile(self, q: float) -> float | None:
        """Estimated from the histogram by linear interpolation inside the bucket (as Prometheus'
        histogram_quantile does); None without requests."""
        assert self.buckets is not None
        if self.requests == 0:
            return None
        rank = q * self.requests
        seen = 0
        for i, count in enumerate(self.buckets):
            if count and seen + count >= rank:
                lower = BUCKETS[i - 1] if i > 0 else 0.0
                if i >= len(BUCKETS):
                    return BUCKETS[-1]
                return round(lower + (BUCKETS[i] - lower) * ((rank - seen) / count), 4)
            seen += count
        return BUCKETS[-1]

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "requests": self.requests,
            "errors_5xx": self.errors,
            "error_rate": round(self.errors / self.requests, 4) if self.requests else 0.0,
            "p50_seconds": self.quantile(0.50),
            "p95_seconds": self.quantile(0.95),
            "p99_seconds": self.quantile(0.99),
        }


def request_window_stats(*, minutes: int = 5, now: float | None = None) -> dict[str, GroupStats]:
    """Per-group figures over the last `minutes` minutes (the current one included)."""
    _writes_applied()
    end = current_minute(now)
    pipe = ops_redis().pipeline(transaction=False)
    keys: list[str] = []
    for minute in range(end - minutes + 1, end + 1):
        for group in GROUPS:
            keys.append(group)
            pipe.hgetall(f"ops:req:m:{minute}:{group}")
    stats = {group: GroupStats() for group in GROUPS}
    for group, raw in zip(keys, pipe.execute(), strict=True):
        if raw:
            stats[group].add(raw)
    return stats


def request_totals() -> dict[str, dict[bytes, bytes]]:
    """Cumulative per-group hashes (Prometheus counters and histogram)."""
    _writes_applied()
    pipe = ops_redis().pipeline(transaction=False)
    for group in GROUPS:
        pipe.hgetall(f"ops:req:t:{group}")
    return dict(zip(GROUPS, pipe.execute(), strict=True))


COUNTERS_KEY = "ops:counters"


def counter_incr(*, name: str, amount: int = 1) -> None:
    """A cumulative counter other apps may bump (e.g. leaderboards: name="board_pushes"); exported on
    /metrics as `coliseum_<name>_total`."""
    ops_redis().hincrby(COUNTERS_KEY, name, amount)


def counter_queue(pipe: Any, *, name: str, amount: int = 1) -> None:
    """As counter_incr, inside a pipeline the caller already sends (no extra round trip on hot paths)."""
    pipe.hincrby(COUNTERS_KEY, name, amount)


def counters_read() -> dict[str, int]:
    raw: dict[bytes, bytes] = ops_redis().hgetall(COUNTERS_KEY)  # type: ignore[assignment]
    return {k.decode(): int(v) for k, v in raw.items()}
