"""Reads of the audit log: the filtered list behind both audit-log APIs and the CSV export."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.db.models import Q, QuerySet

from billing.entitlements import entitlements_for
from coliseum.models import Plan, Tenant

from .models import AuditEntry

CSV_COLUMNS = (
    "id",
    "at",
    "tenant_id",
    "actor_type",
    "actor",
    "action",
    "target_type",
    "target_id",
    "ip",
    "user_agent",
    "request_id",
    "details",
)


def audit_entries_list(
    *,
    tenant_id: int | None = None,
    actor: str | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEntry]:
    """Entries newest first. `tenant_id` None means every tenant (operators only).

    actor: a username / API key id (the entry's actor label) or an actor type ("system", "stripe", ...).
    action: a dotted prefix ("plan" matches "plan.assigned"; "plan.assigned" matches itself).
    since/until: the half-open range [since, until)."""
    qs = AuditEntry.objects.all()
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    if actor:
        qs = qs.filter(Q(actor_label=actor) | Q(actor_type=actor))
    if action:
        prefix = action.rstrip(".")
        qs = qs.filter(Q(action=prefix) | Q(action__startswith=prefix + "."))
    if target_type:
        qs = qs.filter(target_type=target_type)
    if target_id:
        qs = qs.filter(target_id=target_id)
    if since is not None:
        qs = qs.filter(at__gte=since)
    if until is not None:
        qs = qs.filter(at__lt=until)
    return qs.order_by("-at", "-id")


def audit_export_allowed(*, tenant: Tenant) -> bool:
    """CSV export is an Enterprise feature. Read through billing's one entry point (no new entitlement
    field: the plan in force decides)."""
    return entitlements_for(tenant).plan == Plan.ENTERPRISE


def _csv_safe(value: object) -> str:
    """Neutralise spreadsheet formula injection: a cell starting with = + - @ is prefixed with '."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def audit_csv_rows(entries: Iterable[AuditEntry]) -> Iterator[list[str]]:
    yield list(CSV_COLUMNS)
    for e in entries:
        yield [
            _csv_safe(v)
            for v in (
                e.pk,
                e.at.isoformat(),
                e.tenant_id or "",
                e.actor_type,
                e.actor_label,
                e.action,
                e.target_type,
                e.target_id,
                e.ip or "",
                e.user_agent,
                e.request_id,
                json.dumps(e.details, sort_keys=True, separators=(",", ":")),
            )
        ]
