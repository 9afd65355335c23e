"""Operator views of reports, schedules and uploads (read-mostly: files and tokens are never shown)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from coliseum.errors import ApplicationError

from .models import Report, ReportSchedule, Upload
from .services.reports import report_rerender


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ("id", "tenant", "kind", "format", "status", "attempts", "watermark", "created_at")
    list_filter = ("status", "kind", "format", "watermark")
    search_fields = ("tenant__slug",)
    readonly_fields = (
        "tenant", "requested_by", "schedule", "kind", "format", "params", "status", "reason", "attempts",
        "watermark", "file_name", "file_size", "share_expires_in", "share_one_time", "share_expires_at",
        "share_used_at", "created_at", "started_at", "finished_at",
    )  # fmt: skip
    list_select_related = ("tenant",)
    actions = ("rerender",)

    def has_rerender_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("reports.change_report"))

    @admin.action(description="Re-render the selected reports", permissions=["rerender"])
    def rerender(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        done, refused = 0, []
        for report in queryset.select_related("tenant"):
            try:
                report_rerender(report=report, actor=request.user, request=request)
                done += 1
            except ApplicationError as error:
                refused.append(error.message)
        if done:
            self.message_user(request, f"{done} report(s) queued for rendering again.", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.WARNING)


@admin.register(ReportSchedule)
class ReportScheduleAdmin(admin.ModelAdmin):
    list_display = ("id", "tenant", "kind", "format", "frequency", "next_run_at", "last_run_at", "active")
    list_filter = ("frequency", "kind", "active")
    search_fields = ("tenant__slug",)
    readonly_fields = ("last_run_at", "last_error", "created_at")
    list_select_related = ("tenant",)


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ("id", "tenant", "purpose", "content_type", "size", "scan_status", "created_at")
    list_filter = ("purpose", "content_type", "scan_status")
    search_fields = ("tenant__slug", "sha256")
    readonly_fields = (
        "tenant", "uploaded_by", "purpose", "content_type", "size", "sha256", "file_name", "scan_status",
        "scan_detail", "created_at",
    )  # fmt: skip
    list_select_related = ("tenant",)
