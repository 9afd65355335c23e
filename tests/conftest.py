"""Shared fixtures. Tests run against the real PostgreSQL and a Redis database of their own
(settings.test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from tests.clock import SHIFT_ENV, clock_shift_days, clock_shift_start

# Started when this, the first conftest, is imported: before any test module or nested conftest computes a
# moment relative to now (tests/ingestion/conftest.py's HOUR0, for one). See tests/clock.py.
_CLOCK_SHIFT = clock_shift_start()


def pytest_report_header() -> str | None:
    return f"clock: {SHIFT_ENV}={clock_shift_days()} (this process runs ahead)" if _CLOCK_SHIFT else None


def pytest_unconfigure() -> None:
    if _CLOCK_SHIFT is not None:
        _CLOCK_SHIFT.stop()


@pytest.fixture(autouse=True)
def _clean_redis() -> Iterator[None]:
    """Each test starts with an empty (test-only) Redis database."""
    get_redis_connection("default").flushdb()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _tests_act_as_the_system() -> Iterator[None]:
    """Row-level security (coliseum/rls.py): the test body makes rows for many tenants with factories and
    checks them, as the system would. Requests through the API client still go through the real
    middleware/TenantApi scopes, which restore this one when they end; Celery workers, Daphne and consumer
    threads have their own connections and get nothing from this fixture."""
    from coliseum.rls import system_scope

    with system_scope("tests act as the system"):
        yield


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture(scope="session", autouse=True)
def _raw_tables_empty_at_start(django_db_setup: None, django_db_blocker: object) -> None:
    """The test database is reused between runs (--reuse-db). The event log's raw-SQL tables are not Django
    models, so no flush empties them: a run that was interrupted could leave committed rows behind. Start
    every session from empty ones."""
    from django.db import connection

    from coliseum.rls import owner_scope
    from tests.ingestion.conftest import RAW_TABLES

    # TRUNCATE ignores row-level security, so the application role may not: the owner empties them.
    with django_db_blocker.unblock(), owner_scope(), connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(f"TRUNCATE {RAW_TABLES}")
