"""The late-touch lookup (the processor probes funnels_attributedconversion once per touch) goes through the
fan index whatever the table's statistics say."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from django.db import connection

from coliseum.models import Tenant
from coliseum.rls import raw_connection, tenant_scope
from ingestion.funnels.models import AttributedConversion
from ingestion.funnels.services import _TOUCHES_APPLY_PLAIN_SQL, attributions_erase_user
from tests.factories import TenantFactory
from tests.funnels.conftest import T0, event, ingest

pytestmark = pytest.mark.clock

PLAY, SPEND = "player.track_played", "treasury.money_spent"


def test_without_statistics_a_touch_probes_its_fans_conversions_by_the_fan_index(tenant: Tenant) -> None:
    # given a conversions table analyzed while empty (a new deployment), then 300 purchases: without
    # statistics the planner once probed by tenant alone and filtered every conversion of the tenant, per
    # touch (a bench drain slowed from 0.15 s to 0.8 s per batch)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE funnels_attributedconversion")
    ingest(tenant, [event(SPEND, user=f"fan-{i}", amount_minor=100, currency="EUR") for i in range(300)])
    # when a batch of touches is planned
    plan = _touches_plan(tenant)
    # then each touch probes the fan index
    assert "funnels_conv_fan" in plan, plan


def test_a_late_touch_still_takes_over_only_its_own_fans_conversion(tenant: Tenant) -> None:
    # given the same fan id in two tenants, each with a purchase touched by an early play
    other_tenant: Tenant = TenantFactory.create(plan=tenant.plan)
    for t in (tenant, other_tenant):
        ingest(t, [event(PLAY, at=timedelta(days=-2)), event(SPEND, amount_minor=500, currency="EUR")])
    # when a closer play of that fan arrives late in the first tenant
    late = event(PLAY, at=timedelta(minutes=-5))
    ingest(tenant, [late])
    # then the first tenant's purchase is credited to it, and the other tenant's is not
    assert AttributedConversion.objects.get(tenant=tenant).touch_event_id == late["event_id"]
    assert AttributedConversion.objects.get(tenant=other_tenant).touch_event_id != late["event_id"]
    # and erasing the fan in the first tenant leaves the other tenant's row
    assert attributions_erase_user(tenant_id=tenant.pk, user_id="fan-1") == 1
    assert AttributedConversion.objects.filter(tenant=other_tenant).count() == 1


def _touches_plan(tenant: Tenant) -> str:
    """EXPLAIN of the processor's touch statement for 50 touches of fans who have conversions, in the tenant's
    scope (row-level security on, as the processor runs it)."""
    users = [f"fan-{i}" for i in range(50)]
    params: dict[str, Any] = {
        "tenant_id": tenant.pk,
        "lookback": timedelta(days=30),
        "t_pk": list(range(1, 51)),
        "t_eid": [str(uuid.uuid4()) for _ in users],
        "t_type": [PLAY] * 50,
        "t_at": [T0 - timedelta(hours=1)] * 50,
        "t_user": users,
        "t_artist": [1] * 50,
        "t_source": ["direct"] * 50,
    }
    with tenant_scope(tenant.pk), psycopg.Cursor(raw_connection()) as cursor:
        cursor.execute("EXPLAIN " + _TOUCHES_APPLY_PLAIN_SQL, params)
        return "\n".join(row[0] for row in cursor.fetchall())
