"""Writes of the privacy app: data-subject requests (export, erasure), their jobs and their retries.

Retention lives in retention.py and backups in backups.py."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.core import signing
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
    return FileSystemStorage(location=settings.PRIVATE_STORAGE_ROOT / "privacy", base_url=None)


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
            privacy_request.error = (
                "The fan's id could not be read (the encryption key changed?): nothing was done. "
                "A retry cannot help; ask for a new request."
            )
            privacy_request.finished_at = timezone.now()
            privacy_request.save(update_fields=["status", "error", "finished_at"])
            return None
        privacy_request.status = RequestStatus.RUNNING
        privacy_request.started_at = timezone.now()
        privacy_request.finished_at = None
        privacy_request.error = ""
        privacy_request.save(update_fields=["status", "started_at", "finished_at", "error"])
    return privacy_request, user_id


def privacy_request_run(*, request_id: str) -> PrivacyRequest | None:
    """Run one export or erasure job as one unit: it completes and its result says what it gathered or
    removed, or it changes nothing and the request is `failed` with the reason (audited), ready for a retry.

    Idempotent: a completed request is left alone, and two deliveries of one erasure never both erase."""
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
        # The job's own transaction is rolled back by now: record why, in a transaction of its own.
        logger.exception("privacy job failed", extra={"privacy_request": str(privacy_request.pk)})
        reason = failure_reason(kind=privacy_request.kind, error=exc, user_id=user_id)
        with transaction.atomic():
            PrivacyRequest.objects.filter(pk=privacy_request.pk).update(
                status=RequestStatus.FAILED, error=reason, finished_at=timezone.now()
            )
            audit_record(
                action=f"privacy.{privacy_request.kind}_failed",
                actor="system",
                tenant=privacy_request.tenant,
                target=privacy_request,
                details={"request_id": str(privacy_request.pk), "reason": reason},
            )
        privacy_request.refresh_from_db()
    return privacy_request


def failure_reason(*, kind: str, error: BaseException, user_id: str | None) -> str:
    """What the admin shows for a failed job: what did not happen, the cause in words, and what to do. The
    fan's id never appears (a database message may quote a value: it is replaced)."""
    from django.db import DatabaseError
    from redis.exceptions import RedisError

    outcome = "Nothing was erased" if kind == RequestKind.ERASURE else "No export file was written"
    if isinstance(error, OSError):
        cause = f"the private storage could not be written ({error})"
        fix = "make PRIVATE_STORAGE_ROOT writable for the worker, then retry"
    elif isinstance(error, RedisError):
        cause = f"Redis, where the boards live, did not answer ({error})"
        fix = "retry once Redis is back"
    elif isinstance(error, DatabaseError):
        first_line = (str(error).strip().splitlines() or [""])[0]
        cause = f"the database refused the change ({type(error).__name__}: {first_line})"
        fix = "retry once the database is healthy"
    else:
        cause = f"{type(error).__name__}: {error}"
        fix = "retry once the cause is fixed"
    text = f"{outcome}: {cause}. {fix[0].upper()}{fix[1:]}."
    if user_id:
        text = re.sub(rf"(?<![\w-]){re.escape(user_id)}(?![\w-])", "[the fan]", text)
    return text if len(text) <= 300 else text[:299] + "…"


