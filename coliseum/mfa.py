"""Optional TOTP multi-factor for API sign-in (POST /api/v1/auth/token), its recovery codes, and the failed
sign-in counter of that endpoint. The admin's MFA (required for staff) is coliseum/privacy/mfa.py; both use
django-otp's devices, so a TOTP device enrolled here also signs its user in to the admin.

- A user has MFA when they have a confirmed TOTP device (whoever enrolled it). Enrolment is two steps: start
  (password again: a stolen access token alone must not be able to lock the owner out with the thief's
  device) returns the otpauth:// URL once; confirm with a first code, which returns 10 recovery codes once.
- Confirming signs the user's other sessions out: every refresh token issued before stops working, and the
  confirmation answers a new pair.
- Recovery codes live in a django-otp static device of their own, stored as digests (SHA-256, base32,
  truncated to the 16 characters django-otp's column holds: 80 bits) of 80-bit random codes, never in clear.
  Each works once. TOTP keys have to be read back to check codes: django-otp keeps them in clear.
- Replay: django-otp refuses a code of a time step at or before the last one accepted (`last_t`); the device
  row is locked while a code is checked, so two concurrent sign-ins cannot both spend one code.
- Throttling, two layers: failed sign-ins (wrong password, wrong code) per (username, client address) in
  Redis, ADMIN_LOGIN_MAX_FAILURES within ADMIN_LOGIN_WINDOW_SECONDS (the admin's policy, one for both
  doors), then 429 until the window passes; and django-otp's per-device delay after each wrong code (1 s,
  2 s, 4 s ..., across every address), answered as 429 with its Retry-After."""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_redis import get_redis_connection
from rest_framework.request import Request
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from audit.services import audit_record

from .errors import ApplicationError, RateLimitedError

logger = logging.getLogger(__name__)

TOTP_DEVICE_NAME = "api"
RECOVERY_DEVICE_NAME = "api-recovery"
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # base32: 5 bits a character, 16 characters
_RECOVERY_LENGTH = 16

AnyRequest = HttpRequest | Request | None


@dataclass(frozen=True)
class MfaState:
    enabled: bool
    pending: bool  # enrolment started, not yet confirmed
    recovery_codes_left: int


@dataclass(frozen=True)
class TotpEnrolment:
    config_url: str  # otpauth://totp/...: the QR code for the authenticator app
    secret: str  # the same key in base32, for typing in by hand


def mfa_enabled(*, user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def mfa_state(*, user: User) -> MfaState:
    devices = list(TOTPDevice.objects.filter(user=user).values_list("confirmed", flat=True))
    left = StaticToken.objects.filter(
        device__user=user, device__name=RECOVERY_DEVICE_NAME, device__confirmed=True
    ).count()
    return MfaState(
        enabled=any(devices), pending=not any(devices) and bool(devices), recovery_codes_left=left
    )


def mfa_totp_start(*, user: User, password: str, client: str) -> TotpEnrolment:
    """A new unconfirmed TOTP device (replacing an unconfirmed one). Its key leaves the server only here."""
    login_attempts_check(username=user.get_username(), client=client)
    if not user.check_password(password):
        login_failure_record(username=user.get_username(), client=client)
        raise ApplicationError("The password is wrong.", code="password_invalid")
    if mfa_enabled(user=user):
        raise ApplicationError(
            "Two-factor sign-in is already on; turn it off first to enrol another device.",
            code="mfa_already_enabled",
            status_code=409,
        )
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return TotpEnrolment(
        config_url=device.config_url, secret=base64.b32encode(device.bin_key).decode().rstrip("=")
    )


def mfa_totp_confirm(*, user: User, token: str, request: AnyRequest = None) -> list[str]:
    """Turn the pending device on with a first code from it; answers the recovery codes (shown once)."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).first()
        if device is None:
            raise ApplicationError(
                "No enrolment is pending: start with POST /api/v1/auth/mfa/totp.",
                code="mfa_not_started",
                status_code=409,
            )
        _locked_check([device])
        verified = device.verify_token(_normalized(token))
        codes: list[str] = []
        if verified:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            codes = _recovery_codes_issue(user)
            _refresh_tokens_revoke(user)
            audit_record(action="auth.mfa_enabled", actor=user, target=user, request=request)
    # Outside the transaction: the device's failure count (its throttle) must stay written.
    if not verified:
        raise ApplicationError("The code is wrong or has expired.", code="mfa_invalid")
    return codes


def mfa_disable(*, user: User, otp: str, request: AnyRequest = None) -> None:
    """Remove the user's TOTP devices and recovery codes, given a current code or a recovery code."""
    if not mfa_enabled(user=user):
        raise ApplicationError("Two-factor sign-in is not on.", code="mfa_not_enabled", status_code=409)
    if not mfa_verify(user=user, otp=otp, request=request):
        raise ApplicationError("The code is wrong, expired or already used.", code="mfa_invalid")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user, name=RECOVERY_DEVICE_NAME).delete()
        audit_record(action="auth.mfa_disabled", actor=user, target=user, request=request)


