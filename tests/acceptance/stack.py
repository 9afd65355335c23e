"""The stack as `make run` starts it (Makefile `_migrate`, `seed`, `_run`; Procfile), for the acceptance
suite.

Same commands in the same order: `manage.py ensure_database`, `migrate --noinput`, `seed_demo`,
`collectstatic --noinput -v 0`, `demo_banner --port P`, then `honcho start -f Procfile -p P` (web = granian
on P, ws = Daphne on P+100, a Celery worker and beat). The environment is what a user's shell or `.env` holds,
nothing test-only: `coliseum.settings.local`, its own database and Redis database, COLISEUM_SERVICES=external,
the PUBLIC_BASE_URL and WEBSOCKET_BASE_URL the Makefile sets, and PRIVATE_STORAGE_ROOT in a temporary
directory (so report and export files never mix with a developer's `.data/private`).

One shortcut, for the 5-minute budget: a first `migrate` on an empty database takes 1-2.5 minutes on two
cores (dj-stripe's migrations). The database is therefore created from a template that `migrate` built once
and that is rebuilt whenever a migration file or an installed package changes (and each calendar month,
since migrations create the event log's partitions around the current month). `migrate` still runs every
session, on the copy."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import redis
import requests

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"


def _beside(url: str, path: str) -> str:
    """`url` with another path (urlunsplit would drop the empty host of `postgres:///name`)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/{path}" + (f"?{parts.query}" if parts.query else "")


def _acceptance_database_url() -> str:
    """ACCEPTANCE_DATABASE_URL; else beside the test run's database (`<name>_acceptance` on the same server,
    embedded or not); else `coliseum_acceptance` on the local socket."""
    if os.environ.get("ACCEPTANCE_DATABASE_URL"):
        return os.environ["ACCEPTANCE_DATABASE_URL"]
    test_url = os.environ.get("DATABASE_URL", "")
    if not test_url:
        return "postgres:///coliseum_acceptance"
    return _beside(test_url, f"{urlsplit(test_url).path.lstrip('/') or 'coliseum'}_acceptance")


def _acceptance_redis_url() -> str:
    """ACCEPTANCE_REDIS_URL; else database 14 of the run's Redis (REDIS_URL's server, or 127.0.0.1:6379)."""
    if os.environ.get("ACCEPTANCE_REDIS_URL"):
        return os.environ["ACCEPTANCE_REDIS_URL"]
    return _beside(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0", "14")


# Where the stack keeps its data, apart from the test database and the test Redis database.
DATABASE_URL = _acceptance_database_url()
REDIS_URL = _acceptance_redis_url()

# Variables of the calling shell that any program needs. Everything else a test run sets (settings.test,
# TEST_*, the test database's DATABASE_URL) stays out of the stack's environment.
_INHERITED = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SHELL",
    "TERM",
)


@dataclass
class Stack:
    port: int
    base_url: str
    ws_base_url: str
    log: Path
    env: dict[str, str]
    honcho: subprocess.Popen[bytes] | None = None
    children: set[int] = field(default_factory=set)

    def log_tail(self, lines: int = 120) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no stack log)"
        return "\n".join(text.splitlines()[-lines:])


def free_port_pair() -> int:
    """A port P with P and P+100 free on 127.0.0.1 (honcho gives the Procfile's second line P+100)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + 300 > 65535:
            continue
        with socket.socket() as other:
            try:
                other.bind(("0.0.0.0", port + 100))  # noqa: S104 - Daphne binds 0.0.0.0
                with socket.socket() as again:
                    again.bind(("0.0.0.0", port))  # noqa: S104
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair found")


def stack_env(*, port: int, private_root: Path) -> dict[str, str]:
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(
        {
            # the Makefile's exports and _run's line
            "DJANGO_SETTINGS_MODULE": "coliseum.settings.local",
            # what a user puts in .env to use their own PostgreSQL and Redis
            "COLISEUM_SERVICES": "external",
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "PRIVATE_STORAGE_ROOT": str(private_root),
        }
    )
    return env


def _run(stack: Stack, *args: str, timeout: float) -> None:
    started = time.monotonic()
    with stack.log.open("ab") as sink:
        sink.write(f"\n{datetime.now(UTC):%H:%M:%S} $ {' '.join(args)}\n".encode())
        sink.flush()
        done = subprocess.run(
            list(args), cwd=ROOT, env=stack.env, stdout=sink, stderr=subprocess.STDOUT, timeout=timeout
        )
        sink.write(f"({time.monotonic() - started:.1f} s)\n".encode())
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(args)}` exited {done.returncode}:\n{stack.log_tail(60)}")


def _manage(stack: Stack, *args: str, timeout: float = 300) -> None:
    _run(stack, str(VENV_BIN / "python"), "manage.py", *args, timeout=timeout)


def _schema_key() -> str:
    """What decides the migrated schema: our migration files, the installed packages (theirs), the month."""
    digest = hashlib.sha256(datetime.now(UTC).strftime("%Y-%m").encode())
    # the apps sit one or two levels down (coliseum/, coliseum/privacy/); .venv is left out
    for path in sorted([*ROOT.glob("[!.]*/migrations/*.py"), *ROOT.glob("[!.]*/*/migrations/*.py")]):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    versions = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions())
    digest.update("\n".join(versions).encode())
    return digest.hexdigest()[:12]


def _maintenance() -> Any:
    """A connection to the server's maintenance database `postgres`, as ensure_database makes one."""
    return psycopg.connect(_beside(DATABASE_URL, "postgres"), autocommit=True)


