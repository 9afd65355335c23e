"""The demo world for `make run`: catalog, demo operator and tenant, the event history and the recent hours.
Idempotent; a re-run tops up the recent hours up to now (coliseum/demo.py)."""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from coliseum.demo import (
    RECENT_DAYS,
    anchor_time,
    catalog_seed,
    demo_accounts_seed,
    demo_events,
    demo_password,
    recent_events,
)

# Large enough for every chart and board to look alive, small enough that the first `make run` takes about
# a minute on a laptop. `--events 200000` for a heavier demo.
DEFAULT_EVENTS = 20_000
BATCH = 1000
# The recent hours are twice as busy as the history's average hour: the boards a visitor opens first
# (1 h, 24 h) should look alive.
RECENT_RATE_FACTOR = 2.0
HISTORY_HOURS = 90 * 24


def _ingest_api() -> tuple[Any, Any] | None:
    """ingestion's entry points, when that app provides them (the demo still works without)."""
    try:
        module = importlib.import_module("ingestion.services")
    except ImportError:
        return None
    ingest = getattr(module, "event_batch_ingest", None)
    process = getattr(module, "processing_run_pending", None)
    return (ingest, process) if ingest and process else None


class Command(BaseCommand):
    help = "Create the deterministic demo world (idempotent): catalog, demo accounts, events."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--events",
            type=int,
            default=DEFAULT_EVENTS,
            help=f"Events to generate (default {DEFAULT_EVENTS}).",
        )
        parser.add_argument(
            "--recent-days",
            type=int,
            default=RECENT_DAYS,
            help=f"Days of recent hours to top up to now (default {RECENT_DAYS}; 0: history only).",
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        count: int = options["events"]
        if count < 0:
            raise CommandError("--events must be zero or more.")
        if not demo_password():
            raise CommandError(
                "DEMO_PASSWORD is empty (production settings): the demo world is for local use."
            )
        anchor = anchor_time()
        tenant = demo_accounts_seed()
        artists, shows = catalog_seed(tenant=tenant, anchor=anchor)
        self.stdout.write(f"Demo tenant {tenant.slug!r} ({tenant.plan}): {artists} artists, {shows} shows.")
        if count == 0:
            return
        api = _ingest_api()
        if api is None:
            self.stdout.write(
                self.style.WARNING(
                    "ingestion.services.event_batch_ingest is not available yet: seeded the world only."
                )
            )
            return
        ingest, process = api
        history = self._ingest_all(
            ingest, tenant, demo_events(count=count, anchor=anchor), count, "demo events", options
        )
        recent_days: int = max(0, options["recent_days"])
        recent = (0, 0, 0)
        if recent_days:
            per_hour = count / HISTORY_HOURS * RECENT_RATE_FACTOR
            stream = recent_events(
                tenant_slug=tenant.slug, now=datetime.now(UTC), per_hour=per_hour, days=recent_days
            )
            recent = self._ingest_all(ingest, tenant, stream, None, "recent hours", options)
        processed = process()
        self.stdout.write(
            f"Events: {history[0]} accepted, {history[1]} already there, {history[2]} rejected; "
            f"{processed} processed."
        )
        if recent_days:
            self.stdout.write(
                f"Recent hours (last {recent_days} days): {recent[0]} accepted, {recent[1]} already there, "
                f"{recent[2]} rejected."
            )
        if history[2] or recent[2]:
            self.stdout.write(self.style.WARNING("Some demo events were rejected: see ingestion's catalog."))

    def _ingest_all(
        self,
        ingest: Any,
        tenant: Any,
        events: Iterator[dict[str, Any]],
        total: int | None,
        label: str,
        options: dict[str, Any],
    ) -> tuple[int, int, int]:
        """(accepted, already there, rejected) after sending `events` through ingestion in batches."""
        accepted = duplicates = rejected = 0
        with tqdm(
            total=total, unit="ev", desc=label, disable=options["no_progress"], file=self.stderr
        ) as bar:
            while batch := list(itertools.islice(events, BATCH)):
                result = ingest(tenant=tenant, events=batch, source="import")
                accepted += result.accepted
                duplicates += result.duplicates
                rejected += len(result.rejected)
                bar.update(len(batch))
        return accepted, duplicates, rejected
