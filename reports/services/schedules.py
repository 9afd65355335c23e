"""Scheduled reports: weekly (the previous 7 days) or monthly (the previous calendar month), in the
tenant's time zone. The beat job claims due schedules with SKIP LOCKED: two beat workers never double-run."""

from __future__ import annotations

import logging
import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import Actor, audit_record
from coliseum.errors import ApplicationError, NotFoundError
from coliseum.models import Membership, Tenant

from ..models import Frequency, ReportSchedule
from .reports import report_options_check, report_request

logger = logging.getLogger(__name__)


def _local_today(tenant: Tenant, now: datetime) -> date:
    return now.astimezone(zoneinfo.ZoneInfo(tenant.timezone or "UTC")).date()


def schedule_period(*, frequency: str, today: date) -> tuple[date, date]:
    """The complete period that ended before `today`."""
    if frequency == Frequency.WEEKLY:
        return today - timedelta(days=7), today - timedelta(days=1)
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def next_run_after(*, tenant: Tenant, frequency: str, now: datetime) -> datetime:
    """Weekly: next Monday 06:00 local; monthly: the 1st of next month 06:00 local."""
    tz = zoneinfo.ZoneInfo(tenant.timezone or "UTC")
    today = _local_today(tenant, now)
    if frequency == Frequency.WEEKLY:
        day = today + timedelta(days=7 - today.weekday())
    else:
        day = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    return datetime.combine(day, time(6, 0), tzinfo=tz)


def report_schedule_create(
    *,
    tenant: Tenant,
    actor: Actor,
    kind: str,
    format: str,
    frequency: str,
    params: dict[str, Any],
    recipient_user_ids: list[int],
    request: Any = None,
) -> ReportSchedule:
    # Refuse now what every run would refuse (plan gates, other tenants' ids) rather than fail weekly.
    report_options_check(
        tenant=tenant,
        kind=kind,
        artist_id=params.get("artist_id"),
        show_id=params.get("show_id"),
        branding=params.get("branding"),
        share=params.get("share"),
    )
    members = list(Membership.objects.filter(tenant=tenant, user_id__in=recipient_user_ids))
    if len(members) != len(set(recipient_user_ids)):
        raise NotFoundError("Every recipient must be a member of this tenant.", code="recipient_not_found")
    with transaction.atomic():
        schedule = ReportSchedule.objects.create(
            tenant=tenant,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,  # type: ignore[misc]
            kind=kind,
            format=format,
            frequency=frequency,
            params=params,
            next_run_at=next_run_after(tenant=tenant, frequency=frequency, now=timezone.now()),
        )
        schedule.recipients.set(members)
        audit_record(
            action="report_schedule.created",
            actor=actor,
            tenant=tenant,
            target=schedule,
            request=request,
            details={"kind": kind, "format": format, "frequency": frequency},
        )
    return schedule


def report_schedule_delete(*, tenant: Tenant, schedule_id: int, actor: Actor, request: Any = None) -> None:
    with transaction.atomic():
        schedule = ReportSchedule.objects.filter(tenant=tenant, pk=schedule_id).first()
        if schedule is None:
            raise NotFoundError("No such schedule.")
        audit_record(
            action="report_schedule.deleted", actor=actor, tenant=tenant, target=schedule, request=request
        )
        schedule.delete()


def report_schedules_run_due(*, now: datetime | None = None, limit: int = 100) -> int:
    """Request a report for every due schedule and move it to its next run. Returns the reports requested."""
    now = now or timezone.now()
    requested = 0
    while True:
        with transaction.atomic():
            schedule = (
                ReportSchedule.objects.select_for_update(skip_locked=True)
                .select_related("tenant")
                .filter(active=True, next_run_at__lte=now)
                .order_by("next_run_at")
                .first()
            )
            if schedule is None or requested >= limit:
                return requested
            tenant = schedule.tenant
            start_day, end_day = schedule_period(
                frequency=schedule.frequency, today=_local_today(tenant, now)
            )
            params = schedule.params or {}
            schedule.last_run_at = now
            schedule.next_run_at = next_run_after(tenant=tenant, frequency=schedule.frequency, now=now)
            try:
                with transaction.atomic():
                    report_request(
                        tenant=tenant,
                        actor="system",
                        kind=schedule.kind,
                        format=schedule.format,
                        start_day=start_day,
                        end_day=end_day,
                        artist_id=params.get("artist_id"),
                        show_id=params.get("show_id"),
                        title=params.get("title") or "",
                        branding=params.get("branding") or None,
                        # Recipients get a share link, so a scheduled report always has one.
                        share=params.get("share") or {"expires_in": None, "one_time": False},
                        schedule_id=schedule.pk,
                    )
                schedule.last_error = ""
                requested += 1
            except ApplicationError as exc:  # quota reached, plan downgraded, artist deleted...
                schedule.last_error = exc.message[:500]
                logger.info("scheduled report skipped", extra={"schedule_id": schedule.pk, "code": exc.code})
            schedule.save(update_fields=["last_run_at", "next_run_at", "last_error"])
