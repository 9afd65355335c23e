"""`make bench`: run the named benchmark sections against the real server stack and write
benchmarks/results/latest.json plus a readable table.

    python -m benchmarks.run            # every section
    python -m benchmarks.run a,b        # or ONLY=a,b (make bench ONLY=a,b)

Isolation: a fresh database `coliseum_bench` (schema copied from the migrated dev database, then
`migrate`) and Redis DB 11 (flushed), so dev data is never touched. Only 127.0.0.1; every loop is bounded in
count and time; the whole run stays well under 10 minutes on 2 cores.

Sections here (ingestion): a) batch ingestion, b) single events at a steady 200 req/s, c) raw COPY yardstick
and the a/c ratio, d) processing throughput and accept-to-rollup lag. Other apps add sections as
`benchmarks/bench_*.py` modules exposing SECTIONS = {"e": fn, ...}, fn(ctx) -> dict of figures."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BENCH_DB = os.environ.get("BENCH_DATABASE", "coliseum_bench")
DEV_DB = os.environ.get("BENCH_SCHEMA_SOURCE", "coliseum")
BENCH_REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
PYTHON = sys.executable
VENV_BIN = Path(PYTHON).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def procfile_line(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.removeprefix(f"{name}:").strip()
    raise RuntimeError(f"the Procfile has no {name} line")


def cpu_by_component() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) used so far by each process on this machine, with the part of the stack it
    belongs to, read from /proc: cpu_per_item() turns two readings into where a section's CPU went."""
    tick = os.sysconf("SC_CLK_TCK")
    own = str(os.getpid())
    out: dict[int, tuple[str, float]] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if pid == own:
            part = "bench_client"
        elif command.startswith("postgres"):
            part = "postgresql"
        elif "granian" in command:
            part = "web"
        elif "celery" in command:
            part = "workers"
        elif "redis-server" in command:
            part = "redis"
        else:
            part = "other"
        out[int(pid)] = (part, (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_per_item(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], items: int
) -> dict[str, float]:
    """Microseconds of CPU per item, per component, between two cpu_by_component() readings: each process's
    own difference (one started in between counts whole; one that exited in between, such as an autovacuum
    worker or a closed connection's backend, is lost, so a figure can be low, never negative)."""
    used: dict[str, float] = {}
    for pid, (part, seconds) in after.items():
        previous = before.get(pid)
        used[part] = used.get(part, 0.0) + seconds - (previous[1] if previous else 0.0)
    return {
        part: round(used.get(part, 0.0) * 1e6 / max(items, 1), 1)
        for part in ("postgresql", "web", "workers", "redis", "bench_client", "other")
    }


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Context:
    """What sections share: the environment, the running stack (started on demand) and earlier figures."""

    def __init__(self) -> None:
        self.root = ROOT
        self.python = PYTHON
        self.database = BENCH_DB
        self.database_url = f"postgres:///{BENCH_DB}"
        self.redis_url = BENCH_REDIS
        self.results: dict[str, dict[str, Any]] = {}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.web_url: str | None = None
        self.workers_started = False
        self.web_workers = int(os.environ.get("BENCH_WEB_WORKERS", "2"))  # the Procfile default
        self.web_blocking_threads = int(os.environ.get("BENCH_WEB_BLOCKING_THREADS", "4"))  # Procfile default
        self.worker_concurrency = int(os.environ.get("BENCH_WORKER_CONCURRENCY", "2"))

    def _spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def web(self) -> str:
        """The Procfile's web line (or BENCH_WEB_LINE, to compare another), run by a shell as honcho runs it,
        on a free port."""
        if self.web_url:
            return self.web_url
        port = free_port()
        line = os.environ.get("BENCH_WEB_LINE") or procfile_line("web")
        env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "WEB_WORKERS": str(self.web_workers),
               "WEB_BLOCKING_THREADS": str(self.web_blocking_threads)}  # fmt: skip
        process = subprocess.Popen(
            ["sh", "-c", f"exec {line}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("granian exited at start")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("granian did not start")
        self.web_url = f"http://127.0.0.1:{port}"
        time.sleep(1.0)  # workers finish loading Django
        return self.web_url

    def workers(self) -> None:
        """Celery processing workers and beat, as in the Procfile (beat sends the processing sweep, which also
        keeps the probed tables' planner statistics fresh: ingestion/services/planner.py)."""
        if self.workers_started:
            return
        self._spawn(
            [str(VENV_BIN / "celery"), "-A", "coliseum", "worker", "--loglevel", "WARNING", "--concurrency",
             str(self.worker_concurrency), "-Q", "celery,ingest", "--without-heartbeat", "--without-gossip",
             "--without-mingle"]
        )  # fmt: skip
        self._spawn([str(VENV_BIN / "celery"), "-A", "coliseum", "beat", "--loglevel", "WARNING"])
        self.workers_started = True
        time.sleep(4.0)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


def _environment() -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "coliseum.settings.local",
            "DEBUG": "false",
            "DATABASE_URL": f"postgres:///{BENCH_DB}",
            "REDIS_URL": BENCH_REDIS,
            "CELERY_BROKER_URL": BENCH_REDIS,
            "LOG_LEVEL": "WARNING",
            # The plan's rate limit stays on (10k ev/s Enterprise) but with a burst large enough that the
            # benchmark measures the server, not the limiter.
            "INGEST_RATE_BURST_SECONDS": "100000",
            "PYTHONUNBUFFERED": "1",
        }
    )


