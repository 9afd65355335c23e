"""The demo world stays alive: a re-run of seed_demo (every `make run` does one) tops up the recent hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from coliseum.demo import recent_events, recent_hours
from coliseum.models import Tenant
from leaderboards.boards import window_start
from leaderboards.selectors import board_for, board_ranking
from tests.ingestion.recount import recount

pytestmark = pytest.mark.django_db


def _seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", "--no-progress", *args, stdout=out)
    return out.getvalue()


def _event_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ingestion_event")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _plays_24h(tenant: Tenant) -> dict[int, int]:
    ranking = board_ranking(board=board_for(tenant=tenant, metric="plays", window="24h"), fresh=True)
    return {e["artist_id"]: e["score"] for e in ranking.entries}


def _first_seed_time() -> datetime:
    # Twenty minutes into the current hour: a re-run seconds later is still in the same hour.
    return datetime.now(UTC).replace(minute=20, second=0, microsecond=0)


def test_a_reseed_two_days_later_fills_the_24h_board_again_and_equals_a_recount():
    first = _first_seed_time()
    with time_machine.travel(first, tick=True):
        _seed("--events", "300")
        demo = Tenant.objects.get(slug="demo")
        assert _plays_24h(demo)

    later = first + timedelta(days=2)
    with time_machine.travel(later, tick=True):
        assert _plays_24h(demo) == {}  # what a visitor saw before: the demo had gone stale

        out = _seed("--events", "300")

        now = datetime.now(UTC)
        board = _plays_24h(demo)
        assert board, out
        assert board == recount(tenant_id=demo.pk, start=window_start("24h", now))["plays"]
        assert "Events: 0 accepted, 300 already there, 0 rejected" in out
        assert "Recent hours (last 7 days):" in out


def test_a_reseed_in_the_same_hour_adds_no_event():
    with time_machine.travel(_first_seed_time(), tick=True):
        _seed("--events", "300")
        before = _event_count()

        out = _seed("--events", "300")

        assert _event_count() == before, out
        assert "Recent hours (last 7 days): 0 accepted," in out


def test_recent_events_cover_each_hour_up_to_now_and_never_the_future():
    now = datetime.now(UTC).replace(minute=7, second=30)

    events = list(recent_events(tenant_slug="demo", now=now, per_hour=20.0, days=2))

    times = [datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00")) for e in events]
    hours = {t.replace(minute=0, second=0, microsecond=0) for t in times}
    assert hours == set(recent_hours(now=now, days=2))
    assert max(times) <= now and min(times) >= now - timedelta(days=2)
    assert len({e["event_id"] for e in events}) == len(events)
    # The same hour always yields the same ids, whenever it is generated again.
    again = list(recent_events(tenant_slug="demo", now=now + timedelta(minutes=40), per_hour=20.0, days=2))
    assert {e["event_id"] for e in events} <= {e["event_id"] for e in again}
