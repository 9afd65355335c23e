"""`manage.py retention [--dry-run]`: run the retention job now (archive and drop whole months)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from coliseum.privacy.retention import retention_run


class Command(BaseCommand):
    help = "Archive raw events past the hot window and drop those past the total window (whole partitions)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Report what would move; change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        run = retention_run(dry_run=options["dry_run"], progress=options["verbosity"] > 0)
        label = "would move" if run.dry_run else "moved"
        self.stdout.write(f"{label}: {[m.get('partition') or m.get('chunk') for m in run.moved]}")
        self.stdout.write(
            f"{'would drop' if run.dry_run else 'dropped'}: "
            f"{[d.get('partition') or d.get('chunk') for d in run.dropped]}"
        )
        self.stdout.write(f"held: {[h.get('partition') or h.get('chunk') for h in run.held]}")
