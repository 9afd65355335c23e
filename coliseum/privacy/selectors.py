"""Reads of the privacy app."""

from __future__ import annotations

import uuid

from coliseum.errors import NotFoundError
from coliseum.models import Tenant

from .models import PrivacyRequest


def privacy_request_get(*, tenant: Tenant, request_id: uuid.UUID, kind: str) -> PrivacyRequest:
    """A request of the caller's tenant; another tenant's id answers exactly like an unknown one (404)."""
    found = PrivacyRequest.objects.filter(pk=request_id, tenant=tenant, kind=kind).first()
    if found is None:
        raise NotFoundError("No such request.")
    return found


def retention_status() -> dict[str, object]:
    """The last real retention run, for the health endpoint and the console (when; moved, dropped, held)."""
    from .models import RetentionRun

    run = RetentionRun.objects.filter(dry_run=False).order_by("-started_at").first()
    if run is None:
        return {"last_run_at": None, "moved": 0, "dropped": 0, "held": 0}
    return {
        "last_run_at": run.finished_at.isoformat() if run.finished_at else None,
        "moved": len(run.moved),
        "dropped": len(run.dropped),
        "held": len(run.held),
    }
