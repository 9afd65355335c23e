"""`manage.py backup`: a pg_dump of the database into private storage (keeps BACKUP_KEEP)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from coliseum.privacy.backups import BackupError, backup_create, target_from_url


class Command(BaseCommand):
    help = "Write a pg_dump (custom format) of the database to PRIVATE_STORAGE_ROOT/backups."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database-url", default="", help="Dump this database instead of the configured one."
        )
        parser.add_argument("--keep", type=int, default=None, help="Backups to keep (default BACKUP_KEEP).")

    def handle(self, *args: Any, **options: Any) -> None:
        target = target_from_url(options["database_url"]) if options["database_url"] else None
        with tqdm(total=1, desc="pg_dump", unit="dump", disable=options["verbosity"] == 0) as bar:
            try:
                path = backup_create(target=target, keep=options["keep"], actor="system")
            except BackupError as exc:
                raise CommandError(str(exc)) from exc
            bar.update(1)
        self.stdout.write(str(path))
