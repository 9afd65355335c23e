"""Row-level security (issue #8): a query that forgets its tenant filter still sees only the current
tenant's rows, writes for another tenant are refused, no scope sees nothing, the system scope sees all; every
table with a tenant_id is covered and the application role owns none of them."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction

from coliseum import rls
from coliseum.models import ApiKey, ApiKeyKind, Artist, Tenant
from coliseum.rls import (
    POLICY,
    app_role,
    owner_scope,
    policies_apply,
    raw_connection,
    request_scope,
    system_scope,
    tenant_scope,
)
from coliseum.services import api_key_create
from ingestion.services import event_batch_ingest, processing_run_pending
from ingestion.services.retention import archive_table_ensure
from tests.coliseum.conftest import client_for
from tests.factories import ArtistFactory, MembershipFactory, TenantFactory

pytestmark = pytest.mark.django_db

# Tables the spec names: the event log (partitioned), rollups, artists, API keys; plus the archive below.
TABLES = ("ingestion_event", "ingestion_rollup_hourly", "coliseum_artist", "coliseum_apikey")


def _play(user: str, artist: str) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(hours=1)
    return {
        "event_id": str(uuid.uuid4()),
        "type": "player.track_played",
        "occurred_at": at.isoformat(),
        "user_id": user,
        "properties": {"track_id": "t1", "artist_id": artist, "duration_seconds": 100},
    }


@pytest.fixture
def two_tenants() -> tuple[Tenant, Tenant]:
    """Two tenants with artists, keys, logged and processed events (made as the system)."""
    a, b = TenantFactory.create(slug="rls-a"), TenantFactory.create(slug="rls-b")
    for tenant, n in ((a, 2), (b, 3)):
        for i in range(n):
            ArtistFactory.create(tenant=tenant, external_id=f"x{i}")
        api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE)
        result = event_batch_ingest(
            tenant=tenant, events=[_play(f"fan{i}", f"x{i}") for i in range(n)], source="passport"
        )
        assert result.accepted == n
    processing_run_pending()
    return a, b


def _tenants_in(table: str) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT tenant_id FROM {table}")  # noqa: S608 - a constant above
        return {int(t) for (t,) in cursor.fetchall()}


def test_a_query_that_forgets_its_tenant_filter_sees_only_the_current_tenant(
    two_tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = two_tenants
    # given both tenants' rows in every table (the system sees them all)
    for table in TABLES:
        assert _tenants_in(table) == {a.pk, b.pk}, table
    # when tenant A's scope queries without any tenant filter
    with tenant_scope(a.pk):
        # then only A's rows come back, through the ORM and through raw SQL
        assert {x.tenant_id for x in Artist.objects.all()} == {a.pk}
        assert Artist.objects.count() == 2
        assert set(ApiKey.objects.values_list("tenant_id", flat=True)) == {a.pk}
        for table in TABLES:
            assert _tenants_in(table) == {a.pk}, table
    with tenant_scope(b.pk):
        assert Artist.objects.count() == 3
    # and the system scope of the test is back afterwards
    assert Artist.objects.filter(tenant__in=[a, b]).count() == 5


def test_writing_a_row_for_another_tenant_is_refused(two_tenants: tuple[Tenant, Tenant]) -> None:
    a, b = two_tenants
    with tenant_scope(a.pk):
        # INSERT for B: refused by the policy's WITH CHECK
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            Artist.objects.create(tenant=b, external_id="intruder", name="Intruder")
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO ingestion_rollup_hourly VALUES (%s, 'plays', now(), 1, '', 0, '', 1)", [b.pk]
                )
        # moving one of A's rows to B: refused too; B's rows cannot even be found to update or delete
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            Artist.objects.filter(tenant=a).update(tenant=b)
        assert Artist.objects.filter(tenant=b).update(name="renamed") == 0
        assert Artist.objects.filter(tenant=b).delete()[0] == 0
        # while A's own writes go through
        Artist.objects.create(tenant=a, external_id="own", name="Own")
    assert not Artist.objects.filter(tenant=b, name="renamed").exists()
    assert Artist.objects.filter(tenant=b).count() == 3


def test_with_no_scope_nothing_is_visible_and_the_system_scope_sees_all(
    two_tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = two_tenants
    with request_scope():  # what every request starts with, and a fresh worker connection has
        assert Artist.objects.count() == 0
        for table in TABLES:
            assert _tenants_in(table) == set(), table
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            Artist.objects.create(tenant=a, external_id="nobody", name="Nobody")
        with system_scope("test: the bypass"):
            assert Artist.objects.filter(tenant__in=[a, b]).count() == 5
            for table in TABLES:
                assert _tenants_in(table) == {a.pk, b.pk}, table


def test_an_archived_month_is_isolated_like_the_hot_log(two_tenants: tuple[Tenant, Tenant]) -> None:
    a, b = two_tenants
    # given the archive table retention creates, with rows of both tenants
    with owner_scope(), psycopg.Cursor(raw_connection()) as cursor:
        archive_table_ensure(cursor)
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS archive.ingestion_event_199901 PARTITION OF archive.ingestion_event "
            "FOR VALUES FROM ('1999-01-01') TO ('1999-02-01')"
        )
    policies_apply()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO archive.ingestion_event
            SELECT (jsonb_populate_record(
                NULL::archive.ingestion_event, to_jsonb(e) || '{"occurred_at": "1999-01-15T00:00:00Z"}'
            )).*
            FROM ingestion_event e WHERE e.tenant_id IN (%s, %s)
            """,
            [a.pk, b.pk],
        )
    assert _tenants_in("archive.ingestion_event") == {a.pk, b.pk}
    # then tenant A sees only its archived rows, through the parent and through the month itself
    with tenant_scope(a.pk):
        assert _tenants_in("archive.ingestion_event") == {a.pk}
        assert _tenants_in("archive.ingestion_event_199901") == {a.pk}


