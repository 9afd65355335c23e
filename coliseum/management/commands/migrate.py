"""`migrate` as the tables' owner, then the row-level security role, grants and policies (coliseum/rls.py).

Overrides Django's command (an app's command of the same name wins), so `make migrate`, the test database
creation of pytest-django and `call_command("migrate")` all end with every tenant table protected, including
tables a migration just added."""

from __future__ import annotations

from typing import Any

from django.core.management.commands.migrate import Command as DjangoMigrate

from coliseum.rls import owner_scope, policies_apply


class Command(DjangoMigrate):
    def handle(self, *args: Any, **options: Any) -> None:
        database = options["database"]
        with owner_scope(database):
            super().handle(*args, **options)
            if options.get("plan") or options.get("check_unapplied"):
                return
            changed = policies_apply(using=database)
        if options["verbosity"] >= 1:
            self.stdout.write(
                f"Row-level security: tenant_isolation policy added or renewed on {changed} tables."
            )
