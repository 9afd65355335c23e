"""Migration 0004 and the dedupe-key prune: events queued by the previous version (one queue row per event)
survive the upgrade to one row per request, and back; the prune on the BRIN index drops exactly the expired
keys."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.db import connection

from coliseum.models import Tenant
from coliseum.rls import owner_scope, policies_apply
from ingestion.selectors import rollup_totals
from ingestion.services import event_batch_ingest, processing_run_pending
from ingestion.services.maintenance import dedupe_keys_expire
from tests.factories import TenantFactory
from tests.ingestion.conftest import HOUR0, make_event

migration = importlib.import_module("ingestion.migrations.0004_pending_per_statement")


def _plays(tenant: Tenant) -> int:
    return sum(rollup_totals(tenant_id=tenant.pk, metric="plays", start=None, end=None).values())


@pytest.mark.clock
def test_events_queued_before_the_upgrade_are_processed_after_it_exactly_once(tenant: Tenant) -> None:
    # given two tenants' queued events, in the previous version's layout (one queue row per event)
    other = TenantFactory.create(plan="enterprise")
    for r in range(3):
        events = [make_event(user=f"fan-{r}-{i}", at=HOUR0 + timedelta(minutes=r * 10 + i)) for i in range(4)]
        event_batch_ingest(tenant=tenant, events=events, source="passport")
    event_batch_ingest(tenant=other, events=[make_event(), make_event(user="fan-2")], source="passport")
    with owner_scope(), connection.cursor() as cursor:  # DDL: as the tables' owner, as `migrate` runs it
        cursor.execute(migration.QUEUE_BACKWARD)
        cursor.execute("SELECT tenant_id, count(*) FROM ingestion_pending GROUP BY 1 ORDER BY 1")
        assert cursor.fetchall() == [(tenant.pk, 12), (other.pk, 2)]
        # when the upgrade converts them
        cursor.execute(migration.QUEUE_FORWARD)
        cursor.execute("SELECT tenant_id, event_count FROM ingestion_pending ORDER BY id")
        converted = cursor.fetchall()
    policies_apply()  # what `migrate` does after the migrations (the new table's tenant_isolation policy)
    # then each tenant's events are one queue row, and processing counts every one once
    assert converted == [(tenant.pk, 12), (other.pk, 2)]
    assert processing_run_pending() == 14
    assert (_plays(tenant), _plays(other)) == (12, 2)


def test_the_prune_drops_expired_dedupe_keys_only(tenant: Tenant) -> None:
    # given an event received 40 days ago and one received today
    old, recent = make_event(), make_event()
    event_batch_ingest(tenant=tenant, events=[old], source="passport")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ingestion_event_key SET received_at = now() - interval '40 days' WHERE event_id = %s",
            [old["event_id"]],
        )
    event_batch_ingest(tenant=tenant, events=[recent], source="passport")
    # when keys older than 30 days are pruned
    assert dedupe_keys_expire(days=30) == 1
    # then the recent event is still refused as a duplicate, and the expired one is accepted again
    replay = event_batch_ingest(tenant=tenant, events=[old, recent], source="passport")
    assert (replay.accepted, replay.duplicates) == (1, 1)
    # and a second prune finds nothing more to drop
    assert dedupe_keys_expire(days=30) == 0
