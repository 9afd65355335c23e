"""Fixtures for ingestion tests: a tenant with keys, and helpers to build events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from coliseum.crypto import digest_secret, encrypt_secret
from coliseum.models import ApiKey, Tenant
from tests.clock import day_at
from tests.factories import TenantFactory

WEBHOOK_SECRET = "whsec-test-secret-0123456789"
WRITE_KEY = "wk_live_test_0123456789abcdef"


@pytest.fixture
def tenant(db: Any) -> Tenant:
    return TenantFactory.create(plan="enterprise")


@pytest.fixture
def webhook_key(tenant: Tenant) -> ApiKey:
    return ApiKey.objects.create(
        tenant=tenant,
        kind="webhook",
        key_id=f"pk_{tenant.slug}",
        secret_encrypted=encrypt_secret(WEBHOOK_SECRET),
    )


@pytest.fixture
def write_key(tenant: Tenant) -> ApiKey:
    return ApiKey.objects.create(
        tenant=tenant, kind="write", key_id=f"wk_{tenant.slug}", secret_digest=digest_secret(WRITE_KEY)
    )


# 10:00 UTC four days ago. Inside the late horizon (INGEST_LATE_HORIZON_DAYS, 7 days) for the whole session,
# so events take the live path to the rollups, not the backfill; with the three days after it already past
# (KPI tests spread events over them); and early morning in New York, so its first hours are one local day
# there.
HOUR0 = day_at(4, 10)


def make_event(
    type_: str = "player.track_played",
    *,
    user: str = "fan-1",
    at: datetime | None = None,
    event_id: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    if not properties and type_ == "player.track_played":
        properties = {"track_id": "t1", "artist_id": "a1", "duration_seconds": 100}
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "type": type_,
        "occurred_at": (at or HOUR0 + timedelta(minutes=5)).isoformat(),
        "user_id": user,
        "properties": properties,
    }


@pytest.fixture(autouse=True)
def _fresh_key_cache() -> None:
    """Credential lookups are cached in-process for a few seconds; tests reuse the same raw key."""
    from coliseum.selectors import api_key_cache_clear

    api_key_cache_clear()


RAW_TABLES = (
    "ingestion_event, ingestion_event_key, ingestion_pending, ingestion_backfill, ingestion_rollup_hourly, "
    "ingestion_listener_hourly, ingestion_vote_counted, funnels_touch"
)


@pytest.fixture
def raw_tables_cleanup(transactional_db: Any) -> Iterator[None]:
    """For tests with committed data (live server, other processes): the raw-SQL tables are not Django
    models, so the test runner's flush does not empty them."""
    yield
    from django.db import connection

    from coliseum.rls import owner_scope

    with owner_scope(), connection.cursor() as cursor:  # TRUNCATE is the owner's (it ignores RLS)
        cursor.execute(f"TRUNCATE {RAW_TABLES}")
