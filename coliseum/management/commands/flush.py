"""`flush` as the tables' owner: it TRUNCATEs, which the application role may not (TRUNCATE ignores row-level
security). Django's test runner flushes through this command after transactional tests."""

from __future__ import annotations

from typing import Any

from django.core.management.commands.flush import Command as DjangoFlush

from coliseum.rls import owner_scope


class Command(DjangoFlush):
    def handle(self, **options: Any) -> None:
        with owner_scope(options["database"]):
            super().handle(**options)