def _export_run(privacy_request: PrivacyRequest, user_id: str) -> None:
    """Gather, write the whole file or none (a temporary file renamed into place), then complete the request:
    the link exists only once the file is complete and the request says so."""
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
    counts = {
        "events": len(data["events"]),
        "traits": 1 if data["traits"] else 0,
        "dedupe_keys": len(data["dedupe_keys"]),
        "listener_hours": len(data["listener_hours"]),
        "counted_votes": len(data["counted_votes"]),
        "attributions": len(data["attributions"]),
    }
    name = f"exports/{tenant.pk}/{privacy_request.pk}.json"
    path = Path(private_storage().path(name))
    size = file_write_atomic(path, orjson.dumps(document, option=orjson.OPT_INDENT_2))
    try:
        with transaction.atomic():
            locked = PrivacyRequest.objects.select_for_update().get(pk=privacy_request.pk)
            if locked.status == RequestStatus.COMPLETED:  # another delivery finished first: same file
                return
            privacy_request.status = RequestStatus.COMPLETED
            privacy_request.finished_at = timezone.now()
            privacy_request.file_name = name
            privacy_request.file_size = size
            privacy_request.link_expires_at = now + timedelta(seconds=settings.PRIVACY_EXPORT_LINK_SECONDS)
            privacy_request.subject_encrypted = ""
            privacy_request.result = counts
            privacy_request.error = ""
            privacy_request.save()
            audit_record(
                action="privacy.export_completed",
                actor="system",
                tenant=tenant,
                target=privacy_request,
                details={"request_id": str(privacy_request.pk), **counts},
            )
    except BaseException:
        path.unlink(missing_ok=True)  # no request points to it: never leave personal data behind
        raise


def file_write_atomic(path: Path, content: bytes) -> int:
    """Write `path` completely or not at all: a temporary file in the same directory, flushed to disk, then
    renamed over `path` (atomic within one filesystem). Only the owner may read it. Returns its size."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return len(content)


@dataclass
class _StagedFiles:
    """Files moved aside (renamed in place) before an erasure's transaction: put back if it rolls back,
    deleted once it commits. A rename can be undone; a delete cannot."""

    moves: list[tuple[Path, Path]] = field(default_factory=list)

    def restore(self) -> None:
        for original, staged in reversed(self.moves):
            try:
                os.replace(staged, original)
            except OSError:
                logger.exception("an export file moved aside by a failed erasure could not be put back")

    def delete(self) -> None:
        for _original, staged in self.moves:
            try:
                staged.unlink(missing_ok=True)
            except OSError:
                logger.exception("an erased fan's export file could not be deleted")


def _files_stage(names: list[str], *, tag: str) -> _StagedFiles:
    storage = private_storage()
    staged = _StagedFiles()
    try:
        for name in names:
            original = Path(storage.path(name))
            aside = original.with_name(f".{original.name}.erasing-{tag}")
            if original.exists():
                os.replace(original, aside)
            elif not aside.exists():  # (aside already when an earlier run was killed after the move)
                continue
            staged.moves.append((original, aside))
    except BaseException:
        staged.restore()
        raise
    return staged


def _erasure_run(privacy_request: PrivacyRequest, user_id: str) -> None:
    """Everything that can fail happens before the commit: Redis is asked whether it answers, the earlier
    exports' files are moved aside, then ONE transaction deletes the fan's rows, corrects the rollups,
    clears the export links and completes the request. After the commit the files are deleted and the
    tenant's boards are rebuilt from the corrected rollups. Any failure before the commit puts the files
    back: nothing changed."""
    from ingestion.services.erasure import subject_erase
    from leaderboards.services import redis as boards_redis

    tenant = privacy_request.tenant
    boards_redis().ping()  # the boards are corrected after the commit: do not start if Redis is away
    exports = dict(
        PrivacyRequest.objects.filter(
            tenant=tenant, kind=RequestKind.EXPORT, subject_digest=privacy_request.subject_digest
        )
        .exclude(file_name="")
        .values_list("pk", "file_name")
    )
    staged = _files_stage(list(exports.values()), tag=str(privacy_request.pk))
    try:
        with transaction.atomic():
            locked = PrivacyRequest.objects.select_for_update().get(pk=privacy_request.pk)
            if locked.status == RequestStatus.COMPLETED:  # another delivery erased already
                staged.delete()  # (files of exports that delivery erased)
                return
            result = subject_erase(tenant_id=tenant.pk, user_id=user_id)
            PrivacyRequest.objects.filter(pk__in=exports).update(
                file_name="", link_expires_at=None, subject_encrypted=""
            )
            counts = {**result.counts(), "export_files": len(staged.moves)}
            privacy_request.status = RequestStatus.COMPLETED
            privacy_request.finished_at = timezone.now()
            privacy_request.subject_encrypted = ""
            privacy_request.result = counts
            privacy_request.error = ""
            privacy_request.save()
            audit_record(
                action="privacy.erasure_completed",
                actor="system",
                tenant=tenant,
                target=privacy_request,
                details={"request_id": str(privacy_request.pk), **counts},
            )
            request_id = str(privacy_request.pk)
            # robust: nothing after the commit may turn a completed erasure into a failed one
            transaction.on_commit(staged.delete, robust=True)
            transaction.on_commit(lambda: erasure_boards_correct(request_id=request_id), robust=True)
    except BaseException:
        staged.restore()  # the transaction did not commit: the files go back where they were
        raise


def erasure_boards_correct(*, request_id: str) -> bool:
    """Rebuild the boards of a completed erasure's tenant from the corrected rollups and record when. Runs
    after the erasure's commit; when Redis fails here, the sweep runs it again. Returns whether it did."""
    from leaderboards.services import boards_reset_tenant

    privacy_request = PrivacyRequest.objects.filter(
        pk=request_id, kind=RequestKind.ERASURE, status=RequestStatus.COMPLETED
    ).first()
    if privacy_request is None:
        return False
    try:
        boards_reset_tenant(tenant_id=privacy_request.tenant_id)
    except Exception:
        logger.exception("boards not corrected after an erasure; the sweep tries again")
        return False
    PrivacyRequest.objects.filter(pk=request_id).update(boards_corrected_at=timezone.now())
    return True


