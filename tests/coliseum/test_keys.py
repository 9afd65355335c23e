import pytest

from audit.models import AuditEntry
from coliseum.crypto import decrypt_secret
from coliseum.models import ApiKey, Role
from coliseum.selectors import webhook_key_secret, write_key_authenticate
from coliseum.services import api_key_create, api_key_touch
from tests.factories import MembershipFactory, TenantFactory

pytestmark = pytest.mark.django_db


def test_a_write_key_is_shown_once_stored_hashed_and_authenticates(tenant, member_client):
    client = member_client(Role.ADMIN)

    created = client.post("/api/v1/keys", {"kind": "write", "name": "site"}, format="json")
    listed = client.get("/api/v1/keys")

    assert created.status_code == 201
    secret = created.json()["secret"]
    key = ApiKey.objects.get(key_id=created.json()["key_id"])
    assert secret not in (key.secret_digest, key.secret_encrypted)
    assert "secret" not in listed.json()["results"][0]
    assert secret not in listed.content.decode()
    assert listed.json()["results"][0]["key_id"] == key.key_id
    authenticated = write_key_authenticate(secret)
    assert authenticated is not None and authenticated.tenant == tenant
    assert write_key_authenticate(secret + "x") is None
    assert AuditEntry.objects.filter(action="api_key.created", target_id=str(key.pk)).exists()


def test_a_webhook_secret_is_stored_encrypted_and_read_back_for_hmac(tenant, member_client):
    created = member_client(Role.OWNER).post("/api/v1/keys", {"kind": "webhook"}, format="json").json()

    key = ApiKey.objects.get(key_id=created["key_id"])
    assert created["secret"] not in key.secret_encrypted
    assert decrypt_secret(key.secret_encrypted) == created["secret"]
    found = webhook_key_secret(created["key_id"])
    assert found is not None and found[1] == created["secret"] and found[0].tenant == tenant
    assert webhook_key_secret("whk_nope") is None


def test_a_revoked_write_key_no_longer_authenticates(tenant, member_client):
    client = member_client(Role.ADMIN)
    created = client.post("/api/v1/keys", {"kind": "write"}, format="json").json()
    assert write_key_authenticate(created["secret"]) is not None  # now cached in-process

    revoked = client.delete(f"/api/v1/keys/{created['key_id']}")
    listed = client.get("/api/v1/keys").json()["results"][0]

    assert revoked.status_code == 204
    assert write_key_authenticate(created["secret"]) is None
    assert listed["active"] is False and listed["revoked_at"] is not None
    assert AuditEntry.objects.filter(action="api_key.revoked").count() == 1


def test_a_revoked_webhook_key_no_longer_verifies(tenant, member_client):
    client = member_client(Role.ADMIN)
    created = client.post("/api/v1/keys", {"kind": "webhook"}, format="json").json()
    assert webhook_key_secret(created["key_id"]) is not None

    client.delete(f"/api/v1/keys/{created['key_id']}")

    assert webhook_key_secret(created["key_id"]) is None


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ANALYST])
def test_viewers_and_analysts_cannot_create_or_list_keys(tenant, member_client, role):
    client = member_client(role)

    created = client.post("/api/v1/keys", {"kind": "write"}, format="json")
    listed = client.get("/api/v1/keys")

    assert created.status_code == 403 and created.json()["error"]["code"] == "role_required"
    assert listed.status_code == 403
    assert ApiKey.objects.count() == 0


def test_another_tenants_key_is_not_found_and_stays_active(tenant, member_client):
    other = TenantFactory.create()
    theirs = api_key_create(tenant=other, kind="write").key

    response = member_client(Role.OWNER).delete(f"/api/v1/keys/{theirs.key_id}")
    listed = member_client(Role.OWNER).get("/api/v1/keys").json()

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert listed["count"] == 0


def test_a_tenant_header_naming_a_tenant_you_are_not_in_is_404(tenant, api_client):
    other = TenantFactory.create()
    api_key_create(tenant=other, kind="write")
    mine = MembershipFactory.create(tenant=tenant, role=Role.OWNER)
    api_client.force_authenticate(mine.user)

    response = api_client.get("/api/v1/keys", HTTP_X_TENANT=other.slug)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "tenant_not_found"


@pytest.mark.parametrize(
    "body", [{"kind": "root"}, {}, {"kind": ["write"]}, {"kind": "write", "name": "x" * 101}]
)
def test_bad_key_requests_get_the_envelope_and_create_nothing(tenant, member_client, body):
    response = member_client(Role.OWNER).post("/api/v1/keys", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert ApiKey.objects.count() == 0


def test_touch_records_last_use_at_most_once_a_minute(tenant):
    key = api_key_create(tenant=tenant, kind="write").key

    first = api_key_touch(key_id=key.key_id)
    second = api_key_touch(key_id=key.key_id)

    key.refresh_from_db()
    assert (first, second) == (True, False)
    assert key.last_used_at is not None
