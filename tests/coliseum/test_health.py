import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok(api_client):
    response = api_client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_when_database_redis_and_migrations_are(api_client):
    response = api_client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("throwaway redis-server did not start")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def throwaway_redis() -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    port = _free_port()
    processes = [_start_redis(port)]
    yield port, processes
    for process in processes:
        if process.poll() is None:
            _stop(process)


@pytest.mark.slow
def test_readyz_names_redis_while_it_is_down_and_recovers_without_a_restart(
    api_client, throwaway_redis, settings
):
    port, processes = throwaway_redis
    cache = {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{port}/0"}
    with override_settings(CACHES={"default": cache}):
        up = api_client.get("/readyz")
        _stop(processes[0])
        down = api_client.get("/readyz")
        processes.append(_start_redis(port))
        back = api_client.get("/readyz")

    assert up.status_code == 200
    assert down.status_code == 503
    assert down.json() == {"status": "unavailable", "failed": ["redis"]}
    assert back.status_code == 200 and back.json() == {"status": "ok"}


def test_readyz_answers_503_naming_redis_when_it_is_unreachable(api_client, settings):
    closed = _free_port()  # nothing listens there
    cache = {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{closed}/0"}

    with override_settings(CACHES={"default": cache}):
        down = api_client.get("/readyz")
    after = api_client.get("/readyz")

    assert down.status_code == 503
    assert down.json() == {"status": "unavailable", "failed": ["redis"]}
    assert after.status_code == 200
