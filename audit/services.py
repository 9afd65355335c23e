"""audit_record: called by services inside the same transaction as the change they record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, models, transaction
from django.http import HttpRequest
from tqdm import tqdm

from coliseum.clientaddr import client_address
from coliseum.middleware import request_id_var
from coliseum.models import ApiKey, Tenant
from coliseum.rls import system_scope

from .models import ActorType, AuditEntry

Actor = AbstractBaseUser | AnonymousUser | ApiKey | str | None


def _client_ip(request: HttpRequest) -> str | None:
    return client_address(request) or None


def audit_record(
    *,
    action: str,
    actor: Actor = None,
    tenant: Tenant | None = None,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str | int = "",
    request: HttpRequest | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Write one audit row. `actor` is a user, an ApiKey, or the strings "system" / "stripe".

    `details` must not carry secrets or personal data (no emails, no raw user ids of data subjects)."""
    if actor is None and request is not None:
        actor = getattr(request, "user", None)
    entry = AuditEntry(action=action, tenant=tenant, details=details or {})
    if isinstance(actor, ApiKey):
        entry.actor_type = ActorType.API_KEY
        entry.actor_api_key = actor
        entry.actor_label = actor.key_id
        entry.tenant = entry.tenant or actor.tenant
    elif isinstance(actor, str):
        entry.actor_type = actor if actor in ActorType.values else ActorType.SYSTEM
        entry.actor_label = actor
    elif actor is not None and getattr(actor, "is_authenticated", False):
        entry.actor_type = ActorType.USER
        entry.actor_user = actor  # type: ignore[assignment]
        entry.actor_label = actor.get_username()
    else:
        entry.actor_type = ActorType.ANONYMOUS if request is not None else ActorType.SYSTEM
    if target is not None:
        entry.target_type = target._meta.label_lower
        entry.target_id = str(target.pk)
    else:
        entry.target_type = target_type
        entry.target_id = str(target_id)
    if request is not None:
        entry.ip = _client_ip(request)
        entry.user_agent = request.headers.get("User-Agent", "")[:300]
        entry.request_id = getattr(request, "request_id", "") or request_id_var.get()
    else:
        rid = request_id_var.get()
        entry.request_id = "" if rid == "-" else rid
    if entry.tenant_id is None:
        # Platform rows (logins, operator actions) belong to no tenant: the tenant_isolation policy admits
        # them only in system scope, so no tenant's query ever sees them.
        with system_scope("audit row without a tenant"):
            entry.save()
    else:
        entry.save()
    return entry


def audit_purge_older_than(*, cutoff: datetime, batch_size: int = 10_000, progress: bool = False) -> int:
    """The retention purge: delete entries older than `cutoff`, in batches so locks stay short.

    The only code allowed to delete audit rows. Each batch runs in its own transaction that first turns on
    the documented switch `SET LOCAL coliseum.audit_purge = 'on'` (migration 0003's trigger refuses any
    DELETE without it, and every UPDATE always). The run itself is audited ("audit.purged")."""
    total = 0
    with tqdm(desc="audit purge", unit="rows", disable=not progress) as bar:
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL coliseum.audit_purge = 'on'")
                cursor.execute(
                    """
                    DELETE FROM audit_auditentry
                    WHERE id IN (
                        SELECT id FROM audit_auditentry WHERE at < %s ORDER BY id LIMIT %s
                    )
                    """,
                    [cutoff, batch_size],
                )
                deleted = cursor.rowcount
                # Called inside an outer transaction, this block is only a savepoint and SET LOCAL would
                # outlive it: switch off explicitly (a failed DELETE rolls the savepoint, and the SET, back).
                cursor.execute("SET LOCAL coliseum.audit_purge = 'off'")
            total += deleted
            bar.update(deleted)
            if deleted < batch_size:
                break
    with transaction.atomic():
        audit_record(
            action="audit.purged",
            actor="system",
            target_type="audit.auditentry",
            details={"cutoff": cutoff.isoformat(), "deleted": total},
        )
    return total
