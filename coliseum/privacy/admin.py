"""Retention policies (editable, with the legal hold), retention runs and data-subject requests (read-only
views)."""

from __future__ import annotations

from django.contrib import admin

from audit.admin import AuditedModelAdmin, ReadOnlyAdminMixin

from .models import PrivacyRequest, RetentionPolicy, RetentionRun


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(AuditedModelAdmin):
    list_display = ("tenant", "hot_months", "total_months", "legal_hold", "updated_at")
    list_filter = ("legal_hold",)
    search_fields = ("tenant__slug", "tenant__name")
    autocomplete_fields = ()
    raw_id_fields = ("tenant",)


@admin.register(RetentionRun)
class RetentionRunAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("started_at", "dry_run", "backend", "moved_count", "dropped_count", "held_count")
    list_filter = ("dry_run", "backend")
    readonly_fields = [f.name for f in RetentionRun._meta.fields]

    @admin.display(description="moved")
    def moved_count(self, obj: RetentionRun) -> int:
        return len(obj.moved)

    @admin.display(description="dropped")
    def dropped_count(self, obj: RetentionRun) -> int:
        return len(obj.dropped)

    @admin.display(description="held")
    def held_count(self, obj: RetentionRun) -> int:
        return len(obj.held)


@admin.register(PrivacyRequest)
class PrivacyRequestAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("id", "tenant", "kind", "status", "created_at", "finished_at")
    list_filter = ("kind", "status")
    # subject_encrypted is never shown, even encrypted.
    fields = (
        "id",
        "tenant",
        "kind",
        "status",
        "subject_digest",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
        "file_size",
        "link_expires_at",
        "result",
        "error",
    )
    readonly_fields = fields
