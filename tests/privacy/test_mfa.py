"""TOTP for staff in the admin (django-otp), recovery codes, and the admin login throttle."""

from __future__ import annotations

import importlib
import re
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEntry

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


def test_a_recovery_code_from_the_command_works_once_and_is_stored_only_as_a_digest(
    staff: User, mfa_on: None
) -> None:
    # given a recovery code printed by `manage.py addstatictoken` for the first login
    out = StringIO()
    call_command("addstatictoken", "operator", stdout=out)
    code = out.getvalue().strip()
    device = StaticDevice.objects.get(user=staff)
    stored = list(StaticToken.objects.filter(device=device).values_list("token", flat=True))
    assert len(stored) == 1 and code.replace("-", "") not in stored[0]  # the database holds no usable code

    # when the stored form is typed as a code, then the code itself (once, then again)
    as_stored = _login(Client(), token=stored[0], device=device)
    StaticDevice.objects.get(pk=device.pk).throttle_reset()  # django-otp's delay after a wrong code
    first, second = Client(), Client()
    used = _login(first, token=code.upper(), device=device)  # as typed: case and dashes do not matter
    reused = _login(second, token=code, device=device)

    # then the digest opens nothing, and the code opens the admin once only
    assert as_stored.status_code == 200
    assert used.status_code == 302 and first.get("/admin/").status_code == 200
    assert reused.status_code == 200 and second.get("/admin/").status_code == 302
    assert StaticToken.objects.filter(device=device).count() == 0
    assert AuditEntry.objects.filter(action="auth.recovery_codes_issued", target_id=str(staff.pk)).exists()


def test_the_command_refuses_a_chosen_code(staff: User) -> None:
    with pytest.raises(CommandError, match="shell's history"):
        call_command("addstatictoken", "operator", "--token", "letmein1")
    assert not StaticToken.objects.exists()


def test_the_admin_issues_recovery_codes_once_and_never_shows_them_again(staff: User) -> None:
    # given a staff session and a recovery device of another operator with an old code
    other = User.objects.create_user("second", "second@example.test", PASSWORD, is_staff=True)
    device = StaticDevice.objects.create(user=other, name="admin-recovery")
    StaticToken.objects.create(device=device, token="0" * 16)
    client = Client()
    client.force_login(staff)

    # when the operator runs the "issue new recovery codes" action on it
    response = client.post(
        "/admin/otp_static/staticdevice/",
        {"action": "issue_codes", "_selected_action": [device.pk]},
    )

    # then the page lists ten new codes, uncached; the old code is gone and only digests are stored
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    codes = re.findall(r"<code>([a-z2-7]{4}(?:-[a-z2-7]{4}){3})</code>", response.content.decode())
    assert len(codes) == 10
    stored = set(StaticToken.objects.filter(device=device).values_list("token", flat=True))
    assert len(stored) == 10 and "0" * 16 not in stored
    assert not {c.replace("-", "") for c in codes} & stored
    # and the device's page shows how many are left, never the codes
    page = client.get(f"/admin/otp_static/staticdevice/{device.pk}/change/").content.decode()
    assert "codes left" in page.lower() and not any(c in page for c in codes)


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


def test_codes_stored_in_clear_before_the_upgrade_still_work_after_it(staff: User, mfa_on: None) -> None:
    # given a code django-otp's own command stored in clear, and the API's device (digests already)
    from django.apps import apps

    from coliseum.mfa import recovery_code_digest

    migration = importlib.import_module("coliseum.privacy.migrations.0002_recovery_codes_digested")
    device = StaticDevice.objects.create(user=staff, name="backup")
    StaticToken.objects.create(device=device, token="rcv4k2m9")
    api = StaticDevice.objects.create(user=staff, name="api-recovery")
    StaticToken.objects.create(device=api, token=recovery_code_digest("abcdabcdabcdabcd"))

    # when the migration runs
    migration.digest_clear_codes(apps, None)

    # then no code is left in clear, the API's digest is untouched, and the old code still signs in once
    assert StaticToken.objects.get(device=device).token == recovery_code_digest("rcv4k2m9")
    assert StaticToken.objects.get(device=api).token == recovery_code_digest("abcdabcdabcdabcd")
    client = Client()
    assert _login(client, token="rcv4k2m9", device=device).status_code == 302
    assert client.get("/admin/").status_code == 200
