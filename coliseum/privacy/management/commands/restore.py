"""`manage.py restore FILE`: bring a backup back into an EMPTY database (--force for a non-empty one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from coliseum.privacy.backups import (
    BackupError,
    backup_dir,
    backup_restore,
    target_from_settings,
    target_from_url,
)


class Command(BaseCommand):
    help = "Restore a pg_dump backup into an empty database (the configured one, or --database-url)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="A backup file (a path, or a name in PRIVATE_STORAGE_ROOT/backups).")
        parser.add_argument(
            "--database-url", default="", help="Target database (default: the configured one)."
        )
        parser.add_argument("--force", action="store_true", help="Restore over a non-empty database.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file() and (backup_dir() / path.name).is_file():
            path = backup_dir() / path.name
        target = (
            target_from_url(options["database_url"]) if options["database_url"] else target_from_settings()
        )
        with tqdm(total=1, desc="pg_restore", unit="dump", disable=options["verbosity"] == 0) as bar:
            try:
                backup_restore(path=path, target=target, force=options["force"])
            except BackupError as exc:
                raise CommandError(str(exc)) from exc
            bar.update(1)
        self.stdout.write(f"restored {path.name} into {target.name}")
