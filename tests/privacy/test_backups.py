"""Backups: pg_dump into private storage with rotation, and restore into an empty database."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.models import AuditEntry
from coliseum.models import Tenant
from coliseum.privacy.backups import Target, backup_create, backups_list, target_from_settings
from ingestion.services import processing_run_pending
from tests.factories import TenantFactory

from .conftest import attend, hour_ago, ingest, play, vote

_INGESTION_TABLES = (
    "ingestion_event",
    "ingestion_event_key",
    "ingestion_pending",
    "ingestion_backfill",
    "ingestion_rollup_hourly",
    "ingestion_listener_hourly",
    "ingestion_vote_counted",
)


def _admin() -> psycopg.Connection[Any]:
    info = target_from_settings().conninfo()
    info["dbname"] = "postgres"
    return psycopg.connect(**info, autocommit=True)


@pytest.fixture
def empty_database(transactional_db: Any) -> Iterator[Target]:
    # Named after this run's test database, so parallel runs on other test databases never collide.
    source = target_from_settings()
    restore_db = f"{source.name}_restore"
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{restore_db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{restore_db}" TEMPLATE template0')
    yield Target(restore_db, source.user, source.password, source.host, source.port)
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{restore_db}" WITH (FORCE)')


@pytest.fixture
def committed_tenant(transactional_db: Any) -> Iterator[Tenant]:
    """A tenant with committed events and rollups (a dump only sees committed rows). The raw ingestion
    tables are not Django models, so the test database flush does not empty them: this fixture does."""
    tenant = TenantFactory.create()
    at = hour_ago(2)
    ingest(tenant, [play(f"fan-{i}", f"a{i % 3}", at) for i in range(12)])
    ingest(tenant, [vote("fan-1", "a1", at), attend("fan-2", "a2", at)])
    processing_run_pending()
    yield tenant
    with connection.cursor() as cursor:
        for table in _INGESTION_TABLES:
            cursor.execute(f"DELETE FROM {table} WHERE tenant_id = %s", [tenant.pk])  # noqa: S608


def _snapshot(conninfo: dict[str, Any], tenant_id: int) -> tuple[list[Any], list[Any]]:
    with psycopg.connect(**conninfo) as conn:
        events = conn.execute(
            "SELECT event_id, type, occurred_at, user_id, artist_id, properties FROM ingestion_event "
            "WHERE tenant_id = %s ORDER BY event_id",
            [tenant_id],
        ).fetchall()
        rollups = conn.execute(
            "SELECT metric, bucket, artist_id, city, show_id, currency, value FROM ingestion_rollup_hourly "
            "WHERE tenant_id = %s ORDER BY 1, 2, 3, 4, 5, 6",
            [tenant_id],
        ).fetchall()
    return events, rollups


def test_backup_restores_into_an_empty_database_with_the_same_events_and_rollups(
    committed_tenant: Tenant, empty_database: Target, private_root: Path
) -> None:
    # given a database with events and rollups
    source = _snapshot(target_from_settings().conninfo(), committed_tenant.pk)
    assert len(source[0]) == 14 and source[1]

    # when `manage.py backup` dumps it and `manage.py restore` loads the dump into a fresh database
    out = StringIO()
    call_command("backup", stdout=out, verbosity=0)
    dump = Path(out.getvalue().strip())
    where = f"{empty_database.host}:{empty_database.port}" if empty_database.host else ""
    url = f"postgres://{empty_database.user}@{where}/{empty_database.name}"
    call_command("restore", str(dump), database_url=url, verbosity=0, stdout=StringIO())

    # then the dump sits in private storage and the restored database has the same events and rollups
    assert dump.parent == private_root / "backups" and dump.stat().st_size > 0
    assert _snapshot(empty_database.conninfo(), committed_tenant.pk) == source
    assert AuditEntry.objects.filter(action="privacy.backup_created").count() == 1

    # and a second restore into the now non-empty database is refused (unless --force)
    with pytest.raises(CommandError, match="not empty"):
        call_command("restore", str(dump), database_url=url, verbosity=0)


def test_backups_keep_the_configured_number(db: Any, settings: Any, private_root: Path) -> None:
    # given BACKUP_KEEP = 2
    settings.BACKUP_KEEP = 2
    # when three backups are made (of a small database, to keep the test quick)
    small = target_from_settings()
    small = Target("postgres", small.user, small.password, small.host, small.port)
    made = [backup_create(target=small) for _ in range(3)]
    # then the two newest remain
    assert backups_list() == made[1:]
    assert not made[0].exists()
