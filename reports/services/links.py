"""Signed share links `/r/<token>` and the authenticated download URL.

The token is a `django.core.signing.Signer` signature over {report id, expiry}, with no signing time in it:
it is derived, so nothing secret is stored and the same report always yields the same link (the API, the
e-mail and the PDF's QR code agree, whenever each was made). Links issued before, signed with a timestamp
by `signing.dumps`, are still read. A tampered token fails the signature (404); a valid one past
its expiry answers 410; a one-time link is claimed with one conditional UPDATE (`... WHERE share_used_at IS
NULL`), so of two concurrent downloads exactly one wins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from audit.services import Actor, audit_record
from coliseum.errors import ApplicationError, NotFoundError
from coliseum.rls import system_scope, tenant_scope

from ..models import Report, ReportStatus

SHARE_SALT = "coliseum.reports.share"


class LinkExpiredError(ApplicationError):
    status_code = 410
    code = "link_expired"


class LinkUsedError(ApplicationError):
    status_code = 410
    code = "link_used"


def share_token(*, report: Report) -> str | None:
    if report.share_expires_at is None:
        return None
    payload = {"r": report.pk, "e": int(report.share_expires_at.timestamp())}
    return signing.Signer(salt=SHARE_SALT).sign_object(payload)


def _share_payload(token: str) -> Any:
    if token.count(":") == 2:
        # A link issued before links were deterministic: `signing.dumps` wrote payload:time:signature.
        return signing.loads(token, salt=SHARE_SALT)
    return signing.Signer(salt=SHARE_SALT).unsign_object(token)


def share_url(*, report: Report) -> str | None:
    token = share_token(report=report)
    if token is None:
        return None
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("report-share", kwargs={"token": token})


def download_url(*, report: Report) -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("report-download", kwargs={"report_id": report.pk})


@dataclass(frozen=True)
class ShareClaim:
    report: Report


def share_link_use(*, token: str, request: HttpRequest, now: datetime | None = None) -> ShareClaim:
    """Validate a share token and claim one use of it (audited). Raises NotFound / LinkExpired / LinkUsed."""
    try:
        payload = _share_payload(token)
        report_id, expires_ts = int(payload["r"]), int(payload["e"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise NotFoundError("No such link.") from exc
    with system_scope("signed share link: the report names its tenant"):
        report = (
            Report.objects.select_related("tenant").filter(pk=report_id, status=ReportStatus.READY).first()
        )
    # A link is only valid for the expiry currently on the report (re-issuing a link invalidates the old one).
    if (
        report is None
        or report.share_expires_at is None
        or int(report.share_expires_at.timestamp()) != expires_ts
    ):
        raise NotFoundError("No such link.")
    now = now or timezone.now()
    if now.timestamp() >= expires_ts:
        raise LinkExpiredError("This link has expired.")
    with tenant_scope(report.tenant_id), transaction.atomic():
        if report.share_one_time:
            claimed = Report.objects.filter(pk=report.pk, share_used_at__isnull=True).update(
                share_used_at=now
            )
            if not claimed:
                raise LinkUsedError("This one-time link has already been used.")
        audit_record(
            action="report.share_link_used",
            actor=None,
            tenant=report.tenant,
            target=report,
            request=request,
            details={"one_time": report.share_one_time},
        )
    return ShareClaim(report=report)


def report_download_record(*, report: Report, actor: Actor, request: HttpRequest) -> None:
    audit_record(
        action="report.downloaded",
        actor=actor,
        tenant=report.tenant,
        target=report,
        request=request,
        details={},
    )
