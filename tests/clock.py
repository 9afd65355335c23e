"""Time in tests: moments relative to now (no test may depend on today's date), and the shifted clock that
proves it.

With COLISEUM_TEST_CLOCK_SHIFT_DAYS=N this process's clock (time.time, datetime.now, date.today) runs N days
ahead for the whole session (`make test` runs the tests marked `clock` once more with N=365). Only this
process: PostgreSQL's now(), Redis and any process a test starts keep the machine's clock, so the marked
tests are in-process ones that read no SQL now()."""

from __future__ import annotations

import os
from datetime import UTC, datetime, time, timedelta

import time_machine

SHIFT_ENV = "COLISEUM_TEST_CLOCK_SHIFT_DAYS"


def clock_shift_days() -> int:
    return int(os.environ.get(SHIFT_ENV) or 0)


def clock_shift_start() -> time_machine.travel | None:
    """Move this process's clock ahead by the shift asked for, ticking from there; None when none is."""
    days = clock_shift_days()
    if not days:
        return None
    traveller = time_machine.travel(datetime.now(UTC) + timedelta(days=days), tick=True)
    traveller.start()
    return traveller


def day_at(days_ago: int, hour: int) -> datetime:
    """`hour`:00 UTC on the UTC day `days_ago` days before today: a whole hour, whatever the moment now."""
    today = datetime.now(UTC).date()
    return datetime.combine(today - timedelta(days=days_ago), time(hour), tzinfo=UTC)
