"""Issue 10: embedded PostgreSQL and Redis (coliseum.embedded).

The slow test starts the project in `embedded` mode in a data directory of its own, on free ports, while the
machine's PostgreSQL and Redis keep running, and checks what a newcomer would: migrations apply on PostgreSQL
18, a signed Passport batch goes through the webhook into the KPIs and onto the board, the same numbers come
back after both servers restart, and nothing is left running afterwards (checked by pid)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from coliseum import embedded

REPO = Path(__file__).resolve().parent.parent
SERVICES = str(REPO / "bin" / "services")

# Runs inside the project (settings.local) against whatever DATABASE_URL / REDIS_URL the environment gives.
# "write": a tenant with a webhook key posts a signed Passport batch through the real webhook view, the
# processor runs (rollups in PostgreSQL, boards in Redis); both actions then read the KPI API and the board.
PROBE = r"""
import hashlib, hmac, json, sys, time, uuid
from datetime import UTC, datetime, timedelta
import django
django.setup()
from coliseum.rls import owner_scope, system_scope
probe_scope = system_scope("the probe acts as the system; its requests get their own scopes")
probe_scope.__enter__()  # held in a name: a discarded context manager's generator would exit at once
import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken
from coliseum.crypto import encrypt_secret
from coliseum.models import ApiKey, Membership, Tenant
from ingestion.services import processing_run_pending

SECRET = "whsec-embedded-probe-0123456789"
client = Client()
if sys.argv[1] == "write":
    tenant = Tenant.objects.create(slug="embedded-probe", name="Embedded Probe", plan="enterprise")
    ApiKey.objects.create(
        tenant=tenant, kind="webhook", key_id="pk_embedded_probe", secret_encrypted=encrypt_secret(SECRET)
    )
    user = get_user_model().objects.create_user("embedded-owner", password="correct-horse-battery")
    Membership.objects.create(user=user, tenant=tenant, role="owner")
    at = (datetime.now(UTC) - timedelta(minutes=3)).isoformat()
    plays = [("a1", "fan-1"), ("a1", "fan-2"), ("a1", "fan-1"), ("a2", "fan-3")]
    events = [
        {"event_id": str(uuid.uuid4()), "type": "player.track_played", "occurred_at": at, "user_id": fan,
         "properties": {"track_id": "t1", "artist_id": artist, "duration_seconds": 100}}
        for artist, fan in plays
    ]
    body = orjson.dumps({"events": events})
    ts = str(int(time.time()))
    signature = hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    posted = client.post(
        "/webhooks/passport/events", data=body, content_type="application/json",
        headers={"X-Passport-Key": "pk_embedded_probe", "X-Passport-Signature": f"t={ts},v1={signature}"},
    )
    ingest = {"status": posted.status_code, "body": posted.json(), "processed": processing_run_pending()}
else:
    ingest = {}
user = get_user_model().objects.get(username="embedded-owner")
headers = {"Authorization": f"Bearer {AccessToken.for_user(user)}", "X-Tenant": "embedded-probe"}
today = datetime.now(UTC).date()
kpis = client.get(
    "/api/v1/kpis",
    {"metrics": "plays,unique_listeners", "period": "daily", "from": str(today - timedelta(days=1)),
     "to": str(today + timedelta(days=1))},
    headers=headers,
)
board = client.get("/api/v1/leaderboards", {"metric": "plays", "window": "24h"}, headers=headers)
with owner_scope(), connection.cursor() as cursor:
    cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    cursor.execute("SELECT similarity('coliseum', 'colosseum') > 0.3, current_setting('server_version_num')")
    trgm, version = cursor.fetchone()
print(json.dumps({
    "ingest": ingest,
    "kpis": [kpis.status_code, kpis.json().get("totals")],
    "board": [board.status_code, [[e["artist_name"], e["score"]] for e in board.json().get("entries", [])]],
    "trgm": trgm,
    "server_version_num": int(version),
    "database_port": settings.DATABASES["default"]["PORT"],
    "redis_url": settings.REDIS_URL,
}))
"""


def _embedded_env(data: Path) -> dict[str, str]:
    """The test process's environment without any service configuration, in `embedded` mode."""
    strip = {*embedded.POSTGRES_ENV, "POSTGRES_PASSWORD", *embedded.REDIS_ENV, "TEST_REDIS_URL"}
    env = {k: v for k, v in os.environ.items() if k not in strip and k != embedded.SUPERVISED_ENV}
    env.update(
        COLISEUM_DATA_DIR=str(data),
        COLISEUM_SERVICES="embedded",
        DJANGO_SETTINGS_MODULE="coliseum.settings.local",
        LOG_LEVEL="WARNING",
    )
    return env


