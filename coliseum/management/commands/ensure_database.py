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


def database_ensure(db: dict[str, Any]) -> bool:
    """CREATE DATABASE db["NAME"] unless it exists. Returns whether it was created."""
    name = db["NAME"]
    with psycopg.connect(**maintenance_conninfo(db), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


class Command(BaseCommand):
    help = "Create the configured database if it does not exist (DATABASE_URL or POSTGRES_*)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--database", default="default", help="Django database alias.")

    def handle(self, *args: Any, **options: Any) -> None:
        db = settings.DATABASES[options["database"]]
        try:
            created = database_ensure(db)
        except psycopg.Error as exc:
            raise CommandError(f"Could not reach PostgreSQL to create {db['NAME']!r}: {exc}") from exc
        if created:
            self.stdout.write(self.style.SUCCESS(f"Created database {db['NAME']!r}."))
        else:
            self.stdout.write(f"Database {db['NAME']!r} exists.")
