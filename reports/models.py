"""Report requests, their rendered files, scheduled reports and private uploads (logos, later OCR intake).

Files live in the private storage (reports.storage); rows keep only the storage name, never a public URL."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from coliseum.models import Membership, Tenant


class ReportKind(models.TextChoices):
    ARTIST = "artist", "Artist"
    SHOW = "show", "Show"
    TENANT = "tenant", "Tenant"


class ReportFormat(models.TextChoices):
    PDF = "pdf", "PDF"
    JSON = "json", "JSON"
    CSV = "csv", "CSV"


class ReportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RENDERING = "rendering", "Rendering"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Frequency(models.TextChoices):
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"


class ReportSchedule(models.Model):
    """A report rendered again every week or month over the period just ended; recipients get the share
    link by email."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="report_schedules")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=ReportKind.choices)
    format = models.CharField(max_length=10, choices=ReportFormat.choices)
    frequency = models.CharField(max_length=10, choices=Frequency.choices)
    # artist_id / show_id / title / branding / share, as in a report request (no from/to: derived per run).
    params = models.JSONField(default=dict, blank=True)
    recipients = models.ManyToManyField(Membership, related_name="report_schedules", blank=True)
    next_run_at = models.DateTimeField(db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.frequency} {self.kind} {self.format} for {self.tenant_id}"


class Report(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="reports")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    schedule = models.ForeignKey(
        ReportSchedule, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    kind = models.CharField(max_length=10, choices=ReportKind.choices)
    format = models.CharField(max_length=10, choices=ReportFormat.choices)
    # The validated request: artist_id, show_id, from, to (ISO dates), title, branding.
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10, choices=ReportStatus.choices, default=ReportStatus.QUEUED, db_index=True
    )
    reason = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Watermark decided at request time from the plan then in force (a later upgrade does not un-mark it).
    watermark = models.BooleanField(default=False)
    file_name = models.CharField(max_length=300, blank=True)
    file_size = models.PositiveIntegerField(null=True, blank=True)
    # Share link: the token is derived (signed) from the pk and the expiry, so nothing secret is stored.
    share_expires_in = models.PositiveIntegerField(null=True, blank=True)
    share_one_time = models.BooleanField(default=False)
    share_expires_at = models.DateTimeField(null=True, blank=True)
    share_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="report_tenant_created")]

    def __str__(self) -> str:
        return f"report {self.pk} ({self.kind}/{self.format}, {self.status})"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def download_filename(self) -> str:
        params: dict[str, Any] = self.params or {}
        return f"coliseum-{self.kind}-report-{params.get('from', '')}-{params.get('to', '')}.{self.format}"


CONTENT_TYPES: dict[str, str] = {
    ReportFormat.PDF: "application/pdf",
    ReportFormat.JSON: "application/json",
    ReportFormat.CSV: "text/csv; charset=utf-8",
}


class UploadPurpose(models.TextChoices):
    LOGO = "logo", "Report logo"
    DOCUMENT = "document", "Document (OCR intake)"


class ScanStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CLEAN = "clean", "Clean"
    INFECTED = "infected", "Infected"
    UNSCANNED = "unscanned", "Unscanned (no scanner configured)"


class Upload(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="uploads")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    purpose = models.CharField(max_length=10, choices=UploadPurpose.choices, default=UploadPurpose.LOGO)
    content_type = models.CharField(max_length=50)  # detected from the bytes, never from the client
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    file_name = models.CharField(max_length=300)
    scan_status = models.CharField(max_length=10, choices=ScanStatus.choices, default=ScanStatus.PENDING)
    scan_detail = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"upload {self.pk} ({self.content_type}, {self.scan_status})"
