"""The audit-log APIs: tenant owners/admins see their own tenant only; operators see all; CSV for
Enterprise."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEntry
from audit.services import audit_record
from coliseum.models import Role, Tenant
from tests.factories import MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def _member(tenant: Tenant, role: str = Role.ADMIN) -> User:
    membership = MembershipFactory.create(tenant=tenant, role=role)
    return membership.user


def _client(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_tenant_admin_sees_only_their_own_tenants_entries() -> None:
    # given entries in two tenants
    mine, theirs = TenantFactory.create(), TenantFactory.create()
    audit_record(action="plan.assigned", actor="system", tenant=mine, target=mine)
    audit_record(action="plan.assigned", actor="system", tenant=theirs, target=theirs)
    audit_record(action="api_key.created", actor="system", tenant=theirs)
    # when my admin lists the audit log
    response = _client(_member(mine)).get("/api/v1/audit-logs")
    # then only my tenant's entry is there
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(r["action"], r["tenant_id"]) for r in rows] == [("plan.assigned", mine.pk)]


def test_naming_another_tenant_answers_404_and_shows_nothing() -> None:
    mine, theirs = TenantFactory.create(), TenantFactory.create()
    audit_record(action="plan.assigned", actor="system", tenant=theirs)
    response = _client(_member(mine)).get("/api/v1/audit-logs", HTTP_X_TENANT=theirs.slug)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "tenant_not_found"


@pytest.mark.parametrize("role", [Role.ANALYST, Role.VIEWER])
def test_roles_below_admin_are_refused(role: str) -> None:
    tenant = TenantFactory.create()
    response = _client(_member(tenant, role)).get("/api/v1/audit-logs")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "role_required"


def test_anonymous_is_refused() -> None:
    assert APIClient().get("/api/v1/audit-logs").status_code == 401
    assert APIClient().get("/api/v1/admin/audit-logs").status_code == 401


def test_filters_by_action_prefix_actor_target_and_date_range() -> None:
    tenant = TenantFactory.create()
    admin = _member(tenant)
    actor = UserFactory.create(username="operator-ann")
    audit_record(
        action="plan.assigned", actor=actor, tenant=tenant, target_type="coliseum.tenant", target_id=1
    )
    audit_record(
        action="plan.changed", actor="stripe", tenant=tenant, target_type="coliseum.tenant", target_id=2
    )
    audit_record(action="planet.named", actor="system", tenant=tenant)
    audit_record(action="api_key.created", actor="system", tenant=tenant)
    client = _client(admin)

    def actions(**params: str) -> list[str]:
        response = client.get("/api/v1/audit-logs", params)
        assert response.status_code == 200, response.json()
        return sorted(r["action"] for r in response.json()["results"])

    assert actions(action="plan") == ["plan.assigned", "plan.changed"]  # a dotted prefix, not "planet"
    assert actions(action="plan.changed") == ["plan.changed"]
    assert actions(actor="operator-ann") == ["plan.assigned"]
    assert actions(actor="stripe") == ["plan.changed"]
    assert actions(target_type="coliseum.tenant", target_id="2") == ["plan.changed"]
    now = timezone.now()
    assert len(actions(since=(now - timedelta(minutes=5)).isoformat())) == 4
    assert actions(until=(now - timedelta(minutes=5)).isoformat()) == []


def test_bad_filters_answer_400_in_the_envelope() -> None:
    tenant = TenantFactory.create()
    client = _client(_member(tenant))
    response = client.get("/api/v1/audit-logs", {"since": "yesterday-ish"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    response = client.get(
        "/api/v1/audit-logs", {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    )
    assert response.status_code == 400
    response = client.get("/api/v1/audit-logs", {"cursor": "not-a-cursor"})
    assert response.status_code == 404
    assert "error" in response.json()


def test_cursor_pagination_walks_every_entry_once_newest_first() -> None:
    tenant = TenantFactory.create()
    for i in range(7):
        audit_record(action="test.step", actor="system", tenant=tenant, details={"i": i})
    client = _client(_member(tenant))
    seen: list[int] = []
    url: str | None = "/api/v1/audit-logs?page_size=3"
    while url:
        body = client.get(url).json()
        seen += [r["details"]["i"] for r in body["results"]]
        url = body["next"]
    assert seen == [6, 5, 4, 3, 2, 1, 0]


def test_staff_see_every_tenant_and_can_narrow_to_one() -> None:
    a, b = TenantFactory.create(), TenantFactory.create()
    audit_record(action="test.a", actor="system", tenant=a)
    audit_record(action="test.b", actor="system", tenant=b)
    staff = UserFactory.create(is_staff=True)
    client = _client(staff)
    all_actions = {r["action"] for r in client.get("/api/v1/admin/audit-logs").json()["results"]}
    assert {"test.a", "test.b"} <= all_actions
    only_b = client.get("/api/v1/admin/audit-logs", {"tenant": b.slug}).json()["results"]
    assert [r["action"] for r in only_b] == ["test.b"]


def test_the_operator_endpoint_refuses_tenant_owners() -> None:
    tenant = TenantFactory.create()
    response = _client(_member(tenant, Role.OWNER)).get("/api/v1/admin/audit-logs")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_csv_export_needs_the_enterprise_plan() -> None:
    tenant = TenantFactory.create(plan="pro")
    audit_record(action="test.x", actor="system", tenant=tenant)
    response = _client(_member(tenant)).get("/api/v1/audit-logs/export.csv")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "plan_required"
    assert not AuditEntry.objects.filter(action="audit.exported").exists()


def test_enterprise_csv_export_has_own_rows_only_neutralises_formulas_and_is_audited() -> None:
    # given an Enterprise tenant with an entry whose label looks like a spreadsheet formula
    tenant = TenantFactory.create(plan="enterprise")
    other = TenantFactory.create(plan="enterprise")
    audit_record(action="test.mine", actor="=HYPERLINK(evil)", tenant=tenant)
    audit_record(action="test.theirs", actor="system", tenant=other)
    admin = _member(tenant)
    # when the admin exports
    response = _client(admin).get("/api/v1/audit-logs/export.csv", {"action": "test"})
    # then the CSV has a header and only our row, with the formula defused
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))  # type: ignore[attr-defined,arg-type]
    assert rows[0][:6] == ["id", "at", "tenant_id", "actor_type", "actor", "action"]
    assert [r[5] for r in rows[1:]] == ["test.mine"]
    assert rows[1][4] == "'=HYPERLINK(evil)"
    # and the export itself is on the record, for that tenant, by that admin
    exported = AuditEntry.objects.get(action="audit.exported")
    assert exported.tenant_id == tenant.pk
    assert exported.actor_user_id == admin.pk


def test_staff_csv_export_covers_all_tenants() -> None:
    a, b = TenantFactory.create(), TenantFactory.create()
    audit_record(action="test.a", actor="system", tenant=a)
    audit_record(action="test.b", actor="system", tenant=b)
    response = _client(UserFactory.create(is_staff=True)).get(
        "/api/v1/admin/audit-logs/export.csv", {"action": "test"}
    )
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined,arg-type]
    assert "test.a" in body and "test.b" in body


def test_audit_endpoints_are_in_the_openapi_schema() -> None:
    staff = UserFactory.create(is_staff=True)
    response = _client(staff).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    text = response.content.decode()
    for path in (
        "/api/v1/audit-logs",
        "/api/v1/audit-logs/export.csv",
        "/api/v1/admin/audit-logs",
        "/api/v1/admin/audit-logs/export.csv",
        "/api/v1/admin/health",
        "/api/v1/admin/dashboard",
        "/metrics",
    ):
        assert f"{path}:" in text or f'"{path}"' in text, path
