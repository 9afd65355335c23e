"""Fixtures for funnel and attribution tests: a Pro tenant, an API client, and event builders."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from coliseum.models import Tenant
from ingestion.services import event_batch_ingest, processing_run_pending
from tests.clock import day_at
from tests.factories import MembershipFactory, TenantFactory

# Noon UTC four days ago: the tests' events lie between 40 days before it and 60 hours after it, all past.
T0 = day_at(4, 12)


def day(offset_days: int) -> str:
    """The date `offset_days` from T0's, as the API's `from` and `to` take it."""
    return (T0 + timedelta(days=offset_days)).date().isoformat()


@pytest.fixture
def tenant(db: Any) -> Tenant:
    return TenantFactory.create(plan="pro")


def client_for(tenant: Tenant, role: str = "viewer") -> APIClient:
    membership = MembershipFactory.create(tenant=tenant, role=role)
    client = APIClient()
    client.force_authenticate(membership.user)
    client.credentials(HTTP_X_TENANT=tenant.slug)
    return client


def event(
    type_: str,
    *,
    user: str = "fan-1",
    at: datetime | timedelta = timedelta(0),
    context: dict[str, Any] | None = None,
    event_id: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    """A Passport event; `at` is a moment or an offset from T0. Common properties get defaults."""
    moment = T0 + at if isinstance(at, timedelta) else at
    defaults: dict[str, dict[str, Any]] = {
        "player.track_played": {"track_id": "t1", "artist_id": "a1", "duration_seconds": 100},
        "social.artist_followed": {"artist_id": "a1"},
        "social.track_shared": {"track_id": "t1", "artist_id": "a1", "channel": "whatsapp"},
        "treasury.money_spent": {
            "amount_minor": 1000,
            "currency": "EUR",
            "reason": "ticket",
            "artist_id": "a1",
        },
        "coliseum.vote_cast": {"artist_id": "a1", "show_id": "s1", "round": 1},
        "concierto.event_attended": {"show_id": "s1", "city": "Lisbon", "artist_id": "a1"},
        "concierto.ticket_viewed": {"show_id": "s1"},
    }
    body: dict[str, Any] = {
        "event_id": event_id or str(uuid.uuid4()),
        "type": type_,
        "occurred_at": moment.isoformat(),
        "user_id": user,
        "properties": {**defaults.get(type_, {}), **properties},
    }
    if context:
        body["context"] = context
    return body


def ingest(tenant: Tenant, events: list[dict[str, Any]]) -> list[SimpleNamespace]:
    """Ingest and process events; returns their log references (what the processor hands attribution)."""
    result = event_batch_ingest(tenant=tenant, events=events, source="passport")
    assert result.rejected == [], result.rejected
    processing_run_pending()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, occurred_at FROM ingestion_event WHERE tenant_id = %s AND event_id = ANY(%s) "
            "ORDER BY id",
            [tenant.pk, [e["event_id"] for e in events]],
        )
        return [SimpleNamespace(pk=pk, occurred_at=at) for pk, at in cursor.fetchall()]
