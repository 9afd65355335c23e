"""Report requests (plan gates, quota, audit) and rendering (data -> bytes -> private storage)."""

from __future__ import annotations

import logging
import secrets
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import send_mass_mail
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.services import Actor, audit_record
from billing.entitlements import Entitlements, entitlements_for, plan_required
from billing.usage import usage_increment
from coliseum.errors import ApplicationError, NotFoundError
from coliseum.models import Artist, Show, Tenant

from ..data import report_data
from ..models import Report, ReportFormat, ReportKind, ReportStatus, ScanStatus, Upload
from ..rendering import Branding, logo_data_uri, render_csv, render_json, render_pdf
from ..storage import private_storage
from .links import download_url, share_url

logger = logging.getLogger(__name__)

LOGO_TYPES = ("image/png", "image/jpeg")
USABLE_SCAN_STATUSES = (ScanStatus.CLEAN, ScanStatus.UNSCANNED)


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def reports_used_this_month(*, tenant: Tenant, now: datetime | None = None) -> int:
    """Reports counted against the monthly quota: this UTC calendar month's, except failed ones."""
    start = month_start(now or timezone.now())
    return (
        Report.objects.filter(tenant=tenant, created_at__gte=start)
        .exclude(status=ReportStatus.FAILED)
        .count()
    )


def _logo_check(*, tenant: Tenant, upload_id: int) -> Upload:
    upload = Upload.objects.filter(tenant=tenant, pk=upload_id).first()
    if upload is None:
        raise NotFoundError("No such upload.", code="upload_not_found")
    if upload.content_type not in LOGO_TYPES:
        raise ApplicationError("A logo must be a PNG or JPEG image.", code="invalid_logo")
    if upload.scan_status not in USABLE_SCAN_STATUSES:
        raise ApplicationError(
            f"This upload cannot be used: its virus scan is {upload.scan_status}.", code="upload_not_clean"
        )
    return upload


def report_options_check(
    *,
    tenant: Tenant,
    kind: str,
    artist_id: int | None,
    show_id: int | None,
    branding: dict[str, Any] | None,
    share: dict[str, Any] | None,
) -> Entitlements:
    """The plan gates and id checks shared by report requests and schedules (quota is checked per report)."""
    ent: Entitlements = entitlements_for(tenant)
    if branding and not ent.report_custom_branding:
        raise plan_required("Custom branding", lambda e: e.report_custom_branding)
    if share and share.get("one_time") and not ent.report_one_time_links:
        raise plan_required("One-time share links", lambda e: e.report_one_time_links)
    if kind == ReportKind.ARTIST:
        if artist_id is None or not Artist.objects.filter(tenant=tenant, pk=artist_id).exists():
            raise NotFoundError("No such artist.", code="artist_not_found")
    elif kind == ReportKind.SHOW:
        if show_id is None or not Show.objects.filter(tenant=tenant, pk=show_id).exists():
            raise NotFoundError("No such show.", code="show_not_found")
    if branding and branding.get("logo_upload_id") is not None:
        _logo_check(tenant=tenant, upload_id=int(branding["logo_upload_id"]))
    return ent


