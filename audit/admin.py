"""The audit log in the admin (read-only, searchable) and the base that audits every admin change.

Every add, change and delete made in the Django admin writes an AuditEntry ("admin.add", "admin.change",
"admin.delete") in the same transaction as the change (the admin wraps each save/delete view in one).
Every app's ModelAdmin should derive from AuditedModelAdmin; as a safety net AuditConfig.ready() gives the
same behaviour to any ModelAdmin registered on admin.site without it (django.contrib.auth's, dj-stripe's),
and the system check audit.W001 warns about any left over."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import admin
from django.db import models, router, transaction
from django.http import HttpRequest

from coliseum.models import Tenant

from .models import AuditEntry
from .services import audit_record


def _tenant_of(obj: models.Model) -> Tenant | None:
    if isinstance(obj, Tenant):
        return obj
    tenant = getattr(obj, "tenant", None) if hasattr(obj, "tenant_id") else None
    return tenant if isinstance(tenant, Tenant) else None


class AuditedAdminMixin:
    """Overrides the three hooks Django's admin calls for every add, change and delete."""

    def _audit(self, request: HttpRequest, obj: models.Model, verb: str, message: Any = "") -> None:
        if isinstance(obj, AuditEntry):
            return
        tenant = _tenant_of(obj)
        audit_record(
            action=f"admin.{verb}",
            request=request,
            tenant=tenant if tenant is not None and tenant.pk is not None else None,
            target=obj,
            # The admin's change message names changed fields, never their values; no str(obj) either (a
            # user's repr is their username, which may be an email address): the target id identifies it.
            details={"model": obj._meta.label_lower, "message": message},
        )

    def log_addition(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        result = super().log_addition(request, obj, message)  # type: ignore[misc]
        self._audit(request, obj, "add", message)
        return result

    def log_change(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        result = super().log_change(request, obj, message)  # type: ignore[misc]
        self._audit(request, obj, "change", message)
        return result

    def response_action(self, request: HttpRequest, queryset: Any) -> Any:
        # The bulk "delete selected" action logs before it deletes and Django does not wrap the two in a
        # transaction; doing it here keeps the audit row and the change together, for every admin action.
        with transaction.atomic(using=router.db_for_write(self.model)):  # type: ignore[attr-defined]
            return super().response_action(request, queryset)  # type: ignore[misc]

    def log_deletions(self, request: HttpRequest, queryset: Iterable[models.Model]) -> Any:
        objects = list(queryset)  # called before the delete: capture the rows now
        result = super().log_deletions(request, objects)  # type: ignore[misc]
        for obj in objects:
            self._audit(request, obj, "delete")
        return result


class AuditedModelAdmin(AuditedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """The base for every app's ModelAdmin."""


class ReadOnlyAdminMixin:
    """For records the console shows but never edits (logs, runs, requests): no add, change or delete."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def admin_site_audit_all(site: admin.AdminSite) -> list[str]:
    """Give AuditedAdminMixin to every ModelAdmin registered on `site` that lacks it; returns their
    model labels. Each instance gets a subclass of its own class, so its behaviour is otherwise unchanged."""
    upgraded: list[str] = []
    for model, model_admin in site._registry.items():
        if not isinstance(model_admin, AuditedAdminMixin):
            cls = type(model_admin)
            model_admin.__class__ = type(f"Audited{cls.__name__}", (AuditedAdminMixin, cls), {})
            upgraded.append(model._meta.label_lower)
    return upgraded


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "at",
        "action",
        "actor_type",
        "actor_label",
        "tenant_id",
        "target_type",
        "target_id",
        "ip",
    )
    list_filter = ("actor_type", "at")
    search_fields = ("action", "actor_label", "target_type", "target_id", "request_id", "ip")
    date_hierarchy = "at"
    ordering = ("-at", "-id")
    show_full_result_count = False  # counting a large log on every page view is slow
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
