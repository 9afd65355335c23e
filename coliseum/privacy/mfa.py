"""TOTP multi-factor for the Django admin (django-otp), recovery codes, and a login throttle.

The least invasive change to the admin: `admin_site_require_mfa(admin.site)` (called from PrivacyConfig.ready)
swaps the CLASS of the existing default site for a subclass with this mixin, so every registration made by
other apps (their admin.py, the audit app's AuditedModelAdmin upgrade) stays as it is and no URLconf changes.

- With ADMIN_MFA_REQUIRED (production default), a staff user is admitted only once verified by an OTP device
  (TOTP app, or a one-time recovery code from django-otp's static device); the admin login form asks for the
  token. Enrolment: `python manage.py addstatictoken <username>` prints a recovery code for the first login;
  then add a TOTP device under "TOTP devices" in the admin (its config URL is the QR code for the app).
- Recovery codes are stored as digests only, whichever door issued them (this command, the admin's "issue
  recovery codes" action on a static device, or the API); the login form digests what is typed.
- Login attempts are throttled: ADMIN_LOGIN_MAX_FAILURES failed POSTs per (username, client IP) within
  ADMIN_LOGIN_WINDOW_SECONDS answer 429 until the window passes (counted in the cache, i.e. Redis)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.contrib.admin import AdminSite
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils.functional import LazyObject, empty
from django_otp.admin import OTPAdminAuthenticationForm
from django_otp.plugins.otp_static.models import StaticDevice

from coliseum.clientaddr import client_address
from coliseum.mfa import recovery_code_digest

_OTP_LOGIN_TEMPLATE = "otp/admin111/login.html"


def mfa_required() -> bool:
    return bool(getattr(settings, "ADMIN_MFA_REQUIRED", False))


def _throttle_key(request: HttpRequest) -> str:
    username = str(request.POST.get("username", "")).strip().lower()
    ip = client_address(request)
    # hashed: usernames are personal data and must not sit in Redis key names in clear
    digest = hashlib.sha256(f"{username}|{ip}".encode()).hexdigest()[:32]
    return f"privacy:admin-login-failures:{digest}"


class RecoveryCodeAdminAuthenticationForm(OTPAdminAuthenticationForm):
    """django-otp's admin login form, except that a recovery code (static device) is looked up by its digest:
    recovery codes are stored as digests only (coliseum/mfa.py), so a copy of the database holds no usable
    code, and a digest typed as a code is digested again and matches nothing."""

    def _verify_token(self, user: Any, token: str, device: Any = None) -> Any:
        if isinstance(device, StaticDevice):
            token = recovery_code_digest(token)
        return super()._verify_token(user, token, device)


class MfaAdminSiteMixin:
    @property
    def login_form(self) -> Any:
        return RecoveryCodeAdminAuthenticationForm if mfa_required() else None

    @property
    def login_template(self) -> str | None:
        return _OTP_LOGIN_TEMPLATE if mfa_required() else None

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):  # type: ignore[misc]
            return False
        if not mfa_required():
            return True
        is_verified = getattr(request.user, "is_verified", None)
        return bool(is_verified and is_verified())

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method != "POST":
            return super().login(request, extra_context)  # type: ignore[misc, no-any-return]
        key = _throttle_key(request)
        limit = int(getattr(settings, "ADMIN_LOGIN_MAX_FAILURES", 5))
        window = int(getattr(settings, "ADMIN_LOGIN_WINDOW_SECONDS", 900))
        if int(cache.get(key, 0)) >= limit:
            response = HttpResponse(
                "Too many failed sign-in attempts. Try again later.", status=429, content_type="text/plain"
            )
            response["Retry-After"] = str(window)
            return response
        response = super().login(request, extra_context)  # type: ignore[misc]
        if response.status_code in (301, 302, 303):
            cache.delete(key)
        else:
            try:
                cache.incr(key)
            except ValueError:
                cache.set(key, 1, timeout=window)
        return response  # type: ignore[no-any-return]


def admin_site_require_mfa(site: AdminSite) -> None:
    target: Any = site
    if isinstance(site, LazyObject):  # admin.site is a DefaultAdminSite proxy: swap the real site's class
        proxy: Any = site
        if proxy._wrapped is empty:
            proxy._setup()
        target = proxy._wrapped
    if isinstance(target, MfaAdminSiteMixin):
        return
    cls = type(target)
    target.__class__ = type(f"Mfa{cls.__name__}", (MfaAdminSiteMixin, cls), {})
