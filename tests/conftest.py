"""Shared fixtures. Tests run against the real PostgreSQL and a Redis database of their own
(settings.test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django_redis import get_redis_connection
from rest_framework.test import APIClient


@pytest.fixture(autouse=True)
def _clean_redis() -> Iterator[None]:
    """Each test starts with an empty (test-only) Redis database."""
    get_redis_connection("default").flushdb()
    yield
    cache.clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture(scope="session", autouse=True)
def _raw_tables_empty_at_start(django_db_setup: None, django_db_blocker: object) -> None:
    """The test database is reused between runs (--reuse-db). The event log's raw-SQL tables are not Django
    models, so no flush empties them: a run that was interrupted could leave committed rows behind. Start
    every session from empty ones."""
    from django.db import connection

    from tests.ingestion.conftest import RAW_TABLES

    with django_db_blocker.unblock(), connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(f"TRUNCATE {RAW_TABLES}")
