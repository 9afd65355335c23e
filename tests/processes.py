"""Real processes for end-to-end tests: the environment that points one at this test's database and Redis,
a Celery worker, and stopping a process whatever state it is in."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    db = connection.settings_dict
    host = db.get("HOST") or ""
    if not host:  # the local socket
        return f"postgres:///{db['NAME']}"
    return f"postgres://{db.get('USER') or ''}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    """This test run's settings, database and Redis database, for a child process."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "coliseum.settings.test",
        "DATABASE_URL": database_url(),
        "TEST_REDIS_URL": settings.REDIS_URL,
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def process_stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@contextmanager
def celery_worker(queues: str, log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """One solo-pool Celery worker on `queues`, its output in `log`; stopped on exit."""
    command = [sys.executable, "-m", "celery", "-A", "coliseum", "worker", "--pool=solo", "-Q", queues]
    command += ["-l", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    command += ["-n", f"test-{uuid.uuid4().hex[:8]}@%h"]
    with log.open("wb") as sink:
        worker = subprocess.Popen(
            command, cwd=ROOT, env=process_env(**env), stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        yield worker
    finally:
        process_stop(worker)
