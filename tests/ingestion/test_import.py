"""manage.py import_events: same validation and dedupe as the API, a summary and a rejects file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
import pytest
from django.core.management import call_command

from coliseum.models import Tenant
from ingestion.selectors import rollup_totals
from tests.ingestion.conftest import HOUR0, make_event

pytestmark = pytest.mark.clock


def test_jsonl_import_with_duplicates_and_rejects(tenant: Tenant, tmp_path: Path) -> None:
    good = [make_event(user=f"u{i}") for i in range(5)]
    lines = [orjson.dumps(e) for e in good] + [
        orjson.dumps(good[0]),
        b"{broken",
        orjson.dumps(make_event("x.y")),
    ]
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    out = io.StringIO()
    call_command("import_events", str(source), tenant=tenant.slug, process=True, quiet=True, stdout=out)
    assert "accepted 5, duplicates 1, rejected 2" in out.getvalue()
    rejects = [orjson.loads(x) for x in (tmp_path / "events.jsonl.rejects.jsonl").read_bytes().splitlines()]
    assert [r["line"] for r in rejects] == [7, 8]
    assert sum(rollup_totals(tenant_id=tenant.pk, metric="plays", start=None, end=None).values()) == 5
    # a second run of the same file changes nothing
    out2 = io.StringIO()
    call_command("import_events", str(source), tenant=tenant.slug, quiet=True, stdout=out2)
    assert "accepted 0, duplicates 6" in out2.getvalue()


def test_csv_import(tenant: Tenant, tmp_path: Path) -> None:
    source = tmp_path / "events.csv"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["event_id", "type", "occurred_at", "user_id", "properties"])
    at = f"{HOUR0:%Y-%m-%dT%H:%M:%SZ}"
    writer.writerow(["csv-1", "social.artist_followed", at, "u1", '{"artist_id": "a7"}'])
    writer.writerow(["csv-2", "social.artist_followed", at, "u2", "{not json"])
    source.write_text(buffer.getvalue())
    out = io.StringIO()
    call_command("import_events", str(source), tenant=tenant.slug, process=True, quiet=True, stdout=out)
    assert "accepted 1, duplicates 0, rejected 1" in out.getvalue()
    assert list(rollup_totals(tenant_id=tenant.pk, metric="follows", start=None, end=None).values()) == [1]
