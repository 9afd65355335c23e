"""The web surface: CSP and the other security headers on every page, CSRF on session-authenticated changes,
and `manage.py check --deploy` with production settings."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from coliseum.models import Role
from coliseum.privacy.models import PrivacyRequest
from tests.factories import MembershipFactory, TenantFactory

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = re.compile(r"<script\b([^>]*)>", re.I)
_INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
_STYLE_ATTR = re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I)
_STYLE_TAG = re.compile(r"<style\b", re.I)
_EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.I)


def _assert_csp_clean(response: Any) -> None:
    """The response carries the policy and its HTML needs nothing the policy forbids."""
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    html = response.content.decode()
    for attrs in _SCRIPT.findall(html):
        # executable scripts come from a file; JSON data blocks are not executed
        assert "src=" in attrs or 'type="application/json"' in attrs, attrs
    assert not _STYLE_TAG.search(html)
    assert not _STYLE_ATTR.search(html), _STYLE_ATTR.search(html)
    assert not _INLINE_HANDLER.search(html), _INLINE_HANDLER.search(html)
    assert not _EXTERNAL.search(html), _EXTERNAL.search(html)
    assert response["X-Content-Type-Options"] == "nosniff"
    # strict-origin-when-cross-origin everywhere; pages with a token in their URL (jumbotron) send none
    assert response["Referrer-Policy"] in ("strict-origin-when-cross-origin", "no-referrer")


@pytest.fixture
def operator(db: Any) -> User:
    return User.objects.create_superuser("operator", "operator@example.test", "correct-horse-battery")


def test_landing_and_admin_pages_satisfy_the_policy(operator: User) -> None:
    anonymous = Client()
    _assert_csp_clean(anonymous.get("/"))
    _assert_csp_clean(anonymous.get("/admin/login/"))
    staff = Client()
    staff.force_login(operator)
    for url in (
        "/admin/",
        "/admin/privacy/retentionpolicy/",
        "/admin/privacy/retentionpolicy/add/",
        "/admin/privacy/retentionrun/",
        "/admin/audit/auditentry/",
    ):
        response = staff.get(url)
        assert response.status_code == 200, url
        _assert_csp_clean(response)


def test_the_jumbotron_satisfies_the_policy(db: Any, settings: Any) -> None:
    settings.WEBSOCKET_BASE_URL = "ws://127.0.0.1:9001"  # the WebSocket server on its own port
    member = MembershipFactory.create(role=Role.VIEWER, tenant=TenantFactory.create(plan="enterprise"))
    client = Client()
    client.force_login(member.user)
    response = client.get("/jumbotron/", {"metric": "plays", "window": "24h"})
    assert response.status_code == 200
    _assert_csp_clean(response)
    # the live feed's WebSocket: the public origin's wss twin and the WebSocket server's own origin
    directives = {d.strip() for d in response["Content-Security-Policy"].split(";")}
    assert "connect-src 'self' wss://coliseum.test ws://127.0.0.1:9001" in directives


def test_session_authenticated_changes_need_the_csrf_token(db: Any) -> None:
    # given an owner logged in with a session (the browser case), no CSRF token
    owner = MembershipFactory.create(role=Role.OWNER).user
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)

    # when it posts an export request
    response = client.post("/api/v1/privacy/exports", {"user_id": "fan-1"}, format="json")

    # then it is refused in the error envelope and nothing is created
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]
    assert PrivacyRequest.objects.count() == 0


def test_check_deploy_is_clean_with_production_settings() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "coliseum.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "coliseum.example.com",
        "PUBLIC_BASE_URL": "https://coliseum.example.com",
    }
    proc = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    issues = set(re.findall(r"\(([\w.]+\.[EW]\d{3})\)", proc.stdout + proc.stderr))
    # Schema-naming warnings of drf-spectacular are not deployment settings (owned by the schema's apps).
    assert issues - {"drf_spectacular.W001"} == set(), proc.stdout + proc.stderr
