"""Fixtures for privacy tests: the shipped private storage, a job runner, a tenant with an owner, events,
Redis/DB scans."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from django.db import connection
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from coliseum.models import Role, Tenant
from ingestion.services import event_batch_ingest
from tests.factories import MembershipFactory, TenantFactory


@pytest.fixture(autouse=True)
def private_root(settings: Any) -> Path:
    """Private storage exactly as the settings module builds it (from TEST_PRIVATE_STORAGE_ROOT): no test
    here replaces it, so a setting of the wrong type fails these tests as it failed the shipped stack. Files
    are named by tenant and request, which never repeat within a run."""
    settings.PUBLIC_BASE_URL = "https://coliseum.test"
    return settings.PRIVATE_STORAGE_ROOT  # type: ignore[no-any-return]


@pytest.fixture
def run_job(django_capture_on_commit_callbacks: Any) -> Callable[[str], None]:
    """Run a privacy job as a worker would, including what it does once its transaction commits."""
    from coliseum.privacy import tasks

    def run(request_id: str) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            tasks.privacy_request_run(request_id)

    return run


@pytest.fixture
def tenant(db: Any) -> Tenant:
    return TenantFactory.create(plan="enterprise", reporting_currency="EUR")


@pytest.fixture
def other_tenant(db: Any) -> Tenant:
    return TenantFactory.create(plan="enterprise", reporting_currency="EUR")


@pytest.fixture
def owner(tenant: Tenant) -> User:
    return MembershipFactory.create(tenant=tenant, role=Role.OWNER).user  # type: ignore[no-any-return]


@pytest.fixture
def client_for() -> Callable[[User], APIClient]:
    def make(user: User) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


def hour_ago(hours: int) -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)


def play(user: str, artist: str, at: datetime, seconds: int = 100, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "player.track_played",
        "occurred_at": at.isoformat(),
        "user_id": user,
        "properties": {"track_id": "t1", "artist_id": artist, "duration_seconds": seconds, **extra},
        "context": {"ip": "203.0.113.9", "traits": {"user": user}},
    }


def vote(
    user: str, artist: str, at: datetime, show: str = "s1", round_: int = 1, weight: int = 1
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "coliseum.vote_cast",
        "occurred_at": at.isoformat(),
        "user_id": user,
        "properties": {"artist_id": artist, "show_id": show, "round": round_, "weight": weight},
    }


def attend(user: str, artist: str, at: datetime, show: str = "s1") -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "concierto.event_attended",
        "occurred_at": at.isoformat(),
        "user_id": user,
        "properties": {"show_id": show, "city": "Lisbon", "artist_id": artist},
    }


def ingest(tenant: Tenant, events: list[dict[str, Any]]) -> None:
    result = event_batch_ingest(tenant=tenant, events=events, source="passport")
    assert result.rejected == [] and result.accepted == len(events)


def month_start(months_back: int, now: datetime | None = None) -> date:
    now = now or datetime.now(UTC)
    index = now.year * 12 + now.month - 1 - months_back
    year, month0 = divmod(index, 12)
    return date(year, month0 + 1, 1)


def partition_ensure(month: date) -> None:
    from ingestion.services.maintenance import partition_ensure as ensure

    ensure(month=month)


def brute_force(tenant_id: int) -> dict[str, dict[int, int]]:
    """Every all-time metric recounted from the raw events, hot and archived (first vote per fan wins)."""
    sources = ["ingestion_event"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('archive.ingestion_event') IS NOT NULL")
        if cursor.fetchone()[0]:
            sources.append("archive.ingestion_event")
        rows: list[Any] = []
        for table in sources:
            cursor.execute(
                f"SELECT event_id, type, occurred_at, user_id, artist_id, properties FROM {table} "  # noqa: S608
                "WHERE tenant_id = %s",
                [tenant_id],
            )
            rows.extend(cursor.fetchall())
    out: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    listeners: dict[int, set[str]] = defaultdict(set)
    first: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for event_id, type_, occurred, user, artist, props in rows:
        props = orjson.loads(props) if isinstance(props, str) else props
        if type_ == "player.track_played":
            out["plays"][artist] += 1
            out["listen_seconds"][artist] += props["duration_seconds"]
            listeners[artist].add(user)
        elif type_ == "concierto.event_attended":
            out["attendance"][artist] += 1
        elif type_ == "coliseum.vote_cast":
            key = (props["show_id"], props["round"], user)
            candidate = (occurred, event_id, artist, props.get("weight", 1))
            if key not in first or candidate[:2] < first[key][:2]:
                first[key] = candidate
    for _o, _e, artist, weight in first.values():
        out["votes"][artist] += weight
    out["unique_listeners"] = {a: len(users) for a, users in listeners.items()}
    return {m: {a: v for a, v in by.items() if v} for m, by in out.items()}


def rollup_all(tenant_id: int) -> dict[str, dict[int, int]]:
    from ingestion.selectors import rollup_totals

    out = {}
    for metric in ("plays", "listen_seconds", "unique_listeners", "votes", "attendance"):
        totals = {
            a: v
            for a, v in rollup_totals(tenant_id=tenant_id, metric=metric, start=None, end=None).items()
            if v
        }
        if totals:
            out[metric] = totals
    return out


def db_rows_mentioning(text: str) -> dict[str, int]:
    """Every table (public and archive schemas) with a text-like column holding `text`, with a row count."""
    found: dict[str, int] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.table_schema, c.table_name, c.column_name
            FROM information_schema.columns c
            JOIN information_schema.tables t USING (table_schema, table_name)
            WHERE c.table_schema IN ('public', 'archive') AND t.table_type = 'BASE TABLE'
              AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')
            ORDER BY 1, 2, 3
            """
        )
        columns = cursor.fetchall()
        for schema, table, column in columns:
            cursor.execute(
                f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{column}"::text LIKE %s',  # noqa: S608
                [f"%{text}%"],
            )
            count = cursor.fetchone()[0]
            if count:
                found[f"{schema}.{table}.{column}"] = count
    return found


def redis_mentions(text: str) -> list[str]:
    """Keys of the test Redis database whose name or any value holds `text`."""
    conn = get_redis_connection("default")
    needle = text.encode()
    hits = []
    for key in conn.scan_iter(count=1000):
        kind = conn.type(key).decode()
        values: list[bytes] = [key]
        if kind == "string":
            values.append(conn.get(key) or b"")
        elif kind == "zset":
            values.extend(m for m, _ in conn.zrange(key, 0, -1, withscores=True))
        elif kind == "set":
            values.extend(conn.smembers(key))
        elif kind == "hash":
            for f, v in conn.hgetall(key).items():
                values.extend((f, v))
        elif kind == "list":
            values.extend(conn.lrange(key, 0, -1))
        elif kind == "stream":
            for _id, fields in conn.xrange(key):
                for f, v in fields.items():
                    values.extend((f, v))
        if any(needle in v for v in values):
            hits.append(key.decode(errors="replace"))
    return hits
