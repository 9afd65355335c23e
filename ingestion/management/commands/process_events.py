"""Run the event processor in the foreground (a worker loop without Celery; tests and operators use it)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from ingestion.services import processing_batch_run
from ingestion.services.rollup import backfill_run_pending


class Command(BaseCommand):
    help = "Process pending events into rollups: until the queue is empty, or forever with --follow."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument(
            "--follow", action="store_true", help="keep polling (0.2 s) when the queue is empty"
        )
        parser.add_argument("--max-seconds", type=float, default=3600.0, help="stop after this long")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        total = 0
        with tqdm(unit="ev", desc="processing", disable=options["quiet"]) as bar:
            while time.monotonic() - started < options["max_seconds"]:
                n = processing_batch_run(limit=options["batch_size"])
                total += n
                bar.update(n)
                if n == 0:
                    backfill_run_pending()
                    if not options["follow"]:
                        break
                    time.sleep(0.2)
        self.stdout.write(f"processed {total} events")
