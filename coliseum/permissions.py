"""Role-based permission classes for tenant-scoped DRF views.

TenantApi already checks its `min_role`; these classes are for views that compose permissions explicitly
(`permission_classes = [IsAuthenticated, IsTenantAdmin]`) and for other apps that build on them."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .errors import ForbiddenError
from .models import ROLE_RANK, Role
from .tenancy import membership_for_request


class HasTenantRole(BasePermission):
    """Allows the caller when their role in the requested tenant is at least `min_role`. Raises the domain
    errors (404 for a tenant the caller does not belong to, 403 role_required) so the envelope says why."""

    min_role: str = Role.VIEWER

    def has_permission(self, request: Request, view: Any) -> bool:
        membership = membership_for_request(request)
        if ROLE_RANK[membership.role] < ROLE_RANK[self.min_role]:
            raise ForbiddenError(
                f"This needs the {self.min_role} role or higher; you are {membership.role}.",
                code="role_required",
                details={"required_role": self.min_role, "your_role": membership.role},
            )
        return True


class IsTenantViewer(HasTenantRole):
    min_role = Role.VIEWER


class IsTenantAnalyst(HasTenantRole):
    min_role = Role.ANALYST


class IsTenantAdmin(HasTenantRole):
    min_role = Role.ADMIN


class IsTenantOwner(HasTenantRole):
    min_role = Role.OWNER
