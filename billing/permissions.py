"""Plan gates for DRF views (and a plain function for consumers, report rendering and ingestion).

    permission_classes = [IsAuthenticated, PlanAllows("live_feed")]
    permission_classes = [IsAuthenticated, PlanAllows("kpi_periods", lambda e: "hourly" in e.kpi_periods)]

A refused request answers 403 `plan_required` naming the cheapest plan that allows it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from coliseum.models import Tenant
from coliseum.tenancy import membership_for_request

from .entitlements import ENTITLEMENT_NAMES, Entitlements, entitlements_for, plan_required

Predicate = Callable[[Entitlements], bool]


def entitlement_require(*, tenant: Tenant, name: str, predicate: Predicate | None = None) -> Entitlements:
    """Raise PlanRequiredError unless the tenant's entitlements satisfy `predicate` (default: the named
    entitlement is truthy). Returns the entitlements for further checks."""
    check: Predicate = predicate or (lambda e: bool(getattr(e, name)))
    entitlements = entitlements_for(tenant)
    if not check(entitlements):
        what = name.replace("_", " ").capitalize()
        raise plan_required(what, check, entitlement=name, current_plan=entitlements.plan)
    return entitlements


def request_tenant(request: Request) -> Tenant:
    """The tenant a DRF request acts for (TenantApi sets it only after permissions ran, so resolve here)."""
    tenant = getattr(request, "tenant", None)
    if isinstance(tenant, Tenant):
        return tenant
    return membership_for_request(request).tenant


def PlanAllows(name: str, predicate: Predicate | None = None) -> type[BasePermission]:
    """A permission class (DRF instantiates classes without arguments, hence the factory)."""
    if name not in ENTITLEMENT_NAMES:
        raise ValueError(f"unknown entitlement {name!r}")

    class _PlanAllows(BasePermission):
        def has_permission(self, request: Request, view: Any) -> bool:
            if not request.user or not request.user.is_authenticated:
                return True  # authentication classes / IsAuthenticated answer that
            entitlement_require(tenant=request_tenant(request), name=name, predicate=predicate)
            return True

    _PlanAllows.__name__ = _PlanAllows.__qualname__ = f"PlanAllows_{name}"
    return _PlanAllows
