"""Database backups: `pg_dump -Fc` into private storage, rotation, and restore into an empty database.

pg_dump/pg_restore are the tools (the custom format restores selectively and in parallel); they get the
connection from libpq environment variables, so the password never appears on a command line."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import environ
import psycopg
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from audit.services import Actor, audit_record

BACKUP_PREFIX = "coliseum-"
BACKUP_SUFFIX = ".dump"


class BackupError(Exception):
    pass


def backup_dir() -> Path:
    path: Path = settings.PRIVATE_STORAGE_ROOT / "backups"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@dataclass(frozen=True)
class Target:
    name: str
    user: str
    password: str
    host: str
    port: str

    def env(self) -> dict[str, str]:
        out = {**os.environ, "PGDATABASE": self.name}
        for var, value in (("PGUSER", self.user), ("PGPASSWORD", self.password), ("PGHOST", self.host)):
            if value:
                out[var] = value
        if self.port:
            out["PGPORT"] = str(self.port)
        return out

    def conninfo(self) -> dict[str, Any]:
        info: dict[str, Any] = {"dbname": self.name}
        for key, value in (("user", self.user), ("password", self.password), ("host", self.host)):
            if value:
                info[key] = value
        if self.port:
            info["port"] = self.port
        return info


def target_from_settings(alias: str = "default") -> Target:
    return _target(connections[alias].settings_dict)


def target_from_url(url: str) -> Target:
    return _target(environ.Env.db_url_config(url))


def _target(db: Any) -> Target:
    """From a Django DATABASES entry (settings, or django-environ's parse of a URL)."""
    return Target(
        name=str(db["NAME"]),
        user=str(db.get("USER") or ""),
        password=str(db.get("PASSWORD") or ""),
        host=str(db.get("HOST") or ""),
        port=str(db.get("PORT") or ""),
    )


def backups_list() -> list[Path]:
    """Backups in private storage, oldest first (names carry a sortable UTC timestamp)."""
    return sorted(p for p in backup_dir().glob(f"{BACKUP_PREFIX}*{BACKUP_SUFFIX}") if p.is_file())


def backup_create(*, target: Target | None = None, keep: int | None = None, actor: Actor = "system") -> Path:
    """Dump the database (custom format) to private storage, then keep only the newest `keep` backups."""
    target = target or target_from_settings()
    keep = settings.BACKUP_KEEP if keep is None else keep
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S%fZ")
    final = backup_dir() / f"{BACKUP_PREFIX}{stamp}{BACKUP_SUFFIX}"
    partial = final.with_suffix(".partial")
    proc = subprocess.run(
        ["pg_dump", "-Fc", "--no-owner", "-f", str(partial)],
        env=target.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {proc.stderr.strip()[:500]}")
    partial.chmod(0o600)
    partial.rename(final)
    removed = [p.name for p in backups_list()[: max(0, len(backups_list()) - max(keep, 1))]]
    for name in removed:
        (backup_dir() / name).unlink(missing_ok=True)
    with transaction.atomic():
        audit_record(
            action="privacy.backup_created",
            actor=actor,
            details={"file": final.name, "bytes": final.stat().st_size, "rotated_out": removed},
        )
    return final


def database_is_empty(target: Target) -> bool:
    """No table, view or sequence outside the system schemas."""
    with psycopg.connect(**target.conninfo()) as conn:
        row = conn.execute(
            """
            SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
              AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
              AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'
            """
        ).fetchone()
    return bool(row and row[0] == 0)


def backup_restore(*, path: Path, target: Target, force: bool = False) -> None:
    """Restore a dump into `target`. Refuses a database that holds anything unless `force` (then objects the
    dump contains are dropped and recreated first)."""
    if not path.is_file():
        raise BackupError(f"no such backup file: {path}")
    if not force and not database_is_empty(target):
        raise BackupError(f"database {target.name!r} is not empty: restore refuses it (use --force)")
    argv = ["pg_restore", "--no-owner", "--exit-on-error", "-d", target.name]
    if force:
        argv[1:1] = ["--clean", "--if-exists"]
        argv.remove("--exit-on-error")  # --clean on a partly different database may meet harmless misses
    proc = subprocess.run([*argv, str(path)], env=target.env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BackupError(f"pg_restore failed: {proc.stderr.strip()[:500]}")
