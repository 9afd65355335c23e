"""TOTP for staff in the admin (django-otp), recovery codes, and the admin login throttle."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

PASSWORD = "correct-horse-battery"


@pytest.fixture
def staff(db: Any) -> User:
    return User.objects.create_superuser("operator", "operator@example.test", PASSWORD)


@pytest.fixture
def mfa_on(settings: Any) -> None:
    settings.ADMIN_MFA_REQUIRED = True


def _login(client: Client, password: str = PASSWORD, token: str = "", device: Any = None) -> Any:
    """The admin login form: password, then the chosen device (django-otp asks for it) and its token."""
    return client.post(
        "/admin/login/?next=/admin/",
        {
            "username": "operator",
            "password": password,
            "otp_device": device.persistent_id if device is not None else "",
            "otp_token": token,
        },
    )


def _current_totp(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return str(totp.token()).zfill(device.digits)


def test_a_password_alone_does_not_open_the_admin_when_mfa_is_required(staff: User, mfa_on: None) -> None:
    # given a staff user with a TOTP device, signed in by password only (a session without OTP verification)
    TOTPDevice.objects.create(user=staff, name="phone")
    client = Client()
    client.force_login(staff)

    # when they open the admin, or try the login form without a token
    index = client.get("/admin/")
    no_token = _login(Client())

    # then they are sent to the login page, which asks for the token
    assert index.status_code == 302 and index["Location"].startswith("/admin/login/")
    assert no_token.status_code == 200 and b"otp_token" in no_token.content


def test_totp_token_opens_the_admin(staff: User, mfa_on: None) -> None:
    # given a staff user with a TOTP app
    device = TOTPDevice.objects.create(user=staff, name="phone")
    client, other = Client(), Client()

    # when they sign in with password + the current code
    response = _login(client, token=_current_totp(device), device=device)

    # then the admin opens
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200

    # and a wrong code is refused (the form again, no session)
    wrong = _login(other, token="000000" if _current_totp(device) != "000000" else "111111", device=device)
    assert wrong.status_code == 200 and other.get("/admin/").status_code == 302


def test_a_recovery_code_works_once(staff: User, mfa_on: None) -> None:
    # given recovery codes (django-otp's static device)
    device = StaticDevice.objects.create(user=staff, name="recovery")
    StaticToken.objects.create(device=device, token="rcv4k2m9")

    # when a code is used to sign in, then again
    first, second = Client(), Client()
    used = _login(first, token="rcv4k2m9", device=device)
    reused = _login(second, token="rcv4k2m9", device=device)

    # then it opens the admin once only
    assert used.status_code == 302 and first.get("/admin/").status_code == 200
    assert reused.status_code == 200 and second.get("/admin/").status_code == 302
    assert StaticToken.objects.filter(device=device).count() == 0


def test_without_the_setting_a_staff_session_opens_the_admin(staff: User) -> None:
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200


def test_failed_admin_logins_are_throttled(staff: User, settings: Any) -> None:
    # given a limit of 3 failed attempts
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    client = Client()
    for _ in range(3):
        assert _login(client, password="wrong-password").status_code == 200

    # when the right password comes next
    blocked = _login(client)

    # then it is refused with 429 until the window passes
    assert blocked.status_code == 429 and blocked["Retry-After"] == str(settings.ADMIN_LOGIN_WINDOW_SECONDS)
    assert client.get("/admin/").status_code == 302


def test_the_otp_login_page_satisfies_the_csp(mfa_on: None, db: Any) -> None:
    from .test_security import _assert_csp_clean

    response = Client().get("/admin/login/")
    assert response.status_code == 200 and b"otp_token" in response.content
    _assert_csp_clean(response)