def database_prepare(stack: Stack) -> None:
    """A fresh database for this session: a copy of the migrated template (`migrate` builds it if missing)."""
    name = urlsplit(DATABASE_URL).path.lstrip("/")
    template = f"{name}_tpl_{_schema_key()}"
    with _maintenance() as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", [name])
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [template]).fetchone()
        if not exists:
            for (old,) in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", [f"{name}_tpl_%"]
            ).fetchall():
                conn.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
            _manage(stack, "ensure_database", timeout=60)
            _manage(stack, "migrate", "--noinput", timeout=900)
            conn.execute(f'CREATE DATABASE "{template}" TEMPLATE "{name}"')
        else:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", [name])


def stack_start(workdir: Path) -> Stack:
    port = free_port_pair()
    private_root = workdir / "private"
    private_root.mkdir(parents=True, exist_ok=True)
    stack = Stack(
        port=port,
        base_url=f"http://localhost:{port}",
        ws_base_url=f"ws://localhost:{port + 100}",
        log=workdir / "stack.log",
        env=stack_env(port=port, private_root=private_root),
    )
    redis.Redis.from_url(REDIS_URL).flushdb()
    database_prepare(stack)
    # make _migrate, seed, _run: the same commands in the same order
    _manage(stack, "ensure_database", timeout=60)
    _manage(stack, "migrate", "--noinput", timeout=900)
    _manage(stack, "seed_demo", timeout=600)
    _manage(stack, "collectstatic", "--noinput", "-v", "0", timeout=300)
    _manage(stack, "demo_banner", "--port", str(port), timeout=60)
    with stack.log.open("ab") as sink:
        sink.write(f"\n{datetime.now(UTC):%H:%M:%S} $ honcho start -f Procfile -p {port}\n".encode())
        sink.flush()
        stack.honcho = subprocess.Popen(
            [str(VENV_BIN / "honcho"), "start", "-f", "Procfile", "-p", str(port)],
            cwd=ROOT,
            # _run's line sets these for honcho only
            env={
                **stack.env,
                "WEBSOCKET_BASE_URL": stack.ws_base_url,
                "PUBLIC_BASE_URL": stack.base_url,
                "PYTHONUNBUFFERED": "1",
            },
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(stack)
    except BaseException:
        stack_stop(stack)
        raise
    return stack


def _children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found.update(int(p) for p in task.read_text().split())
    return found


def _wait_ready(stack: Stack, timeout: float = 120) -> None:
    """Bounded: web answers /readyz, Daphne answers on its port, the four Procfile processes run."""
    assert stack.honcho is not None
    deadline = time.monotonic() + timeout
    pending = [f"{stack.base_url}/readyz", f"http://localhost:{stack.port + 100}/healthz"]
    while pending:
        if stack.honcho.poll() is not None:
            raise RuntimeError(f"honcho exited {stack.honcho.returncode}:\n{stack.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the stack did not answer {pending} in {timeout:.0f} s:\n{stack.log_tail()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(pending[0], timeout=5).status_code == 200:
                pending.pop(0)
                continue
        time.sleep(0.5)
    stack.children = _children_of(stack.honcho.pid)


def stack_stop(stack: Stack, timeout: float = 20) -> None:
    """honcho stops its processes on SIGTERM; each runs in a session of its own, so any left are ended by
    their own process group afterwards."""
    if stack.honcho is None:
        return
    stack.children |= _children_of(stack.honcho.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(stack.honcho.pid, signal.SIGTERM)
    try:
        stack.honcho.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(stack.honcho.pid, signal.SIGKILL)
        stack.honcho.wait(timeout=5)
    for child in stack.children:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child, signal.SIGKILL)
