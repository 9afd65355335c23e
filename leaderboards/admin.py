"""The operator console's view of leaderboards: tenants, each with an action that rebuilds its boards."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.admin import AuditedModelAdmin, ReadOnlyAdminMixin

from .models import TenantBoards
from .services import boards_rebuild_tenant


@admin.register(TenantBoards)
class TenantBoardsAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("slug", "name", "plan", "reporting_currency")
    search_fields = ("slug", "name")
    ordering = ("slug",)
    actions = ("rebuild_boards",)
    fields = ("slug", "name", "plan", "reporting_currency")
    readonly_fields = fields

    def has_rebuild_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("leaderboards.change_tenantboards"))

    @admin.action(description="Rebuild leaderboards from the rollups", permissions=["rebuild"])
    def rebuild_boards(self, request: HttpRequest, queryset: QuerySet[TenantBoards]) -> None:
        total = 0
        tenants = list(queryset)
        for tenant in tenants:
            total += boards_rebuild_tenant(tenant=tenant, actor=request.user)
        self.message_user(
            request,
            f"Rebuilt {total} board families of {len(tenants)} tenant(s) from the rollups.",
            messages.SUCCESS,
        )
