import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import identify_hasher
from django.test import override_settings

from audit.models import AuditEntry
from coliseum.models import Membership, Role, Tenant
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

GOOD_SIGNUP = {
    "username": "marta",
    "email": "marta@example.test",
    "password": "lantern-harbor-91",
    "tenant_name": "Marta Records",
}


def test_signup_creates_a_user_and_a_tenant_they_own_and_signs_them_in(api_client):
    response = api_client.post("/api/v1/auth/signup", GOOD_SIGNUP, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["tenant"]["slug"] == "marta-records"
    assert body["tenant"]["role"] == "owner"
    assert body["tenant"]["plan"] == "basic"
    membership = Membership.objects.get(user__username="marta")
    assert membership.tenant.slug == "marta-records" and membership.role == Role.OWNER
    me = api_client.get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.json()["user"]["username"] == "marta"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"password": "password"}, "password"),  # common
        ({"password": "12345678901"}, "password"),  # numeric
        ({"password": "marta"}, "password"),  # short and like the username
        ({"tenant_name": ""}, "tenant_name"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"reporting_currency": "euro"}, "reporting_currency"),
        ({"username": ["not", "a", "string"]}, "username"),
    ],
)
def test_signup_refuses_bad_input_with_field_errors_and_creates_nothing(api_client, change, field):
    response = api_client.post("/api/v1/auth/signup", {**GOOD_SIGNUP, **change}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert field in response.json()["error"]["details"]
    assert not get_user_model().objects.filter(username="marta").exists()
    assert Tenant.objects.count() == 0


def test_signup_refuses_a_taken_username_or_slug(api_client):
    api_client.post("/api/v1/auth/signup", GOOD_SIGNUP, format="json")

    same_user = api_client.post("/api/v1/auth/signup", {**GOOD_SIGNUP, "tenant_slug": "other"}, format="json")
    same_slug = api_client.post("/api/v1/auth/signup", {**GOOD_SIGNUP, "username": "pablo"}, format="json")

    assert same_user.status_code == 400 and "username" in same_user.json()["error"]["details"]
    assert same_slug.status_code == 400 and "tenant_slug" in same_slug.json()["error"]["details"]
    assert Tenant.objects.count() == 1


@override_settings(
    PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
)
def test_passwords_are_stored_with_argon2_under_the_base_settings(api_client):
    from coliseum.settings import base

    assert base.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")

    api_client.post("/api/v1/auth/signup", GOOD_SIGNUP, format="json")

    stored = get_user_model().objects.get(username="marta").password
    assert stored.startswith("argon2$")
    assert identify_hasher(stored).algorithm == "argon2"
    assert "lantern-harbor-91" not in stored


def test_token_login_success_and_failure_are_audited(api_client):
    user = UserFactory.create(username="ana")

    good = api_client.post(
        "/api/v1/auth/token", {"username": "ana", "password": "correct-horse-battery"}, format="json"
    )
    bad = api_client.post("/api/v1/auth/token", {"username": "ana", "password": "wrong"}, format="json")
    nobody = api_client.post("/api/v1/auth/token", {"username": "ghost", "password": "x"}, format="json")

    assert good.status_code == 200 and set(good.json()) == {"access", "refresh"}
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_credentials"
    assert nobody.status_code == 401
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "target_id"))
    assert actions == [
        ("auth.login_succeeded", str(user.pk)),
        ("auth.login_failed", str(user.pk)),
        ("auth.login_failed", ""),
    ]


def test_refresh_rotates_and_a_replayed_old_token_revokes_the_whole_sign_in(api_client):
    UserFactory.create(username="ana")
    first = api_client.post(
        "/api/v1/auth/token", {"username": "ana", "password": "correct-horse-battery"}, format="json"
    )
    old_refresh = first.json()["refresh"]

    rotated = api_client.post("/api/v1/auth/token/refresh", {"refresh": old_refresh}, format="json")
    replay = api_client.post("/api/v1/auth/token/refresh", {"refresh": old_refresh}, format="json")
    again = api_client.post(
        "/api/v1/auth/token/refresh", {"refresh": rotated.json()["refresh"]}, format="json"
    )

    assert rotated.status_code == 200
    assert rotated.json()["refresh"] != old_refresh
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "token_not_valid"
    # The replay means a copy of the token is loose: the rotated token of the same sign-in dies with it.
    assert again.status_code == 401
    failures = AuditEntry.objects.filter(action="auth.refresh_failed").order_by("id")
    assert [details["reason"] for details in failures.values_list("details", flat=True)] == [
        "reused",
        "reused",
    ]


def test_a_replay_revokes_only_its_own_sign_in(api_client):
    UserFactory.create(username="ana")
    login = {"username": "ana", "password": "correct-horse-battery"}
    laptop = api_client.post("/api/v1/auth/token", login, format="json").json()["refresh"]
    phone = api_client.post("/api/v1/auth/token", login, format="json").json()["refresh"]

    api_client.post("/api/v1/auth/token/refresh", {"refresh": laptop}, format="json")
    api_client.post("/api/v1/auth/token/refresh", {"refresh": laptop}, format="json")  # replayed
    phone_refresh = api_client.post("/api/v1/auth/token/refresh", {"refresh": phone}, format="json")

    assert phone_refresh.status_code == 200


def test_refresh_with_garbage_is_a_401_envelope(api_client):
    response = api_client.post("/api/v1/auth/token/refresh", {"refresh": "not-a-jwt"}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"


def test_access_token_lives_at_most_15_minutes(api_client):
    from rest_framework_simplejwt.tokens import AccessToken

    UserFactory.create(username="ana")
    access = api_client.post(
        "/api/v1/auth/token", {"username": "ana", "password": "correct-horse-battery"}, format="json"
    ).json()["access"]

    token = AccessToken(access)  # type: ignore[arg-type]
    assert token["exp"] - token["iat"] <= 15 * 60


def test_me_lists_every_tenant_with_the_role_there(api_client):
    user = UserFactory.create()
    MembershipFactory.create(user=user, tenant__slug="alpha", role=Role.VIEWER)
    MembershipFactory.create(user=user, tenant__slug="beta", role=Role.ADMIN)
    api_client.force_authenticate(user)

    body = api_client.get("/api/v1/auth/me").json()

    assert body["user"]["username"] == user.username
    assert [(t["slug"], t["role"]) for t in body["tenants"]] == [("alpha", "viewer"), ("beta", "admin")]


def test_me_without_credentials_is_401(api_client):
    response = api_client.get("/api/v1/auth/me")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
