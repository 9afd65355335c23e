import pytest

from audit.models import AuditEntry
from coliseum.models import ApiKey, Membership, Role
from coliseum.services import api_key_create
from tests.factories import ArtistFactory, MembershipFactory, ShowFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_landing_page_links_to_the_admin_the_api_docs_and_the_jumbotron(client):
    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    for href in ('href="/admin/"', 'href="/api/docs/"', 'href="/jumbotron/"'):
        assert href in html
    assert "coliseum/coliseum.css" in html


@pytest.fixture
def operator_client(client):
    operator = UserFactory.create(is_staff=True, is_superuser=True)
    client.force_login(operator)
    return client


def test_every_core_admin_changelist_and_form_loads_for_a_superuser(operator_client):
    tenant = TenantFactory.create()
    membership = MembershipFactory.create(tenant=tenant)
    artist = ArtistFactory.create(tenant=tenant)
    show = ShowFactory.create(tenant=tenant)
    show.lineup.add(artist)
    key = api_key_create(tenant=tenant, kind="webhook").key

    index = operator_client.get("/admin/")
    assert index.status_code == 200 and "coliseum/admin.css" in index.content.decode()
    for model in ("tenant", "membership", "artist", "show", "apikey"):
        assert operator_client.get(f"/admin/coliseum/{model}/").status_code == 200, model
    for model, obj in (("tenant", tenant), ("membership", membership), ("artist", artist), ("show", show)):
        assert operator_client.get(f"/admin/coliseum/{model}/{obj.pk}/change/").status_code == 200, model
    page = operator_client.get(f"/admin/coliseum/apikey/{key.pk}/change/")
    assert page.status_code == 200
    assert key.secret_encrypted not in page.content.decode()
    assert "Coliseum" in page.content.decode()


def test_admin_revoke_action_revokes_through_the_service_and_audits(operator_client):
    tenant = TenantFactory.create()
    keys = [api_key_create(tenant=tenant, kind="write").key for _ in range(2)]

    response = operator_client.post(
        "/admin/coliseum/apikey/", {"action": "revoke", "_selected_action": [k.pk for k in keys]}
    )

    assert response.status_code == 302
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 0
    assert AuditEntry.objects.filter(action="api_key.revoked").count() == 2
    active = operator_client.get("/admin/coliseum/apikey/?status=active").content.decode()
    revoked = operator_client.get("/admin/coliseum/apikey/?status=revoked").content.decode()
    assert all(k.key_id not in active for k in keys)
    assert all(k.key_id in revoked for k in keys)


def test_admin_role_change_is_audited(operator_client):
    membership = MembershipFactory.create(role=Role.VIEWER)

    response = operator_client.post(
        f"/admin/coliseum/membership/{membership.pk}/change/",
        {"user": membership.user_id, "tenant": membership.tenant_id, "role": "admin"},
    )

    assert response.status_code == 302
    assert Membership.objects.get(pk=membership.pk).role == "admin"
    entry = AuditEntry.objects.get(action="membership.role_changed")
    assert entry.details["from"] == "viewer" and entry.details["to"] == "admin"


def test_admin_needs_a_staff_login(client):
    response = client.get("/admin/coliseum/tenant/")

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_refuses_a_lineup_with_another_tenants_artist(operator_client):
    show = ShowFactory.create(title="Gig")
    own = ArtistFactory.create(tenant=show.tenant)
    stranger = ArtistFactory.create(name="Stranger")

    response = operator_client.post(
        f"/admin/coliseum/show/{show.pk}/change/",
        {
            "tenant": show.tenant_id,
            "external_id": show.external_id,
            "title": "Gig",
            "lineup": [own.pk, stranger.pk],
        },
    )

    assert response.status_code == 200  # the form again, with the error
    assert "Not artists of" in response.content.decode()
    assert list(show.lineup.all()) == []