def mfa_verify(*, user: User, otp: str, request: AnyRequest = None) -> bool:
    """True when `otp` is a current code of one of the user's confirmed TOTP devices, or one of their unused
    recovery codes (then spent, and audited). 429 while django-otp's delay after wrong codes runs."""
    code = _normalized(otp)
    with transaction.atomic():
        if len(code) == 6 and code.isdigit():
            devices: list[Device] = list(
                TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk")
            )
            _locked_check(devices)
            return any(device.verify_token(code) for device in devices)
        recovery = (
            StaticDevice.objects.select_for_update()
            .filter(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
            .first()
        )
        if recovery is None or len(code) != _RECOVERY_LENGTH:
            return False
        _locked_check([recovery])
        if not recovery.verify_token(_recovery_digest(code)):
            return False
        audit_record(
            action="auth.mfa_recovery_code_used",
            actor=user,
            target=user,
            request=request,
            details={"recovery_codes_left": recovery.token_set.count()},
        )
        return True


def _normalized(otp: str) -> str:
    return "".join(otp.split()).replace("-", "").lower()


def _recovery_digest(code: str) -> str:
    digest = hashlib.sha256(("coliseum-recovery:" + code).encode()).digest()
    return base64.b32encode(digest).decode()[:_RECOVERY_LENGTH].lower()


def recovery_code_digest(code: str) -> str:
    """How a recovery code is stored and looked up (case, spaces and dashes as typed do not matter)."""
    return _recovery_digest(_normalized(code))


def recovery_codes_add(device: StaticDevice, count: int) -> list[str]:
    """`count` new random recovery codes on `device`, stored as digests; the codes themselves, grouped for
    reading (xxxx-xxxx-xxxx-xxxx), are returned once and kept nowhere."""
    codes = [
        "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH)) for _ in range(count)
    ]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=_recovery_digest(c)) for c in codes)
    return ["-".join(code[i : i + 4] for i in range(0, _RECOVERY_LENGTH, 4)) for code in codes]


def _recovery_codes_issue(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user, name=RECOVERY_DEVICE_NAME).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    return recovery_codes_add(device, RECOVERY_CODE_COUNT)


def _refresh_tokens_revoke(user: User) -> None:
    """Refresh tokens issued before the second factor stop working: one stolen earlier must not outlive the
    enrolment (access tokens still run out within their 15 minutes)."""
    live = OutstandingToken.objects.filter(
        user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token=t) for t in live], ignore_conflicts=True)


def _locked_check(devices: list[Device]) -> None:
    for device in devices:
        allowed, info = device.verify_is_allowed()
        if not allowed and info and info.get("locked_until"):
            wait = math.ceil((info["locked_until"] - timezone.now()).total_seconds())
            raise RateLimitedError(
                "Too many wrong codes: wait before trying again.", code="mfa_throttled", retry_after=wait
            )


# --- failed sign-ins ------------------------------------------------------------------------------


def _failures_key(username: str, client: str) -> str:
    # Hashed: a username is personal data and must not sit in Redis key names in clear.
    digest = hashlib.sha256(f"{username.strip().lower()}|{client}".encode()).hexdigest()[:32]
    return f"coliseum:auth-login-failures:{digest}"


def _limits() -> tuple[int, int]:
    return int(settings.ADMIN_LOGIN_MAX_FAILURES), int(settings.ADMIN_LOGIN_WINDOW_SECONDS)


def login_attempts_check(*, username: str, client: str) -> None:
    """429 (Retry-After: what is left of the window) once the failures reach the limit. If Redis is down it
    lets the attempt through: signing in must not depend on the cache (the per-device delay still holds)."""
    limit, window = _limits()
    key = _failures_key(username, client)
    try:
        redis = get_redis_connection("default")
        failures, ttl = redis.pipeline().get(key).ttl(key).execute()
    except Exception:
        logger.warning("sign-in failure counter unavailable")
        return
    if failures is not None and int(failures) >= limit:
        raise RateLimitedError(
            "Too many failed sign-in attempts. Try again later.",
            retry_after=ttl if ttl and ttl > 0 else window,
        )


def login_failure_record(*, username: str, client: str) -> None:
    _, window = _limits()
    key = _failures_key(username, client)
    try:
        # The window starts at the first failure (SET NX EX) and INCR keeps its expiry.
        get_redis_connection("default").pipeline().set(key, 0, ex=window, nx=True).incr(key).execute()
    except Exception:
        logger.warning("sign-in failure counter unavailable")


def login_failures_clear(*, username: str, client: str) -> None:
    try:
        get_redis_connection("default").delete(_failures_key(username, client))
    except Exception:
        logger.warning("sign-in failure counter unavailable")
