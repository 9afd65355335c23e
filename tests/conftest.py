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
