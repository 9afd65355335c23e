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
