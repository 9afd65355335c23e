"""Writes of the privacy app: data-subject requests (export, erasure) and their jobs.

Retention lives in services_retention.py and backups in backups.py (re-exported below)."""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import timedelta
from typing import Any

import orjson
from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.services import Actor, audit_record
from coliseum.crypto import decrypt_secret, encrypt_secret
from coliseum.errors import ApplicationError, NotFoundError
from coliseum.models import Tenant
from coliseum.rls import system_scope

from .models import PrivacyRequest, RequestKind, RequestStatus

logger = logging.getLogger(__name__)

LINK_SALT = "coliseum.privacy.export"


class LinkExpiredError(ApplicationError):
    status_code = 410
    code = "link_expired"


def private_storage() -> FileSystemStorage:
    return FileSystemStorage(location=str(settings.PRIVATE_STORAGE_ROOT / "privacy"), base_url=None)


def subject_digest(*, tenant_id: int, user_id: str) -> str:
    """A keyed hash of (tenant, fan): matches requests about one person without storing who it is."""
    key = hashlib.sha256(("coliseum-privacy-subject:" + settings.SECRET_KEY).encode()).digest()
    return hmac.new(key, f"{tenant_id}:{user_id}".encode(), hashlib.sha256).hexdigest()


def _request_create(
    *, tenant: Tenant, kind: str, user_id: str, actor: Actor, request: HttpRequest | None
) -> PrivacyRequest:
    with transaction.atomic():
        privacy_request = PrivacyRequest.objects.create(
            tenant=tenant,
            kind=kind,
            subject_digest=subject_digest(tenant_id=tenant.pk, user_id=user_id),
            subject_encrypted=encrypt_secret(user_id),
            requested_by=actor if getattr(actor, "is_authenticated", False) else None,  # type: ignore[misc]
        )
        audit_record(
            action=f"privacy.{kind}_requested",
            actor=actor,
            tenant=tenant,
            target=privacy_request,
            request=request,
            # The subject's user id never goes into the audit log: the keyed hash only (first 16 hex digits).
            details={"request_id": str(privacy_request.pk), "subject": privacy_request.subject_digest[:16]},
        )
        request_id = str(privacy_request.pk)
        transaction.on_commit(lambda: _schedule(request_id))
    return privacy_request


def _schedule(request_id: str) -> None:
    from .tasks import privacy_request_run

    try:
        privacy_request_run.delay(request_id)  # the id only: the subject never travels through the broker
    except Exception:
        logger.exception("privacy job not queued; the sweep job picks it up")


def privacy_export_request(
    *, tenant: Tenant, user_id: str, actor: Actor, request: HttpRequest | None = None
) -> PrivacyRequest:
    return _request_create(
        tenant=tenant, kind=RequestKind.EXPORT, user_id=user_id, actor=actor, request=request
    )


def privacy_erasure_request(
    *, tenant: Tenant, user_id: str, actor: Actor, request: HttpRequest | None = None
) -> PrivacyRequest:
    return _request_create(
        tenant=tenant, kind=RequestKind.ERASURE, user_id=user_id, actor=actor, request=request
    )


def _claim(request_id: str) -> tuple[PrivacyRequest, str] | None:
    with transaction.atomic():
        privacy_request = (
            PrivacyRequest.objects.select_for_update().select_related("tenant").filter(pk=request_id).first()
        )
        if privacy_request is None or privacy_request.status == RequestStatus.COMPLETED:
            return None
        user_id = (
            decrypt_secret(privacy_request.subject_encrypted) if privacy_request.subject_encrypted else None
        )
        if user_id is None:
            privacy_request.status = RequestStatus.FAILED
            privacy_request.error = "subject not readable (the encryption key changed?)"
            privacy_request.save(update_fields=["status", "error"])
            return None
        privacy_request.status = RequestStatus.RUNNING
        privacy_request.started_at = timezone.now()
        privacy_request.save(update_fields=["status", "started_at"])
    return privacy_request, user_id


def privacy_request_run(*, request_id: str) -> PrivacyRequest | None:
    """Run one export or erasure job (idempotent: a completed request is left alone, an erasure may safely
    run twice)."""
    claimed = _claim(request_id)
    if claimed is None:
        return PrivacyRequest.objects.filter(pk=request_id).first()
    privacy_request, user_id = claimed
    try:
        if privacy_request.kind == RequestKind.EXPORT:
            _export_run(privacy_request, user_id)
        else:
            _erasure_run(privacy_request, user_id)
    except Exception as exc:
        logger.exception("privacy job failed", extra={"privacy_request": str(privacy_request.pk)})
        PrivacyRequest.objects.filter(pk=privacy_request.pk).update(
            status=RequestStatus.FAILED, error=type(exc).__name__, finished_at=timezone.now()
        )
        raise
    return privacy_request


