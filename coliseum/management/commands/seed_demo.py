"""The demo world for `make run`: catalog, demo operator and tenant, and a stream of events. Idempotent."""

from __future__ import annotations

import importlib
import itertools
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from coliseum.demo import anchor_time, catalog_seed, demo_accounts_seed, demo_events, demo_password

# Large enough for every chart and board to look alive, small enough that the first `make run` takes about
# a minute on a laptop. `--events 200000` for a heavier demo.
DEFAULT_EVENTS = 20_000
BATCH = 1000


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
        accepted = duplicates = rejected = 0
        events = demo_events(count=count, anchor=anchor)
        with tqdm(
            total=count, unit="ev", desc="demo events", disable=options["no_progress"], file=self.stderr
        ) as bar:
            while batch := list(itertools.islice(events, BATCH)):
                result = ingest(tenant=tenant, events=batch, source="import")
                accepted += result.accepted
                duplicates += result.duplicates
                rejected += len(result.rejected)
                bar.update(len(batch))
        processed = process()
        self.stdout.write(
            f"Events: {accepted} accepted, {duplicates} already there, {rejected} rejected; "
            f"{processed} processed."
        )
        if rejected:
            self.stdout.write(self.style.WARNING("Some demo events were rejected: see ingestion's catalog."))
