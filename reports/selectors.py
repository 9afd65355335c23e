"""Reads of the reports app, always through the caller's tenant (another tenant's id is simply not found)."""

from __future__ import annotations

from django.db.models import QuerySet

from coliseum.errors import NotFoundError
from coliseum.models import Tenant

from .models import Report, ReportSchedule, Upload


def report_list(*, tenant: Tenant) -> QuerySet[Report]:
    return Report.objects.filter(tenant=tenant).order_by("-created_at", "-id")


def report_get(*, tenant: Tenant, report_id: int) -> Report:
    report = Report.objects.filter(tenant=tenant, pk=report_id).select_related("tenant").first()
    if report is None:
        raise NotFoundError("No such report.")
    return report


def upload_get(*, tenant: Tenant, upload_id: int) -> Upload:
    upload = Upload.objects.filter(tenant=tenant, pk=upload_id).first()
    if upload is None:
        raise NotFoundError("No such upload.")
    return upload


def report_schedule_list(*, tenant: Tenant) -> QuerySet[ReportSchedule]:
    return ReportSchedule.objects.filter(tenant=tenant).prefetch_related("recipients").order_by("-created_at")
