"""Optional TOTP sign-in for the API (coliseum/mfa.py): enrolment, sign-in with a code or a recovery code,
replays, removal, and the throttles on failed sign-ins. Codes are computed from the enrolled key, as an
authenticator app would."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from audit.models import AuditEntry
from coliseum.models import Role
from tests.coliseum.conftest import client_for
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # the factories' password


@dataclass
class Enrolled:
    user: User
    client: APIClient  # signed in (JWT) as the user
    key: bytes
    recovery_codes: list[str]
    confirm_code: str  # the code that confirmed the device (spent)

    def code(self, steps_ahead: int = 0) -> str:
        """The app's code for the current time step (or a later one: each step's code works once)."""
        return f"{totp(self.key, drift=steps_ahead):06d}"


@pytest.fixture
def no_device_delay(settings: Any) -> None:
    # django-otp delays a device after each wrong code (1 s, 2 s, ...); tests that follow a wrong code with a
    # right one at once turn it off (the delay has its own test).
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def _owner() -> tuple[User, APIClient]:
    membership = MembershipFactory.create(role=Role.OWNER)
    return membership.user, client_for(membership)


def _enrol() -> Enrolled:
    user, client = _owner()
    started = client.post("/api/v1/auth/mfa/totp", {"password": PASSWORD}, format="json")
    assert started.status_code == 201, started.content
    key = _key(started.json()["secret"])
    code = f"{totp(key):06d}"
    confirmed = client.post("/api/v1/auth/mfa/totp/confirm", {"token": code}, format="json")
    assert confirmed.status_code == 200, confirmed.content
    return Enrolled(user, client, key, confirmed.json()["recovery_codes"], code)


def _key(secret: str) -> bytes:
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def _login(user: User, otp: str | None = None, password: str = PASSWORD) -> Any:
    body = {"username": user.username, "password": password}
    if otp is not None:
        body["otp"] = otp
    return APIClient().post("/api/v1/auth/token", body, format="json")


def _wrong(enrolled: Enrolled) -> str:
    valid = {enrolled.code(step) for step in range(-2, 3)}
    return next(c for c in ("123456", "654321", "111111") if c not in valid)


def _actions(user: User) -> list[str]:
    return list(
        AuditEntry.objects.filter(target_id=str(user.pk), action__startswith="auth.mfa")
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_enrolment_shows_the_key_once_then_a_first_code_turns_it_on_with_recovery_codes() -> None:
    user, client = _owner()

    started = client.post("/api/v1/auth/mfa/totp", {"password": PASSWORD}, format="json")
    pending = client.get("/api/v1/auth/mfa/totp").json()
    secret = started.json()["secret"]
    confirmed = client.post(
        "/api/v1/auth/mfa/totp/confirm", {"token": f"{totp(_key(secret)):06d}"}, format="json"
    )
    state = client.get("/api/v1/auth/mfa/totp").json()

    assert started.status_code == 201
    assert started["Cache-Control"] == "no-store"
    assert started.json()["config_url"].startswith("otpauth://totp/Coliseum%3A")
    assert f"secret={secret}" in started.json()["config_url"]
    assert pending == {"enabled": False, "pending": True, "recovery_codes_left": 0}
    assert confirmed.status_code == 200
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10 == len(set(codes))
    assert state == {"enabled": True, "pending": False, "recovery_codes_left": 10}
    assert _actions(user) == ["auth.mfa_enabled"]
    # Recovery codes are stored as digests: none of them, in any spelling, is in the table.
    stored = set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))
    assert len(stored) == 10
    assert not stored & {c.replace("-", "") for c in codes} and not stored & set(codes)


def test_enrolment_needs_the_password_and_a_right_first_code(no_device_delay: None) -> None:
    user, client = _owner()

    wrong_password = client.post("/api/v1/auth/mfa/totp", {"password": "not-it"}, format="json")
    no_pending = client.post("/api/v1/auth/mfa/totp/confirm", {"token": "123456"}, format="json")
    client.post("/api/v1/auth/mfa/totp", {"password": PASSWORD}, format="json")
    wrong_code = client.post("/api/v1/auth/mfa/totp/confirm", {"token": "12345"}, format="json")

    assert wrong_password.status_code == 400
    assert wrong_password.json()["error"]["code"] == "password_invalid"
    assert no_pending.status_code == 409
    assert no_pending.json()["error"]["code"] == "mfa_not_started"
    assert wrong_code.status_code == 400
    assert wrong_code.json()["error"]["code"] == "mfa_invalid"
    assert client.get("/api/v1/auth/mfa/totp").json()["pending"] is True
    assert _login(user).status_code == 200  # not on until confirmed


def test_confirming_signs_other_sessions_out_and_answers_a_new_pair() -> None:
    user, client = _owner()
    earlier = _login(user).json()["refresh"]
    started = client.post("/api/v1/auth/mfa/totp", {"password": PASSWORD}, format="json")

    confirmed = client.post(
        "/api/v1/auth/mfa/totp/confirm",
        {"token": f"{totp(_key(started.json()['secret'])):06d}"},
        format="json",
    )
    stale = APIClient().post("/api/v1/auth/token/refresh", {"refresh": earlier}, format="json")
    fresh = APIClient().post(
        "/api/v1/auth/token/refresh", {"refresh": confirmed.json()["refresh"]}, format="json"
    )

    assert stale.status_code == 401
    assert stale.json()["error"]["code"] == "token_not_valid"
    assert fresh.status_code == 200


def test_enrolling_again_while_on_is_refused() -> None:
    enrolled = _enrol()

    again = enrolled.client.post("/api/v1/auth/mfa/totp", {"password": PASSWORD}, format="json")

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "mfa_already_enabled"
    assert TOTPDevice.objects.filter(user=enrolled.user).count() == 1


def test_sign_in_then_needs_a_code_and_refuses_a_wrong_one(no_device_delay: None) -> None:
    enrolled = _enrol()

    without = _login(enrolled.user)
    wrong = _login(enrolled.user, otp=_wrong(enrolled))
    right = _login(enrolled.user, otp=enrolled.code(steps_ahead=1))

    assert without.status_code == 401
    assert without.json()["error"]["code"] == "mfa_required"
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "mfa_invalid"
    assert right.status_code == 200
    assert set(right.json()) == {"access", "refresh"}
    failed = AuditEntry.objects.filter(action="auth.login_failed", target_id=str(enrolled.user.pk))
    assert [e.details for e in failed] == [{"reason": "mfa_invalid"}]


def test_a_wrong_password_is_refused_before_any_code_is_asked() -> None:
    enrolled = _enrol()

    response = _login(enrolled.user, password="not-it")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


def test_a_code_works_once() -> None:
    enrolled = _enrol()
    code = enrolled.code(steps_ahead=1)

    first = _login(enrolled.user, otp=code)
    replay = _login(enrolled.user, otp=code)

    assert first.status_code == 200
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "mfa_invalid"


def test_the_code_used_to_confirm_cannot_sign_in() -> None:
    enrolled = _enrol()

    response = _login(enrolled.user, otp=enrolled.confirm_code)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "mfa_invalid"


def test_a_recovery_code_signs_in_once_and_is_audited() -> None:
    enrolled = _enrol()
    code = enrolled.recovery_codes[3]

    first = _login(enrolled.user, otp=code.upper().replace("-", " "))  # typed loosely
    again = _login(enrolled.user, otp=code)

    assert first.status_code == 200
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "mfa_invalid"
    used = AuditEntry.objects.get(action="auth.mfa_recovery_code_used")
    assert used.details == {"recovery_codes_left": 9}
    assert code not in str(used.details)
    assert enrolled.client.get("/api/v1/auth/mfa/totp").json()["recovery_codes_left"] == 9


def test_refresh_keeps_working_after_a_two_factor_sign_in() -> None:
    enrolled = _enrol()
    tokens = _login(enrolled.user, otp=enrolled.code(steps_ahead=1)).json()

    refreshed = APIClient().post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")

    assert refreshed.status_code == 200
    assert set(refreshed.json()) == {"access", "refresh"}


def test_turning_it_off_needs_a_code_then_sign_in_needs_none(no_device_delay: None) -> None:
    enrolled = _enrol()

    wrong = enrolled.client.delete("/api/v1/auth/mfa/totp", {"otp": _wrong(enrolled)}, format="json")
    still_on = _login(enrolled.user)
    off = enrolled.client.delete(
        "/api/v1/auth/mfa/totp", {"otp": enrolled.code(steps_ahead=1)}, format="json"
    )
    again = enrolled.client.delete(
        "/api/v1/auth/mfa/totp", {"otp": enrolled.recovery_codes[0]}, format="json"
    )

    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "mfa_invalid"
    assert still_on.json()["error"]["code"] == "mfa_required"
    assert off.status_code == 204
    assert _login(enrolled.user).status_code == 200
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "mfa_not_enabled"
    assert not TOTPDevice.objects.filter(user=enrolled.user).exists()
    assert not StaticToken.objects.filter(device__user=enrolled.user).exists()
    assert _actions(enrolled.user) == ["auth.mfa_enabled", "auth.mfa_disabled"]


def test_a_recovery_code_also_turns_it_off() -> None:
    enrolled = _enrol()

    off = enrolled.client.delete("/api/v1/auth/mfa/totp", {"otp": enrolled.recovery_codes[0]}, format="json")

    assert off.status_code == 204
    assert _login(enrolled.user).status_code == 200


def test_failed_sign_ins_are_throttled_per_username_and_address(settings: Any) -> None:
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    user, _ = _owner()
    other, _ = _owner()

    failures = [_login(user, password="not-it").status_code for _ in range(3)]
    locked = _login(user)  # even with the right password
    unaffected = _login(other)

    assert failures == [401, 401, 401]
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "rate_limited"
    assert set(locked.json()["error"]) == {"code", "message", "details"}
    assert 0 < int(locked["Retry-After"]) <= settings.ADMIN_LOGIN_WINDOW_SECONDS
    assert unaffected.status_code == 200


def test_wrong_codes_count_as_failed_sign_ins(settings: Any, no_device_delay: None) -> None:
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    enrolled = _enrol()

    failures = [_login(enrolled.user, otp=_wrong(enrolled)).status_code for _ in range(3)]
    locked = _login(enrolled.user, otp=enrolled.code(steps_ahead=1))

    assert failures == [401, 401, 401]
    assert locked.status_code == 429
    assert "Retry-After" in locked


def test_a_wrong_code_delays_the_device(settings: Any) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 60  # 60 s after the first wrong code (1 s by default)
    enrolled = _enrol()

    wrong = _login(enrolled.user, otp=_wrong(enrolled))
    right_too_soon = _login(enrolled.user, otp=enrolled.code(steps_ahead=1))

    assert wrong.status_code == 401
    assert right_too_soon.status_code == 429
    assert right_too_soon.json()["error"]["code"] == "mfa_throttled"
    assert 0 < int(right_too_soon["Retry-After"]) <= 60


def test_the_endpoints_need_a_signed_in_user() -> None:
    anonymous = APIClient()

    assert anonymous.get("/api/v1/auth/mfa/totp").status_code == 401
    assert anonymous.post("/api/v1/auth/mfa/totp", {"password": PASSWORD}, format="json").status_code == 401
    assert anonymous.post("/api/v1/auth/mfa/totp/confirm", {"token": "1"}, format="json").status_code == 401