def _fresh_database() -> None:
    import psycopg

    with psycopg.connect("dbname=postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{BENCH_DB}"')
    # Copy the migrated dev schema (fast), then `migrate` applies whatever it lacks.
    dump = subprocess.run(
        ["pg_dump", "--schema-only", "--no-owner", DEV_DB], capture_output=True, check=False
    )
    if dump.returncode == 0 and b"ingestion_event" in dump.stdout:
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", BENCH_DB], input=dump.stdout, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        rows = subprocess.run(
            ["pg_dump", "--data-only", "--table=django_migrations", DEV_DB], capture_output=True, check=True
        )
        subprocess.run(["psql", "-q", BENCH_DB], input=rows.stdout, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)


def _flush_redis() -> None:
    import redis

    redis.Redis.from_url(BENCH_REDIS).flushdb()


def discover() -> dict[str, Callable[[Context], dict[str, Any]]]:
    from benchmarks import bench_ingestion

    sections: dict[str, Callable[[Context], dict[str, Any]]] = dict(bench_ingestion.SECTIONS)
    for info in pkgutil.iter_modules([str(ROOT / "benchmarks")]):
        if info.name.startswith("bench_") and info.name != "bench_ingestion":
            try:
                module = importlib.import_module(f"benchmarks.{info.name}")
            except Exception as exc:  # a broken module must not sink the others
                print(f"! {info.name}: not loaded ({exc})", file=sys.stderr)
                continue
            sections.update(getattr(module, "SECTIONS", {}))
    return sections


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return "  ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name in sorted(results):
        figures = results[name]
        lines.append(f"[{name}] {figures.get('title', '')}")
        for key, value in figures.items():
            if key != "title":
                lines.append(f"    {key:<36} {_fmt(value)}")
    return "\n".join(lines)


LOCK_PATH = Path(os.environ.get("BENCH_LOCK", "/tmp/coliseum-bench.lock"))


def _exclusive_run() -> Any:
    """One benchmark run at a time on this machine: each run drops and recreates the bench database, and two
    runs would also measure each other."""
    import fcntl

    handle = LOCK_PATH.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("another benchmark run is in progress; waiting for it (at most 15 minutes)", flush=True)
        deadline = time.monotonic() + 900
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SystemExit("gave up waiting for the other benchmark run") from None
                time.sleep(1.0)
    return handle


SETTLE_MAX_SECONDS = float(os.environ.get("BENCH_SETTLE_MAX_SECONDS", "60"))


def _settle() -> float:
    """Wait (bounded) until the previous section's aftermath is over: its events processed and no autovacuum
    worker busy on the tables it filled. Otherwise a section measures its predecessor's cleanup as well (e.g.
    autovacuum after (a)-(d)'s half a million inserts ran during (f)). Returns the seconds waited."""
    from django.db import connection

    started = time.monotonic()
    while time.monotonic() - started < SETTLE_MAX_SECONDS:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM (SELECT 1 FROM ingestion_pending LIMIT 1) AS p")
            pending = cursor.fetchone()[0]
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' "
                "AND datname = current_database()"
            )
            vacuuming = cursor.fetchone()[0]
        if not pending and not vacuuming:
            break
        time.sleep(0.5)
    return round(time.monotonic() - started, 1)


def main(argv: list[str]) -> int:
    selected_arg = (argv[0] if argv else "") or os.environ.get("ONLY", "")
    lock = _exclusive_run()  # held until the process exits
    _environment()
    print(f"benchmark database {BENCH_DB} (fresh), redis {BENCH_REDIS}", flush=True)
    _fresh_database()
    _flush_redis()
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from coliseum.rls import system_scope

    # The harness makes every section's tenants and rows, as the system would (row-level security); the
    # servers and workers it starts are separate processes with their own scopes, as in production.
    harness_scope = system_scope("benchmark harness fixtures")
    harness_scope.__enter__()
    sections = discover()
    selected = [s.strip() for s in selected_arg.split(",") if s.strip()] or sorted(sections)
    unknown = [s for s in selected if s not in sections]
    if unknown:
        print(f"unknown sections: {unknown}; known: {sorted(sections)}", file=sys.stderr)
        return 2
    ctx = Context()
    started = time.monotonic()
    load_before = os.getloadavg()
    try:
        for index, name in enumerate(selected):
            settled = _settle() if index else 0.0
            print(f"--- section {name} ...", flush=True)
            t0 = time.monotonic()
            try:
                figures = sections[name](ctx)
                if index:
                    figures["settle_wait_s"] = settled
            except Exception as exc:
                traceback.print_exc()
                figures = {"error": f"{type(exc).__name__}: {exc}"}
            figures["section_seconds"] = round(time.monotonic() - t0, 1)
            ctx.results[name] = figures
            print(table({name: figures}), flush=True)
    finally:
        ctx.stop()
    out = {
        "run_at": datetime.now(UTC).isoformat(),
        "cpu_count": os.cpu_count(),
        # Other work on the machine skews every figure: the 1-minute load average before and after the run.
        "load_average_before": round(load_before[0], 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "total_seconds": round(time.monotonic() - started, 1),
        "git_commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip(),
        "sections": ctx.results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    output = Path(os.environ.get("BENCH_RESULTS_FILE") or RESULTS / "latest.json")
    output.write_text(json.dumps(out, indent=2, default=str))
    print(f"\n=== results ({output}) ===")
    print(table(ctx.results))
    lock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
