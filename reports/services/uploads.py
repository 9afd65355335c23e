"""Private uploads: report logos now, OCR intake later. The type comes from the bytes (magic numbers),
never from the file name or the client's Content-Type; the size is capped per purpose; files are scanned by
ClamAV (clamd INSTREAM over its unix socket) when CLAMD_SOCKET is set."""

from __future__ import annotations

import hashlib
import logging
import socket
import struct
import uuid
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from audit.services import Actor, audit_record
from coliseum.errors import ApplicationError, PayloadTooLargeError
from coliseum.models import Tenant

from ..models import ScanStatus, Upload, UploadPurpose
from ..storage import private_storage

logger = logging.getLogger(__name__)

MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"%PDF-", "application/pdf", "pdf"),
)
ALLOWED_TYPES: dict[str, tuple[str, ...]] = {
    UploadPurpose.LOGO: ("image/png", "image/jpeg"),
    UploadPurpose.DOCUMENT: ("image/png", "image/jpeg", "application/pdf"),
}
CLAMD_CHUNK = 64 * 1024


def max_bytes(purpose: str) -> int:
    if purpose == UploadPurpose.LOGO:
        return int(settings.UPLOAD_MAX_LOGO_BYTES)
    return int(settings.UPLOAD_MAX_DOCUMENT_BYTES)


def sniff(head: bytes) -> tuple[str, str] | None:
    for magic, content_type, ext in MAGIC:
        if head.startswith(magic):
            return content_type, ext
    return None


class ScannerUnavailable(Exception):
    pass


def clamd_scan(content: bytes, *, socket_path: str, timeout: float = 10.0) -> tuple[str, str]:
    """Scan bytes with clamd's INSTREAM command. Returns (status, detail): clean / infected + signature."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(socket_path)
            sock.sendall(b"zINSTREAM\0")
            for i in range(0, len(content), CLAMD_CHUNK):
                chunk = content[i : i + CLAMD_CHUNK]
                sock.sendall(struct.pack("!L", len(chunk)) + chunk)
            sock.sendall(struct.pack("!L", 0))
            reply = b""
            while not reply.endswith(b"\0"):
                part = sock.recv(4096)
                if not part:
                    break
                reply += part
    except OSError as exc:
        raise ScannerUnavailable(type(exc).__name__) from exc
    text = reply.rstrip(b"\0").decode("utf-8", "replace").strip()
    # "stream: OK" | "stream: <signature> FOUND" | "... ERROR"
    if text.endswith(" OK"):
        return ScanStatus.CLEAN, ""
    if text.endswith(" FOUND"):
        return ScanStatus.INFECTED, text.removeprefix("stream:").removesuffix("FOUND").strip()[:200]
    raise ScannerUnavailable(text[:100] or "empty reply")


def upload_create(
    *, tenant: Tenant, actor: Actor, file: UploadedFile, purpose: str, request: Any = None
) -> Upload:
    limit = max_bytes(purpose)
    if file.size is None or file.size > limit:
        raise PayloadTooLargeError(
            f"The file is larger than the {limit // 1024} KB allowed for a {purpose}.",
            details={"max_bytes": limit},
        )
    content = file.read(limit + 1)
    if len(content) > limit:
        raise PayloadTooLargeError(f"The file is larger than the {limit // 1024} KB allowed.")
    found = sniff(content[:16])
    allowed = ALLOWED_TYPES[purpose]
    if found is None or found[0] not in allowed:
        raise ApplicationError(
            "Unsupported file type: " + " or ".join(t.split("/")[1].upper() for t in allowed) + " only.",
            code="unsupported_file_type",
            details={"allowed": list(allowed)},
            status_code=415,
        )
    content_type, ext = found

    status: str = ScanStatus.UNSCANNED
    detail = ""
    if settings.CLAMD_SOCKET:
        try:
            status, detail = clamd_scan(content, socket_path=settings.CLAMD_SOCKET)
        except ScannerUnavailable as exc:
            # Kept but unusable until scanned: a logo must be clean (or unscanned where no scanner runs).
            status, detail = ScanStatus.PENDING, f"scanner unavailable ({exc})"[:200]
            logger.warning("clamd unavailable", extra={"error": str(exc)[:100]})

    name = f"uploads/{tenant.pk}/{uuid.uuid4().hex}.{ext}"
    # An infected file is recorded (status, signature) but its bytes are never kept.
    stored = "" if status == ScanStatus.INFECTED else private_storage().save(name, ContentFile(content))
    with transaction.atomic():
        upload = Upload.objects.create(
            tenant=tenant,
            uploaded_by=actor if getattr(actor, "is_authenticated", False) else None,  # type: ignore[misc]
            purpose=purpose,
            content_type=content_type,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            file_name=stored,
            scan_status=status,
            scan_detail=detail,
        )
        audit_record(
            action="upload.created",
            actor=actor,
            tenant=tenant,
            target=upload,
            request=request,
            details={"purpose": purpose, "content_type": content_type, "size": len(content), "scan": status},
        )
    return upload
