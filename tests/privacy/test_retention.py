"""Retention on a log spread over 40 months: what moves to the archive, what is dropped, the legal hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from audit.models import AuditEntry
from coliseum.models import Tenant
from coliseum.privacy.models import RetentionPolicy, RetentionRun
from coliseum.privacy.retention import retention_run
from ingestion.selectors import rollup_totals
from ingestion.services import processing_run_pending
from ingestion.services.maintenance import timescale_enabled
from ingestion.services.retention import log_partitions
from tests.factories import TenantFactory

from .conftest import ingest, month_start, partition_ensure, play

pytestmark = pytest.mark.clock


def _name(months_back: int) -> str:
    m = month_start(months_back)
    return f"ingestion_event_{m.year:04d}{m.month:02d}"


def _mid_month(months_back: int) -> datetime:
    m = month_start(months_back)
    return datetime(m.year, m.month, 15, 12, tzinfo=UTC)


def _count(table: str, tenant: Tenant) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s", [tenant.pk])  # noqa: S608
        return int(cursor.fetchone()[0])


def _plays(tenant: Tenant) -> int:
    return sum(rollup_totals(tenant_id=tenant.pk, metric="plays", start=None, end=None).values())


@pytest.fixture
def forty_months(db: Any) -> dict[str, Tenant]:
    """Tenant `spread` with one play in each of the last 40 months (partitions made as the log's maintenance
    does); tenant `held` on legal hold with two plays 38 months back."""
    if timescale_enabled():
        pytest.skip("TimescaleDB: the log is a hypertable (chunks, not monthly partitions)")
    for k in range(40):
        partition_ensure(month_start(k))
    spread = TenantFactory.create()
    held = TenantFactory.create()
    ingest(spread, [play(f"fan-{k}", "a1", _mid_month(k)) for k in range(40)])
    ingest(
        held, [play("fan-h", "a1", _mid_month(38)), play("fan-h", "a1", _mid_month(38) + timedelta(hours=1))]
    )
    RetentionPolicy.objects.create(tenant=held, legal_hold=True, legal_hold_reason="case 42")
    processing_run_pending()
    return {"spread": spread, "held": held}


def test_dry_run_reports_what_would_move_and_changes_nothing(forty_months: dict[str, Tenant]) -> None:
    # given 40 months of events, default windows (24 months hot, 36 in all) and a legal hold
    before = [(p.schema, p.name) for p in log_partitions()]

    # when retention runs in dry-run mode
    run = retention_run(dry_run=True)

    # then it lists months 25-36 back to move, 37 and 39 to drop, 38 held; and nothing changed
    assert [m["partition"] for m in run.moved] == [_name(k) for k in range(38, 24, -1) if k != 37]
    assert [d["partition"] for d in run.dropped] == [_name(39), _name(37)]
    assert run.held == [{"partition": _name(38), "tenants": [forty_months["held"].pk]}]
    assert [(p.schema, p.name) for p in log_partitions()] == before
    assert _count("ingestion_event", forty_months["spread"]) == 40
    assert AuditEntry.objects.filter(action="privacy.retention_dry_run").count() == 1


def test_retention_archives_then_drops_whole_partitions_and_the_legal_hold_keeps_one(
    forty_months: dict[str, Tenant],
) -> None:
    spread, held = forty_months["spread"], forty_months["held"]
    plays_before = _plays(spread), _plays(held)
    assert plays_before == (40, 2)
    assert (_count("funnels_touch", spread), _count("funnels_touch", held)) == (
        40,
        2,
    )  # attribution's touches

    # when the nightly job runs
    run = retention_run()

    # then months 25-36 back (and the held 38) are in the archive schema, 37 and 39 are gone
    by_name = {p.name: p.schema for p in log_partitions()}
    for k in range(25, 37):
        assert by_name[_name(k)] == "archive", k
    assert by_name[_name(38)] == "archive"
    assert _name(37) not in by_name and _name(39) not in by_name
    for k in range(0, 25):
        assert by_name[_name(k)] == "public", k
    assert [d["rows"] for d in run.dropped] == [1, 1]  # one play of `spread` in each
    # rows: 25 hot, 12 + 1 archived for `spread`; the held tenant keeps its month 38 in the archive
    assert _count("ingestion_event", spread) == 25
    assert _count("archive.ingestion_event", spread) == 12 + 1
    assert _count("archive.ingestion_event", held) == 2
    # the rollups outlive the raw events; attribution forgets the touches of the dropped ones
    assert (_plays(spread), _plays(held)) == plays_before
    assert (_count("funnels_touch", spread), _count("funnels_touch", held)) == (38, 2)
    # the run is recorded and audited
    assert RetentionRun.objects.get(pk=run.pk).dry_run is False
    entry = AuditEntry.objects.get(action="privacy.retention_run")
    assert entry.details["dropped"] == [_name(39), _name(37)] and entry.details["held"] == [_name(38)]

    # when the hold is lifted and the job runs again
    RetentionPolicy.objects.filter(tenant=held).update(legal_hold=False)
    second = retention_run()

    # then the held month is dropped too, and nothing else moves
    assert [d["partition"] for d in second.dropped] == [_name(38)] and second.moved == []
    assert _count("archive.ingestion_event", held) == 0
    assert _count("archive.ingestion_event", spread) == 12
    assert (_count("funnels_touch", spread), _count("funnels_touch", held)) == (37, 0)


def test_the_longest_hot_window_of_any_tenant_decides_when_a_month_moves(
    forty_months: dict[str, Tenant],
) -> None:
    # given one tenant that keeps 30 months hot and 40 in all
    RetentionPolicy.objects.create(tenant=forty_months["spread"], hot_months=30, total_months=40)

    # when retention runs
    run = retention_run(dry_run=True)

    # then only months 31-39 back move (the held tenant's hold no longer matters: nothing is dropped)
    assert sorted(m["partition"] for m in run.moved) == sorted(_name(k) for k in range(31, 40))
    assert run.dropped == [] and run.held == []


def test_retention_runs_are_visible_in_the_admin(forty_months: dict[str, Tenant], admin_user: User) -> None:
    retention_run(dry_run=True)
    client = Client()
    client.force_login(admin_user)
    listing = client.get("/admin/privacy/retentionrun/")
    policy = client.get("/admin/privacy/retentionpolicy/")
    assert listing.status_code == 200 and b"dry" in listing.content.lower()
    assert policy.status_code == 200


def test_timescaledb_compresses_and_drops_chunks(db: Any) -> None:
    if not timescale_enabled():
        pytest.skip("TimescaleDB is not installed on this server: the plain-PostgreSQL path is tested above")
    # given a hypertable, when retention runs in dry-run mode, then it reports chunks
    run = retention_run(dry_run=True)
    assert run.backend == "timescaledb"


def test_month_arithmetic_clamps_the_day() -> None:
    from coliseum.privacy.retention import months_before

    assert months_before(datetime(2026, 3, 31, 5, tzinfo=UTC), 1) == datetime(2026, 2, 28, 5, tzinfo=UTC)
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 24) == datetime(2024, 1, 15, tzinfo=UTC)
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 13) == datetime(2024, 12, 15, tzinfo=UTC)


def test_the_command_and_the_status_report_a_run(forty_months: dict[str, Tenant]) -> None:
    from io import StringIO

    from django.core.management import call_command

    from coliseum.privacy.selectors import retention_status

    # given no real run yet
    assert retention_status()["last_run_at"] is None
    # when the command runs for real
    out = StringIO()
    call_command("retention", stdout=out, verbosity=0)
    # then it printed what moved and dropped, and the status (for health) reflects the run
    assert _name(39) in out.getvalue() and "held: ['" + _name(38) in out.getvalue()
    assert retention_status() | {"last_run_at": None} == {
        "last_run_at": None,
        "moved": 13,
        "dropped": 2,
        "held": 1,
    }


def test_the_privacy_jobs_are_on_the_beat_schedule(db: Any) -> None:
    from coliseum.celery import app

    schedule = app.conf.beat_schedule
    assert schedule["privacy-retention"]["task"] == "privacy.tasks.retention_run"
    assert schedule["privacy-backup"]["task"] == "privacy.tasks.backup_run"
    app.loader.import_default_modules()  # what a worker does at start: autodiscovers <app>.tasks
    assert set(app.tasks) >= {"privacy.tasks.retention_run", "privacy.tasks.backup_run"}


def test_a_late_event_in_an_archived_month_is_counted_with_the_archived_ones(
    forty_months: dict[str, Tenant],
) -> None:
    # given month 30 back moved to the archive (its one play still counted in the rollups)
    spread = forty_months["spread"]
    retention_run()
    hour = _mid_month(30)
    assert _count("archive.ingestion_event", spread) == 13
    assert rollup_totals(tenant_id=spread.pk, metric="plays", start=hour, end=hour + timedelta(hours=1)) != {}

    # when a late play of another fan arrives for that same hour and is processed (the backfill path)
    ingest(spread, [play("fan-late", "a1", hour + timedelta(minutes=5))])
    processing_run_pending()

    # then the hour counts both plays: the recount read the archive too, not only the hot log
    totals = rollup_totals(tenant_id=spread.pk, metric="plays", start=hour, end=hour + timedelta(hours=1))
    assert sum(totals.values()) == 2
    assert (
        sum(
            rollup_totals(
                tenant_id=spread.pk, metric="unique_listeners", start=hour, end=hour + timedelta(hours=1)
            ).values()
        )
        == 2
    )
