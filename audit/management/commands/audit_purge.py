"""`manage.py audit_purge --days N`: the retention purge by hand (progress bar; audited)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audit.services import audit_purge_older_than


class Command(BaseCommand):
    help = "Delete audit entries older than --days (default AUDIT_RETENTION_DAYS) under the purge switch."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        days = (
            options["days"]
            if options["days"] is not None
            else int(getattr(settings, "AUDIT_RETENTION_DAYS", 0))
        )
        if days <= 0:
            raise CommandError("Give --days N (N >= 1) or set AUDIT_RETENTION_DAYS.")
        deleted = audit_purge_older_than(cutoff=timezone.now() - timedelta(days=days), progress=True)
        self.stdout.write(f"deleted {deleted} audit entries older than {days} days")
