"""Security review (issue 16, findings 2 and 4): the sign-in throttle cannot be dodged with X-Forwarded-For,
and concurrent refreshes with one refresh token give one session, not six."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model

from audit.models import AuditEntry
from tests.factories import UserFactory

WRONG = {"username": "ana", "password": "not-her-password"}


@pytest.mark.django_db
def test_rotating_x_forwarded_for_does_not_reset_the_sign_in_throttle(api_client: Any) -> None:
    UserFactory.create(username="ana")

    statuses = [
        api_client.post(
            "/api/v1/auth/token", WRONG, format="json", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}"
        ).status_code
        for n in range(35)
    ]

    first_refusal = statuses.index(429)  # raises if the guesses were never cut off
    assert first_refusal <= 30
    assert set(statuses[:first_refusal]) == {401}
    assert set(statuses[first_refusal:]) == {429}


@pytest.mark.django_db
def test_behind_a_named_proxy_each_forwarded_client_has_its_own_budget(
    api_client: Any, settings: Any
) -> None:
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]  # the test client's REMOTE_ADDR plays the proxy
    UserFactory.create(username="ana")

    statuses = [
        api_client.post(
            "/api/v1/auth/token",
            WRONG,
            format="json",
            # A client may prepend anything; only the hop the proxy added counts.
            HTTP_X_FORWARDED_FOR=f"10.9.9.9, 203.0.113.{n}",
        ).status_code
        for n in range(35)
    ]
    ana = get_user_model().objects.get(username="ana")
    failures = AuditEntry.objects.filter(action="auth.login_failed", target_id=str(ana.pk))
    audited = set(failures.values_list("ip", flat=True))

    assert set(statuses) == {401}
    assert audited == {f"203.0.113.{n}" for n in range(35)}


@pytest.mark.django_db
def test_an_untrusted_peer_cannot_name_the_client_in_the_audit_log(api_client: Any) -> None:
    ana = UserFactory.create(username="ana")

    api_client.post("/api/v1/auth/token", WRONG, format="json", HTTP_X_FORWARDED_FOR="203.0.113.7")

    failures = AuditEntry.objects.filter(action="auth.login_failed", target_id=str(ana.pk))
    assert list(failures.values_list("ip", flat=True)) == ["127.0.0.1"]


@pytest.mark.django_db(transaction=True)
def test_six_concurrent_refreshes_with_one_token_leave_no_live_session(live_server: Any) -> None:
    UserFactory.create(username="ana")
    base = live_server.url
    login = requests.post(
        f"{base}/api/v1/auth/token", json={"username": "ana", "password": "correct-horse-battery"}, timeout=10
    )
    refresh = login.json()["refresh"]

    def attempt(_: int) -> requests.Response:
        return requests.post(f"{base}/api/v1/auth/token/refresh", json={"refresh": refresh}, timeout=20)

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(attempt, range(6)))
    winners = [a.json()["refresh"] for a in answers if a.status_code == 200]
    later = [
        requests.post(f"{base}/api/v1/auth/token/refresh", json={"refresh": w}, timeout=10).status_code
        for w in winners
    ]

    assert len(winners) <= 1  # rotation is atomic: at most one request rotated the token
    assert sorted(a.status_code for a in answers).count(401) >= 5
    assert all(code == 401 for code in later)  # the replays revoked the sign-in's family, the winner's too