def _export_run(privacy_request: PrivacyRequest, user_id: str) -> None:
    from ingestion.services.erasure import subject_data_gather

    tenant = privacy_request.tenant
    data = subject_data_gather(tenant_id=tenant.pk, user_id=user_id)
    now = timezone.now()
    document: dict[str, Any] = {
        "request_id": str(privacy_request.pk),
        "tenant": tenant.slug,
        "user_id": user_id,
        "generated_at": now.isoformat(),
        **data,
    }
    storage = private_storage()
    name = storage.save(
        f"exports/{tenant.pk}/{privacy_request.pk}.json",
        ContentFile(orjson.dumps(document, option=orjson.OPT_INDENT_2)),
    )
    counts = {
        "events": len(data["events"]),
        "traits": 1 if data["traits"] else 0,
        "dedupe_keys": len(data["dedupe_keys"]),
        "listener_hours": len(data["listener_hours"]),
        "counted_votes": len(data["counted_votes"]),
        "attributions": len(data["attributions"]),
    }
    with transaction.atomic():
        privacy_request.status = RequestStatus.COMPLETED
        privacy_request.finished_at = timezone.now()
        privacy_request.file_name = name
        privacy_request.file_size = storage.size(name)
        privacy_request.link_expires_at = now + timedelta(seconds=settings.PRIVACY_EXPORT_LINK_SECONDS)
        privacy_request.subject_encrypted = ""
        privacy_request.result = counts
        privacy_request.save()
        audit_record(
            action="privacy.export_completed",
            actor="system",
            tenant=tenant,
            target=privacy_request,
            details={"request_id": str(privacy_request.pk), **counts},
        )


def _erasure_run(privacy_request: PrivacyRequest, user_id: str) -> None:
    from ingestion.services.erasure import subject_erase

    tenant = privacy_request.tenant
    result = subject_erase(tenant_id=tenant.pk, user_id=user_id)
    # Earlier exports of the same person are personal data too: delete their files.
    storage = private_storage()
    exports = PrivacyRequest.objects.filter(
        tenant=tenant, kind=RequestKind.EXPORT, subject_digest=privacy_request.subject_digest
    ).exclude(file_name="")
    files_deleted = 0
    for export in exports:
        if storage.exists(export.file_name):
            storage.delete(export.file_name)
            files_deleted += 1
    exports.update(file_name="", link_expires_at=None, subject_encrypted="")
    counts = {**result.counts(), "export_files": files_deleted}
    with transaction.atomic():
        privacy_request.status = RequestStatus.COMPLETED
        privacy_request.finished_at = timezone.now()
        privacy_request.subject_encrypted = ""
        privacy_request.result = counts
        privacy_request.save()
        audit_record(
            action="privacy.erasure_completed",
            actor="system",
            tenant=tenant,
            target=privacy_request,
            details={"request_id": str(privacy_request.pk), **counts},
        )
    tenant_boards_rebuild(tenant_id=tenant.pk)


def tenant_boards_rebuild(*, tenant_id: int) -> int:
    """Rebuild a tenant's Redis boards from the (corrected) rollups.

    Every key of the tenant is deleted except the previous-rank snapshots; the families read recently are
    rebuilt at once with leaderboards' rebuild service, the others rebuild themselves on their next read
    (their built markers are gone). Readers' process-local ranking caches converge within
    LEADERBOARD_CACHE_SECONDS. Returns the families rebuilt."""
    from leaderboards.boards import BUCKETED_METRICS, GLOBAL_PREFIX, BoardFamily
    from leaderboards.services import FAMILIES_KEY, board_family_rebuild, redis

    conn = redis()
    doomed = [
        key
        for key in conn.scan_iter(match=f"{{{GLOBAL_PREFIX}:{tenant_id}:*", count=1000)
        if b":s:" not in (key if isinstance(key, bytes) else key.encode())
    ]
    for start in range(0, len(doomed), 500):
        conn.delete(*doomed[start : start + 500])
    rebuilt = 0
    for raw in conn.zrange(FAMILIES_KEY, 0, -1):
        token = raw.decode() if isinstance(raw, bytes) else raw
        family = BoardFamily.from_token(token)
        if family.tenant_id == tenant_id and family.metric in BUCKETED_METRICS:
            board_family_rebuild(family=family)
            rebuilt += 1
    return rebuilt


def export_link_token(*, privacy_request: PrivacyRequest) -> str | None:
    if privacy_request.link_expires_at is None or not privacy_request.file_name:
        return None
    payload = {"r": str(privacy_request.pk), "e": int(privacy_request.link_expires_at.timestamp())}
    return signing.dumps(payload, salt=LINK_SALT)


def export_link_resolve(*, token: str) -> PrivacyRequest:
    """The export a signed link points to. Tampered or unknown → NotFound; past its expiry → 410."""
    try:
        payload = signing.loads(token, salt=LINK_SALT)
        request_id, expires_ts = str(payload["r"]), int(payload["e"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise NotFoundError("No such link.") from exc
    with system_scope("signed export link: the request names its tenant"):
        privacy_request = PrivacyRequest.objects.filter(
            pk=request_id, kind=RequestKind.EXPORT, status=RequestStatus.COMPLETED
        ).first()
    if privacy_request is None or not privacy_request.file_name or privacy_request.link_expires_at is None:
        raise NotFoundError("No such link.")
    if int(privacy_request.link_expires_at.timestamp()) != expires_ts:
        raise NotFoundError("No such link.")
    if timezone.now().timestamp() >= expires_ts:
        raise LinkExpiredError("This link has expired.")
    return privacy_request


def privacy_requests_sweep() -> int:
    """Queue pending requests whose job was never queued or was lost (beat, every few minutes)."""
    stale = timezone.now() - timedelta(minutes=2)
    ids = list(
        PrivacyRequest.objects.filter(status=RequestStatus.PENDING, created_at__lt=stale).values_list(
            "pk", flat=True
        )[:100]
    )
    for request_id in ids:
        _schedule(str(request_id))
    return len(ids)
