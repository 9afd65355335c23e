"""The audit log in the admin is read-only and searchable; admin changes to any model are audited."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core import checks
from django.test import Client

from audit.admin import AuditedAdminMixin
from audit.models import AuditEntry
from audit.services import audit_record
from tests.factories import ArtistFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> User:
    return UserFactory.create(is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(operator: User) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def test_audit_entries_cannot_be_added_changed_or_deleted_in_the_admin(admin_client: Client) -> None:
    entry = audit_record(action="test.thing", actor="system")
    assert admin_client.get("/admin/audit/auditentry/add/").status_code == 403
    # the change page is a read-only view; posting to it changes nothing
    assert admin_client.get(f"/admin/audit/auditentry/{entry.pk}/change/").status_code == 200
    admin_client.post(f"/admin/audit/auditentry/{entry.pk}/change/", {"action": "test.forged"})
    assert admin_client.get(f"/admin/audit/auditentry/{entry.pk}/delete/").status_code == 403
    response = admin_client.post(
        "/admin/audit/auditentry/",
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )
    assert AuditEntry.objects.get(pk=entry.pk).action == "test.thing"
    assert response.status_code in (200, 302)


def test_the_audit_log_is_searchable_in_the_admin(admin_client: Client) -> None:
    audit_record(action="plan.assigned", actor="system", target_type="coliseum.tenant", target_id="41")
    audit_record(action="api_key.revoked", actor="system", target_type="coliseum.apikey", target_id="77")
    page = admin_client.get("/admin/audit/auditentry/", {"q": "api_key"}).content.decode()
    assert "api_key.revoked" in page
    assert "plan.assigned" not in page


def test_an_admin_change_to_an_app_model_is_audited_with_its_tenant(
    admin_client: Client, operator: User
) -> None:
    # given an artist of some tenant
    artist = ArtistFactory.create(name="Old Name")
    # when an operator renames it in the admin
    form = admin_client.get(f"/admin/coliseum/artist/{artist.pk}/change/")
    assert form.status_code == 200
    data = {
        "tenant": artist.tenant_id,
        "external_id": artist.external_id,
        "name": "New Name",
        "genres": "rock",
        "home_city": artist.home_city,
    }
    response = admin_client.post(f"/admin/coliseum/artist/{artist.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    # then one audit entry names the operator, the artist, its tenant and the changed field (not its value)
    entry = AuditEntry.objects.get(action="admin.change")
    assert entry.actor_user_id == operator.pk
    assert (entry.target_type, entry.target_id) == ("coliseum.artist", str(artist.pk))
    assert entry.tenant_id == artist.tenant_id
    assert "Name" in entry.details["message"][0]["changed"]["fields"]
    assert "New Name" not in str(entry.details["message"])


def test_every_registered_model_admin_is_audited() -> None:
    unaudited = [
        m._meta.label for m, ma in admin.site._registry.items() if not isinstance(ma, AuditedAdminMixin)
    ]
    assert unaudited == []
    assert [m for m in checks.run_checks(tags=[checks.Tags.admin]) if m.id == "audit.W001"] == []


def test_the_admin_index_carries_the_dashboard_for_staff(admin_client: Client) -> None:
    page = admin_client.get("/admin/").content.decode()
    assert 'id="ops-dashboard"' in page
    assert 'data-url="/api/v1/admin/dashboard"' in page
    assert "ops/dashboard.js" in page
    for chart in ("events_per_s", "lag_s", "error_rate", "p95_s", "queue_depth", "workers"):
        assert f'data-chart="{chart}"' in page


def test_bulk_delete_in_the_admin_audits_each_object(admin_client: Client, operator: User) -> None:
    artists = [ArtistFactory.create() for _ in range(2)]
    response = admin_client.post(
        "/admin/coliseum/artist/",
        {"action": "delete_selected", "_selected_action": [a.pk for a in artists], "post": "yes"},
    )
    assert response.status_code == 302
    deleted = AuditEntry.objects.filter(action="admin.delete").order_by("target_id")
    assert sorted(e.target_id for e in deleted) == sorted(str(a.pk) for a in artists)
    assert {e.tenant_id for e in deleted} == {a.tenant_id for a in artists}
    assert all(e.actor_user_id == operator.pk for e in deleted)