def report_request(
    *,
    tenant: Tenant,
    actor: Actor,
    kind: str,
    format: str,
    start_day: date,
    end_day: date,
    artist_id: int | None = None,
    show_id: int | None = None,
    title: str = "",
    branding: dict[str, Any] | None = None,
    share: dict[str, Any] | None = None,
    schedule_id: int | None = None,
    request: HttpRequest | None = None,
) -> Report:
    """Check the plan, the quota and every referenced id (through the tenant), record and queue a report."""
    ent = report_options_check(
        tenant=tenant, kind=kind, artist_id=artist_id, show_id=show_id, branding=branding, share=share
    )

    params: dict[str, Any] = {"from": start_day.isoformat(), "to": end_day.isoformat(), "title": title}
    if artist_id is not None and kind == ReportKind.ARTIST:
        params["artist_id"] = artist_id
    if show_id is not None and kind == ReportKind.SHOW:
        params["show_id"] = show_id
    if branding:
        params["branding"] = {k: v for k, v in branding.items() if v is not None}

    with transaction.atomic():
        # Serialise quota checks per tenant: two concurrent requests cannot both take the last slot.
        Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
        limit = ent.reports_per_month
        if limit is not None:
            used = reports_used_this_month(tenant=tenant)
            if used >= limit:
                raise plan_required(
                    f"More than {limit} reports a month ({used} made this month)",
                    lambda e: e.reports_per_month is None or e.reports_per_month > limit,
                    used=used,
                    limit=limit,
                )
        report = Report.objects.create(
            tenant=tenant,
            requested_by=actor if getattr(actor, "is_authenticated", False) else None,  # type: ignore[misc]
            schedule_id=schedule_id,
            kind=kind,
            format=format,
            params=params,
            watermark=ent.report_watermark,
            share_expires_in=min(
                int(share.get("expires_in") or settings.REPORTS_SHARE_DEFAULT_SECONDS),
                settings.REPORTS_SHARE_MAX_SECONDS,
            )
            if share
            else None,
            share_one_time=bool(share and share.get("one_time")),
        )
        audit_record(
            action="report.created",
            actor=actor,
            tenant=tenant,
            target=report,
            request=request,
            details={"kind": kind, "format": format, "from": params["from"], "to": params["to"]},
        )
        transaction.on_commit(lambda: _enqueue(report.pk))
        transaction.on_commit(lambda: _usage_count(tenant.pk))
    return report


def _usage_count(tenant_id: int) -> None:
    """The subscription page's "reports this month" (billing's Redis usage counter)."""
    try:
        usage_increment(tenant_id=tenant_id, kind="reports")
    except Exception:  # Redis down: the quota itself is counted from the database, only the display lags
        logger.warning("report usage not counted: redis unavailable")


def _enqueue(report_id: int) -> None:
    from ..tasks import REPORTS_QUEUE, report_render

    try:
        report_render.apply_async(args=(report_id,), queue=REPORTS_QUEUE)
    except Exception:  # broker unreachable: the report stays queued and report_stale_requeue sends it again
        logger.exception("report not queued; the requeue job will retry", extra={"report_id": report_id})


def report_stale_requeue(*, now: datetime | None = None) -> int:
    """Send again reports left queued > 10 min (broker was down) or rendering > 30 min (worker lost and the
    message with it). Rendering is idempotent, so a duplicate delivery is harmless."""
    now = now or timezone.now()
    stale = Report.objects.filter(
        status=ReportStatus.QUEUED, created_at__lt=now - timedelta(minutes=10)
    ) | Report.objects.filter(status=ReportStatus.RENDERING, started_at__lt=now - timedelta(minutes=30))
    ids = list(stale.values_list("pk", flat=True)[:500])
    for report_id in ids:
        _enqueue(report_id)
    return len(ids)


def _branding_for(report: Report) -> Branding:
    params = report.params or {}
    wanted = params.get("branding") or {}
    branding = Branding(watermark=report.watermark)
    # Branding was checked against the plan at request time; a Basic report never carries it.
    if wanted and not report.watermark:
        if wanted.get("primary_color"):
            branding.primary_color = str(wanted["primary_color"])
        upload_id = wanted.get("logo_upload_id")
        if upload_id is not None:
            upload = _logo_check(tenant=report.tenant, upload_id=int(upload_id))
            with private_storage().open(upload.file_name, "rb") as handle:
                branding.logo_data_uri = logo_data_uri(upload.content_type, handle.read())
    return branding


def report_render_run(*, report_id: int) -> Report:
    """Render one report and store it. Idempotent: a ready report is left alone. Transient errors
    (database, storage) propagate for the task to retry; ApplicationError means the report cannot be made."""
    report = Report.objects.select_related("tenant", "schedule").get(pk=report_id)
    if report.status == ReportStatus.READY:
        return report
    now = timezone.now()
    report.status = ReportStatus.RENDERING
    report.attempts += 1
    report.started_at = report.started_at or now
    if report.share_expires_in and report.share_expires_at is None:
        # The link's lifetime starts at the first render (the link is printed in the PDF as a QR code).
        report.share_expires_at = now + timedelta(seconds=report.share_expires_in)
    report.save(update_fields=["status", "attempts", "started_at", "share_expires_at"])

    data = report_data(tenant=report.tenant, kind=report.kind, params=report.params or {})
    data["report_id"] = report.pk
    if report.format == ReportFormat.PDF:
        branding = _branding_for(report)
        # The QR code is for phones: only a share link opens there (the download URL needs a login).
        branding.qr_url = share_url(report=report) or ""
        content = render_pdf(data, branding)
    elif report.format == ReportFormat.JSON:
        content = render_json(data)
    else:
        content = render_csv(data)

    name = f"reports/{report.tenant_id}/{report.pk}-{secrets.token_hex(8)}.{report.format}"
    stored = private_storage().save(name, ContentFile(content))
    report.file_name = stored
    report.file_size = len(content)
    report.status = ReportStatus.READY
    report.reason = ""
    report.finished_at = timezone.now()
    report.save(update_fields=["file_name", "file_size", "status", "reason", "finished_at"])
    if report.schedule_id:
        report_schedule_notify(report=report)
    return report