def privacy_request_retry(
    *, privacy_request: PrivacyRequest, actor: Actor, request: HttpRequest | None = None
) -> PrivacyRequest:
    """Run a failed request again (the admin's Retry): back to pending with the reason cleared, the job queued
    once this commits, audited `privacy.request_retried` with the reason it had. Refused (409) unless it
    failed, or when the fan's id is no longer readable (a new request is needed then)."""
    with transaction.atomic():
        locked = (
            PrivacyRequest.objects.select_for_update().select_related("tenant").get(pk=privacy_request.pk)
        )
        if locked.status != RequestStatus.FAILED:
            raise ApplicationError(
                f"Request {locked.pk} is {locked.status}; only a failed request can be retried.",
                code="conflict",
                status_code=409,
                details={"status": locked.status},
            )
        if not locked.subject_encrypted or decrypt_secret(locked.subject_encrypted) is None:
            raise ApplicationError(
                f"Request {locked.pk} cannot be retried: the fan's id is no longer readable. "
                "Ask for a new request.",
                code="conflict",
                status_code=409,
            )
        previous = locked.error
        locked.status = RequestStatus.PENDING
        locked.error = ""
        locked.started_at = None
        locked.finished_at = None
        locked.save(update_fields=["status", "error", "started_at", "finished_at"])
        audit_record(
            action="privacy.request_retried",
            actor=actor,
            tenant=locked.tenant,
            target=locked,
            request=request,
            details={"request_id": str(locked.pk), "kind": locked.kind, "previous_reason": previous},
        )
        request_id = str(locked.pk)
        transaction.on_commit(lambda: _schedule(request_id))
    return locked


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
    """Queue pending requests whose job was never queued or was lost, and correct the boards of erasures whose
    correction after the commit failed (beat, every few minutes). Returns the requests queued."""
    stale = timezone.now() - timedelta(minutes=2)
    ids = list(
        PrivacyRequest.objects.filter(status=RequestStatus.PENDING, created_at__lt=stale).values_list(
            "pk", flat=True
        )[:100]
    )
    for request_id in ids:
        _schedule(str(request_id))
    uncorrected = PrivacyRequest.objects.filter(
        kind=RequestKind.ERASURE, status=RequestStatus.COMPLETED, boards_corrected_at__isnull=True
    ).values_list("pk", flat=True)[:100]
    for request_id in uncorrected:
        erasure_boards_correct(request_id=str(request_id))
    return len(ids)
