"""Refresh-token rotation: atomic, with reuse detection by family (OAuth 2.0 Security BCP, section 4.14).

Every refresh token carries `fam`, the id of the sign-in it descends from (the first token's jti). A refresh
locks the presented token's outstanding row, so concurrent refreshes with one token are serialised: the
first rotates it, every later one finds it already rotated. Presenting an already-rotated token means a copy
of it is in someone else's hands, so the whole family is revoked: the thief's and the owner's refresh
tokens alike, and the owner signs in again. Access tokens already issued live out their (short) lifetime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework_simplejwt.exceptions import TokenBackendError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import aware_utcnow

FAMILY_CLAIM = "fam"


class RefreshRefused(Exception):
    """The token cannot be used; `reason` is for the audit log, never for the client."""

    def __init__(self, reason: str, user_id: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.user_id = user_id


@dataclass(frozen=True)
class Rotation:
    access: str
    refresh: str
    user_id: Any


def refresh_token_issue(*, user: Any, family: str | None = None) -> RefreshToken:
    """A new refresh token for `user`, recorded as outstanding, in `family` (a new one when None)."""
    token = RefreshToken.for_user(user)  # records the outstanding row, without `fam` yet
    token[FAMILY_CLAIM] = family or token[jwt_settings.JTI_CLAIM]
    OutstandingToken.objects.filter(jti=token[jwt_settings.JTI_CLAIM]).update(token=str(token))
    return token


def _decode(raw: str) -> dict[str, Any]:
    backend = token_backend
    try:
        payload: dict[str, Any] = backend.decode(raw, verify=True)  # type: ignore[arg-type]  # signature, expiry
    except TokenBackendError:
        raise RefreshRefused("invalid_token") from None
    if payload.get(jwt_settings.TOKEN_TYPE_CLAIM) != "refresh" or not payload.get(jwt_settings.JTI_CLAIM):
        raise RefreshRefused("invalid_token")
    return payload


def _family_revoke(*, user_id: Any, family: str) -> int:
    """Blacklist every live refresh token of `family`. The stored token text carries the claim."""
    backend = token_backend
    live = OutstandingToken.objects.filter(
        user_id=user_id, expires_at__gt=aware_utcnow(), blacklistedtoken__isnull=True
    )
    revoked = 0
    for outstanding in live.select_for_update(of=("self",)):
        claims = backend.decode(outstanding.token, verify=False)  # type: ignore[arg-type]
        if claims.get(FAMILY_CLAIM, claims.get(jwt_settings.JTI_CLAIM)) == family:
            BlacklistedToken.objects.get_or_create(token=outstanding)
            revoked += 1
    return revoked


def refresh_token_rotate(*, raw: str) -> Rotation:
    """Exchange `raw` for a new access and refresh token, or raise RefreshRefused (reason: invalid_token,
    reused, user_gone, inactive_account)."""
    payload = _decode(raw)
    jti = payload[jwt_settings.JTI_CLAIM]
    family = payload.get(FAMILY_CLAIM) or jti
    user_id = payload.get(jwt_settings.USER_ID_CLAIM)
    reused = False
    with transaction.atomic():
        outstanding = OutstandingToken.objects.select_for_update().filter(jti=jti).first()
        if outstanding is None:
            raise RefreshRefused("invalid_token", user_id)
        if BlacklistedToken.objects.filter(token=outstanding).exists():
            _family_revoke(user_id=outstanding.user_id, family=family)
            reused = True
        else:
            user = get_user_model().objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first()
            if user is None:
                raise RefreshRefused("user_gone", user_id)
            if not jwt_settings.USER_AUTHENTICATION_RULE(user):
                raise RefreshRefused("inactive_account", user_id)
            BlacklistedToken.objects.create(token=outstanding)
            new = refresh_token_issue(user=user, family=family)
            return Rotation(access=str(new.access_token), refresh=str(new), user_id=user.pk)
    # Raised after the commit, so the family stays revoked.
    assert reused
    raise RefreshRefused("reused", user_id)