def _run(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _services(action: str, env: dict[str, str]) -> str:
    return _run([sys.executable, SERVICES, action], env).stdout


def _pids(banner: str) -> list[int]:
    return [int(p) for p in re.findall(r"pid (\d+)", banner)]


def _processes_using(data: Path) -> list[int]:
    """Every process on the machine whose command line names the data directory (servers, children)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(data) in cmdline and embedded.pid_alive(int(proc.name)):
            found.append(int(proc.name))
    return found


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    yield data
    # Whatever happened in the test, leave no server behind.
    embedded.services_down(environ=_embedded_env(data))


@pytest.mark.slow
def test_embedded_services_start_migrate_persist_across_restart_and_leave_nothing_running(
    data_dir: Path,
) -> None:
    # given: a fresh data directory in embedded mode (and whatever the machine runs, left alone)
    machine = (embedded.local_postgres_answers(), embedded.local_redis_answers())
    env = _embedded_env(data_dir)

    # when: the supervisor migrates (as `make migrate` does) and exits
    migrated = _run([sys.executable, SERVICES, "exec", "--", sys.executable, "manage.py", "migrate"], env)

    # then: PostgreSQL 18 and Redis were started on ports of their own, and stopped when migrate ended
    assert "PostgreSQL  embedded 18." in migrated.stdout and "Redis       embedded" in migrated.stdout
    assert "Applying coliseum.0001_initial... OK" in migrated.stdout
    first_pids = _pids(migrated.stdout)
    assert len(first_pids) == 2
    assert "Stopped the embedded services" in migrated.stdout
    assert not any(embedded.pid_alive(pid) for pid in first_pids)
    assert (data_dir / "postgres" / "PG_VERSION").read_text().strip() == "18"

    # when: the services come up again and a row and a Redis key are written
    up = _services("up", env)
    urls = embedded.read_services_env(data_dir)
    written = json.loads(_run([sys.executable, "-c", PROBE, "write"], env).stdout)

    # then: the project used the embedded servers, not the machine's, and pg_trgm works on them
    assert urls["DATABASE_URL"].startswith("postgres://postgres@127.0.0.1:")
    assert written["database_port"] not in (5432, "5432") and written["redis_url"] == urls["REDIS_URL"]
    assert written["server_version_num"] >= 180000 and written["trgm"] is True
    # and the signed batch was accepted, processed, and shows in the KPIs and on the board
    assert written["ingest"]["status"] == 202 and written["ingest"]["body"]["accepted"] == 4
    assert written["ingest"]["processed"] == 4
    assert written["kpis"] == [200, {"plays": 4, "unique_listeners": 3}]
    assert written["board"] == [200, [["a1", 3], ["a2", 1]]]

    # when: both servers are stopped and started again
    stopped = _services("down", env)
    assert not any(embedded.pid_alive(pid) for pid in _pids(up))
    assert "Stopped pids" in stopped
    _services("up", env)
    read_back = json.loads(_run([sys.executable, "-c", PROBE, "read"], env).stdout)

    # then: the same numbers: KPIs from PostgreSQL, the board from Redis's append-only file
    assert read_back["kpis"] == written["kpis"]
    assert read_back["board"] == written["board"]
    assert (data_dir / "redis" / "appendonly.aof").stat().st_size > 0

    # when: everything is stopped
    _services("down", env)

    # then: no process started for this data directory survives, and the machine's services are as they were
    assert _processes_using(data_dir) == []
    assert not (data_dir / "services.env").exists()
    assert (embedded.local_postgres_answers(), embedded.local_redis_answers()) == machine


def test_external_mode_never_embeds_and_ignores_recorded_servers(tmp_path: Path) -> None:
    # given: a services.env recorded by an earlier embedded run
    (tmp_path / "services.env").write_text("DATABASE_URL=postgres://postgres@127.0.0.1:1/coliseum\n")
    environ = {"COLISEUM_SERVICES": "external", "COLISEUM_DATA_DIR": str(tmp_path)}

    # when / then: external starts nothing and settings fall back to the configured/local defaults
    plan = embedded.services_plan(environ)
    assert (plan.embed_postgres, plan.embed_redis) == (False, False)
    assert embedded.settings_database_url(environ) is None


def test_auto_mode_keeps_configured_services() -> None:
    # given: DATABASE_URL and REDIS_HOST set (as in production or CI)
    environ = {"DATABASE_URL": "postgres://u@db.internal/app", "REDIS_HOST": "cache.internal"}

    # when
    plan = embedded.services_plan(environ)

    # then: auto embeds nothing and says why
    assert (plan.embed_postgres, plan.embed_redis) == (False, False)
    assert plan.postgres_reason == "DATABASE_URL is set" and plan.redis_reason == "REDIS_HOST is set"


def test_embedded_mode_embeds_both_even_with_the_machine_services_answering() -> None:
    plan = embedded.services_plan({"COLISEUM_SERVICES": "embedded"})

    assert (plan.embed_postgres, plan.embed_redis) == (True, True)


def test_unknown_mode_is_refused_with_the_choices() -> None:
    with pytest.raises(embedded.ServicesError, match="auto, external, embedded"):
        embedded.services_plan({"COLISEUM_SERVICES": "docker"})


def test_settings_use_a_recorded_embedded_server_only_while_it_answers(tmp_path: Path) -> None:
    # given: services.env naming a Redis port where something listens, and a database port where nothing does
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    dead_port = embedded.free_port()
    (tmp_path / "services.env").write_text(
        f"DATABASE_URL=postgres://postgres@127.0.0.1:{dead_port}/coliseum\nREDIS_URL=redis://127.0.0.1:{port}/0\n"
    )
    auto = {"COLISEUM_DATA_DIR": str(tmp_path)}
    try:
        # when / then: auto takes the answering one and falls back to the local default for the other
        assert embedded.settings_redis_url(auto) == f"redis://127.0.0.1:{port}/0"
        assert embedded.settings_database_url(auto) is None
        # embedded mode always points at the recorded servers (a connection error beats the machine's data)
        assert embedded.settings_database_url({**auto, "COLISEUM_SERVICES": "embedded"}) == (
            f"postgres://postgres@127.0.0.1:{dead_port}/coliseum"
        )
    finally:
        listener.close()


def test_the_cli_refuses_exec_without_a_command(tmp_path: Path) -> None:
    env = {**os.environ, "COLISEUM_DATA_DIR": str(tmp_path), "COLISEUM_SERVICES": "external"}
    done = subprocess.run(
        [sys.executable, SERVICES, "exec"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "exec needs a command" in done.stderr


def test_database_url_for_keeps_host_and_port_so_children_reach_the_same_server() -> None:
    embedded_db = {"NAME": "test_coliseum", "USER": "postgres", "HOST": "127.0.0.1", "PORT": 45123}
    machine_db = {"NAME": "test_coliseum", "USER": "", "HOST": "", "PORT": ""}

    assert embedded.database_url_for(embedded_db) == "postgres://postgres@127.0.0.1:45123/test_coliseum"
    assert embedded.database_url_for(machine_db) == "postgres:///test_coliseum"
    assert embedded.database_url_for({**embedded_db, "PASSWORD": "p@ss"}, name="other") == (
        "postgres://postgres:p%40ss@127.0.0.1:45123/other"
    )


@pytest.mark.slow
def test_a_half_started_set_is_stopped_and_the_error_is_plain(data_dir: Path) -> None:
    # given: Redis cannot start (its data directory is taken by a file), PostgreSQL can
    data_dir.mkdir(parents=True)
    (data_dir / "redis").write_text("not a directory")

    # when
    done = subprocess.run(
        [sys.executable, SERVICES, "up"],
        cwd=REPO,
        env=_embedded_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # then: a one-line error, no traceback, and the PostgreSQL it had started is stopped again
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith("bin/services: "), done.stderr and "Traceback" not in done.stderr
    assert (data_dir / "postgres" / "PG_VERSION").exists(), done.stderr
    assert _processes_using(data_dir) == []
