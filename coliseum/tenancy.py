"""Which tenant a request acts for, and what the caller may do there.

A user may belong to several tenants: `X-Tenant: <slug>` (or `?tenant=<slug>`) picks one; with a single
membership it is implied. Every tenant-scoped API view derives from TenantApi, which resolves the tenant and
checks the role before the handler runs, so a handler can never forget to; and from then on the database
itself shows the request only that tenant's rows (row-level security, coliseum/rls.py), so a query that
forgets its tenant filter cannot leak another tenant's."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponseBase
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.views import APIView

from .errors import ApplicationError, ForbiddenError, NotFoundError
from .models import ROLE_RANK, Membership, Role, Tenant
from .rls import request_scope, request_system_set, request_tenant_set, system_scope


def membership_for_request(request: Request) -> Membership:
    user = request.user
    if not user or not user.is_authenticated:
        from .errors import AuthenticationError

        raise AuthenticationError("Authentication credentials were not provided.")
    slug = request.headers.get("X-Tenant") or request.query_params.get("tenant")
    memberships = Membership.objects.select_related("tenant").filter(user=user)
    if slug:
        with system_scope("membership resolution"):  # the tenant is what we are finding out
            membership = memberships.filter(tenant__slug=slug).first()
        if membership is None:
            # Same answer whether the tenant exists or not: never confirm another tenant's existence.
            raise NotFoundError("No such tenant among your memberships.", code="tenant_not_found")
        return membership
    with system_scope("membership resolution"):
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

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # The tenant set in `initial` holds until the response is finalized, then the previous state returns
        # (also on exceptions, and when the view is called without the middleware).
        with request_scope():
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.perform_authentication(request)
        membership: Membership | None = None
        if request.user and request.user.is_authenticated:
            # Resolved before permissions and throttles, so that their queries (entitlements, plan gates)
            # already run in the tenant's scope; unauthenticated callers get the permission classes' 401.
            membership = membership_for_request(request)
            request_tenant_set(membership.tenant_id)
            request.tenant = membership.tenant  # type: ignore[attr-defined]
        super().initial(request, *args, **kwargs)  # authentication, permissions, throttles
        if membership is None:
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


class OperatorApi(APIView):
    """Base for staff-only endpoints that read across tenants (operator console, audit log of every tenant):
    IsAdminUser, and the system scope once the caller is known to be staff."""

    permission_classes = [IsAdminUser]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with request_scope():
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # 401/403 unless staff
        request_system_set("staff operator API")