def report_fail(*, report_id: int, reason: str) -> None:
    Report.objects.filter(pk=report_id).exclude(status=ReportStatus.READY).update(
        status=ReportStatus.FAILED, reason=reason[:500], finished_at=timezone.now()
    )


def report_retry_note(*, report_id: int, reason: str) -> None:
    Report.objects.filter(pk=report_id, status=ReportStatus.RENDERING).update(reason=reason[:500])


def report_schedule_notify(*, report: Report) -> int:
    """Email the share link of a scheduled report to the schedule's recipients. Never fails the report."""
    schedule = report.schedule
    if schedule is None:
        return 0
    emails = sorted(
        {
            m.user.email
            for m in schedule.recipients.select_related("user").filter(tenant=report.tenant)
            if m.user.email
        }
    )
    if not emails:
        return 0
    link = share_url(report=report) or download_url(report=report)
    subject = f"Your {schedule.get_frequency_display().lower()} Coliseum {report.kind} report"
    body = (
        f"The {report.kind} report for {report.params.get('from')} to {report.params.get('to')} is ready.\n\n"
        f"{link}\n\n"
        + (
            f"The link expires at {report.share_expires_at:%Y-%m-%d %H:%M} UTC.\n"
            if report.share_expires_at
            else ""
        )
    )
    try:
        # One message per recipient: members do not see each other's addresses.
        return send_mass_mail([(subject, body, settings.REPORTS_FROM_EMAIL, [email]) for email in emails])
    except Exception:  # mail is best effort: the report is ready and listed in the API either way
        logger.exception("report email failed", extra={"report_id": report.pk})
        return 0


def report_rerender(*, report: Report, actor: Actor, request: HttpRequest | None = None) -> Report:
    """Render a finished (ready or failed) report again: back to queued with the reason cleared, the render
    task sent once the change commits, audited `report.rerendered`. The previous file is deleted after the
    commit (a queued report cannot be downloaded). Does not count against the plan's monthly quota (an
    operator's repair, not a new report). A report already queued or rendering is refused (409)."""
    with transaction.atomic():
        locked = Report.objects.select_for_update().get(pk=report.pk)
        if locked.status not in (ReportStatus.READY, ReportStatus.FAILED):
            raise ApplicationError(
                f"Report {locked.pk} is {locked.status}; only a ready or failed report can be re-rendered.",
                code="conflict",
                status_code=409,
                details={"status": locked.status},
            )
        old_file = locked.file_name
        locked.status = ReportStatus.QUEUED
        locked.reason = ""
        locked.attempts = 0
        locked.file_name = ""
        locked.file_size = None
        locked.started_at = None
        locked.finished_at = None
        locked.save(
            update_fields=[
                "status", "reason", "attempts", "file_name", "file_size", "started_at", "finished_at"
            ]
        )  # fmt: skip
        audit_record(
            action="report.rerendered",
            actor=actor,
            tenant=locked.tenant,
            target=locked,
            request=request,
            details={"kind": locked.kind, "format": locked.format},
        )
        report_id = locked.pk
        if old_file:
            transaction.on_commit(lambda: _file_delete(old_file))
        transaction.on_commit(lambda: _enqueue(report_id))
    return locked


def _file_delete(name: str) -> None:
    try:
        private_storage().delete(name)
    except Exception:  # storage hiccup: an orphaned file is harmless, the report no longer points at it
        logger.warning("old report file not deleted")
