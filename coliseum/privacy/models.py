"""Data-subject requests (export, erasure), per-tenant retention policies and the record of retention runs."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from coliseum.models import Tenant


class RequestKind(models.TextChoices):
    EXPORT = "export"
    ERASURE = "erasure"


class RequestStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class PrivacyRequest(models.Model):
    """One export or erasure request. The data subject's user id is never stored in clear: `subject_digest` is
    a keyed hash (to match requests about one person) and `subject_encrypted` holds it, encrypted, only until
    the job has run (then it is emptied)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=RequestKind.choices)
    status = models.CharField(max_length=10, choices=RequestStatus.choices, default=RequestStatus.PENDING)
    subject_digest = models.CharField(max_length=64, db_index=True)
    subject_encrypted = models.TextField(blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    file_name = models.CharField(max_length=300, blank=True, default="")  # export: path in private storage
    file_size = models.BigIntegerField(null=True, blank=True)
    link_expires_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)  # counts only, never data
    # Why the job failed, in words an operator acts on (never the subject's id); emptied by a retry.
    error = models.CharField("reason", max_length=300, blank=True, default="")
    # Erasure: when the tenant's boards were corrected, after the commit. Empty on a completed erasure means
    # the correction has not happened yet (Redis failed right after the commit): the sweep does it.
    boards_corrected_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "kind", "-created_at"], name="privacy_req_tenant_kind")]

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


class RetentionPolicy(models.Model):
    """How long a tenant's raw events are kept hot and in all. Tenants without a row get the defaults."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="retention_policy")
    hot_months = models.PositiveIntegerField(default=24)
    total_months = models.PositiveIntegerField(default=36)
    legal_hold = models.BooleanField(
        default=False, help_text="Pauses the purge of this tenant's raw events (archiving continues)."
    )
    legal_hold_reason = models.CharField(max_length=300, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "retention policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(hot_months__gte=1) & models.Q(total_months__gte=models.F("hot_months")),
                name="privacy_retention_windows_ordered",
            )
        ]

    def __str__(self) -> str:
        return f"retention of {self.tenant_id}"


class RetentionRun(models.Model):
    """What one retention run moved to the archive and dropped (or, in a dry run, would have)."""

    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    dry_run = models.BooleanField(default=False)
    backend = models.CharField(max_length=20, default="partitions")  # partitions | timescaledb
    hot_cutoff = models.DateTimeField(null=True, blank=True)
    total_cutoff = models.DateTimeField(null=True, blank=True)
    moved = models.JSONField(default=list, blank=True)  # [{"partition", "rows"}]
    dropped = models.JSONField(default=list, blank=True)  # [{"partition", "rows"}]
    held = models.JSONField(default=list, blank=True)  # [{"partition", "tenants"}] kept by legal holds
    notes = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"retention run {self.pk}{' (dry run)' if self.dry_run else ''}"