def test_every_table_with_a_tenant_id_has_the_policy_and_the_application_role_owns_none() -> None:
    # given the archive schema exists too (retention creates it)
    with owner_scope(), psycopg.Cursor(raw_connection()) as cursor:
        archive_table_ensure(cursor)
    policies_apply()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT n.nspname || '.' || c.relname, c.relrowsecurity,
                   EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %s),
                   pg_get_userbyid(c.relowner) = current_user
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
            WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('public', 'archive')
            """,
            [POLICY],
        )
        rows = cursor.fetchall()
        cursor.execute(
            "SELECT current_user, rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user"
        )
        me = cursor.fetchone()
    names = {r[0] for r in rows}
    assert {"public.ingestion_event", "public.ingestion_rollup_hourly", "archive.ingestion_event"} <= names
    assert any(n.startswith("public.ingestion_event_2") for n in names)  # monthly partitions too
    unprotected = [r[0] for r in rows if not (r[1] and r[2])]
    assert unprotected == []
    assert [r[0] for r in rows if r[3]] == []  # owned by the session user, not the application role
    assert me == (app_role(), False, False)


@pytest.mark.urls("tests.coliseum.rls_urls")
def test_an_api_request_whose_code_forgets_the_filter_sees_only_its_tenant(
    two_tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = two_tenants
    client = client_for(MembershipFactory.create(tenant=a))
    # when an endpoint runs SQL over the tables without any tenant filter
    response = client.get("/forgetful")
    # then it ran as the application role, owning none of the tables, and saw only its tenant's rows
    assert response.status_code == 200, response.content
    assert response.json() == {
        "current_user": app_role(),
        "tenant_setting": str(a.pk),
        "artist_tenants": [a.pk],
        "event_tenants": [a.pk],
        "tables_owned": 0,
    }
    # and the test body is back in its own (system) scope
    assert _tenants_in("coliseum_artist") >= {a.pk, b.pk}


def test_a_rolled_back_transaction_does_not_leave_a_stale_scope(two_tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = two_tenants
    assert Artist.objects.count() >= 5  # the system scope is in the session
    with tenant_scope(a.pk):
        with pytest.raises(RuntimeError), transaction.atomic():
            assert Artist.objects.count() == 2  # tenant A's setting sent inside the savepoint
            raise RuntimeError("rolled back, and the setting with it")
        # PostgreSQL restored the system scope's settings with the rollback: the guard sends A's again
        assert Artist.objects.count() == 2
    assert Artist.objects.count() >= 5


def test_repeated_ingest_for_one_tenant_sends_its_scope_once(
    two_tenants: tuple[Tenant, Tenant], client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a write key of tenant A, and every scope change the guard sends to PostgreSQL counted
    a, _ = two_tenants
    issued = api_key_create(tenant=a, kind=ApiKeyKind.WRITE)
    auth = {"Authorization": "Basic " + base64.b64encode(f"{issued.secret}:".encode()).decode()}
    sent: list[tuple[str, str, str]] = []
    real_send = rls._send

    def counting_send(conn: Any, state: Any) -> None:
        sent.append(state.desired)
        real_send(conn, state)

    monkeypatch.setattr(rls, "_send", counting_send)
    # when five Segment calls of that tenant arrive one after the other on this connection
    for i in range(5):
        message = {"type": "track", "event": "Song Played", "messageId": f"m-{i}", "userId": "fan"}
        response = client.post("/v1/track", data=message, content_type="application/json", headers=auth)
        assert response.status_code == 200, response.content
        assert response.json()["accepted"] == 1
    # then the tenant's scope travelled to PostgreSQL once, not once (or twice) a request
    assert sent == [(app_role(), str(a.pk), "")]
    with tenant_scope(a.pk):
        assert _tenants_in("ingestion_event") == {a.pk}
