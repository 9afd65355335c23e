"""Create the configured PostgreSQL database when it is missing (the first step of `make run`)."""

from __future__ import annotations

from typing import Any

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg import sql


def maintenance_conninfo(db: dict[str, Any]) -> dict[str, Any]:
    """Same host, port, user and password as the configured database, but the `postgres` database."""
    params: dict[str, Any] = {"dbname": "postgres"}
    for ours, theirs in (("HOST", "host"), ("PORT", "port"), ("USER", "user"), ("PASSWORD", "password")):
        if db.get(ours):
            params[theirs] = str(db[ours])
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey"):
        if db.get("OPTIONS", {}).get(key):
            params[key] = db["OPTIONS"][key]
    params["connect_timeout"] = 10
    return params


class Command(BaseCommand):
    help = "Create the configured database if it does not exist (DATABASE_URL or POSTGRES_*)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--database", default="default", help="Django database alias.")

    def handle(self, *args: Any, **options: Any) -> None:
        db = settings.DATABASES[options["database"]]
        name = db["NAME"]
        try:
            with psycopg.connect(**maintenance_conninfo(db), autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
                if exists:
                    self.stdout.write(f"Database {name!r} exists.")
                    return
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise CommandError(f"Could not reach PostgreSQL to create {name!r}: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"Created database {name!r}."))
