"""Retention policies (editable, with the legal hold), retention runs and data-subject requests (read-only
views; a failed request shows its reason and can be retried); recovery-code devices (codes issued by an
action, shown once, stored as digests)."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django_otp.plugins.otp_static.models import StaticDevice

from audit.admin import AuditedModelAdmin, ReadOnlyAdminMixin
from audit.services import audit_record
from coliseum.errors import ApplicationError
from coliseum.mfa import RECOVERY_CODE_COUNT, recovery_codes_add

from .models import PrivacyRequest, RetentionPolicy, RetentionRun
from .services import privacy_request_retry


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
    """Requests are read-only here; a failed one shows its reason and can be retried (the Retry action)."""

    list_display = ("id", "tenant", "kind", "status", "error", "created_at", "finished_at")
    list_filter = ("kind", "status")
    list_select_related = ("tenant",)
    actions = ("retry",)
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
        "boards_corrected_at",
    )
    readonly_fields = fields

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("privacy.change_privacyrequest"))

    def get_urls(self) -> list[URLPattern]:
        retry = path(
            "<uuid:object_id>/retry/",
            self.admin_site.admin_view(self.retry_view),
            name="privacy_privacyrequest_retry",
        )
        return [retry, *super().get_urls()]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra = {**(extra_context or {}), "can_retry": self.has_retry_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def retry_view(self, request: HttpRequest, object_id: uuid.UUID) -> HttpResponse:
        """The detail page's Retry button (POST): the same service as the list's action."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_retry_permission(request):
            raise PermissionDenied
        privacy_request = self.get_object(request, str(object_id))
        if privacy_request is None:
            raise Http404("No such request.")
        self.retry(request, PrivacyRequest.objects.filter(pk=privacy_request.pk))
        return redirect("admin:privacy_privacyrequest_change", privacy_request.pk)

    @admin.action(description="Retry the selected failed requests", permissions=["retry"])
    def retry(self, request: HttpRequest, queryset: QuerySet[PrivacyRequest]) -> None:
        done, refused = 0, []
        for privacy_request in queryset:
            try:
                privacy_request_retry(privacy_request=privacy_request, actor=request.user, request=request)
                done += 1
            except ApplicationError as error:
                refused.append(error.message)
        if done:
            self.message_user(request, f"{done} request(s) queued to run again.", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.WARNING)


@admin.register(StaticDevice)
class RecoveryCodeDeviceAdmin(AuditedModelAdmin):
    """Registered before django-otp's own StaticDevice admin (this app comes first in INSTALLED_APPS), which
    showed and took the codes in clear in an inline. Here no code is ever shown or typed: the action replaces
    a device's codes with new ones and shows them once, on a page that is not cached."""

    list_display = ("user", "name", "confirmed", "codes_left", "last_used_at")
    list_filter = ("confirmed",)
    search_fields = ("user__username",)
    raw_id_fields = ("user",)
    fields = ("user", "name", "confirmed", "codes_left", "created_at", "last_used_at")
    readonly_fields = ("codes_left", "created_at", "last_used_at")
    actions = ["issue_codes"]

    @admin.display(description="codes left")
    def codes_left(self, obj: StaticDevice) -> int:
        return obj.token_set.count() if obj.pk else 0

    @admin.action(description=f"Issue {RECOVERY_CODE_COUNT} new recovery codes (replaces the old ones)")
    def issue_codes(self, request: HttpRequest, queryset: QuerySet[StaticDevice]) -> TemplateResponse:
        issued: list[dict[str, Any]] = []
        for device in queryset.select_related("user"):
            device.token_set.all().delete()
            issued.append({"device": device, "codes": recovery_codes_add(device, RECOVERY_CODE_COUNT)})
            audit_record(
                action="auth.recovery_codes_issued",
                request=request,
                target=device.user,
                details={"count": RECOVERY_CODE_COUNT},
            )
        response = TemplateResponse(
            request,
            "admin/recovery_codes.html",
            {**self.admin_site.each_context(request), "title": "New recovery codes", "issued": issued},
        )
        response["Cache-Control"] = "no-store"
        return response
