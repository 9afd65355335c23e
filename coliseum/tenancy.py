"""Which tenant a request acts for, and what the caller may do there.

A user may belong to several tenants: `X-Tenant: <slug>` (or `?tenant=<slug>`) picks one; with a single
membership it is implied. Every tenant-scoped API view derives from TenantApi, which resolves the tenant and
checks the role before the handler runs, so a handler can never forget to."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.views import APIView

from .errors import ApplicationError, ForbiddenError, NotFoundError
from .models import ROLE_RANK, Membership, Role, Tenant


def membership_for_request(request: Request) -> Membership:
    user = request.user
    if not user or not user.is_authenticated:
        from .errors import AuthenticationError

        raise AuthenticationError("Authentication credentials were not provided.")
    slug = request.headers.get("X-Tenant") or request.query_params.get("tenant")
    memberships = Membership.objects.select_related("tenant").filter(user=user)
    if slug:
        membership = memberships.filter(tenant__slug=slug).first()
        if membership is None:
            # Same answer whether the tenant exists or not: never confirm another tenant's existence.
            raise NotFoundError("No such tenant among your memberships.", code="tenant_not_found")
        return membership
    found = list(memberships[:2])
    if not found:
        raise ForbiddenError("You are not a member of any tenant.", code="no_tenant")
    if len(found) > 1:
        raise ApplicationError(
            "You belong to several tenants: name one with the X-Tenant header or ?tenant=.",
            code="tenant_required",
        )
    return found[0]


class TenantApi(APIView):
    """Base for tenant-scoped endpoints. Set `min_role` to the least role allowed."""

    min_role: str = Role.VIEWER
    tenant: Tenant
    membership: Membership

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication, permissions, throttles
        membership = membership_for_request(request)
        if ROLE_RANK[membership.role] < ROLE_RANK[self.min_role]:
            raise ForbiddenError(
                f"This needs the {self.min_role} role or higher; you are {membership.role}.",
                code="role_required",
                details={"required_role": self.min_role, "your_role": membership.role},
            )
        self.membership = membership
        self.tenant = membership.tenant
        request.tenant = membership.tenant  # type: ignore[attr-defined]
