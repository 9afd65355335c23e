"""Every audited action listed in the issue that exists today writes its entry: one walk, one case each.

Each case performs the action through its public endpoint or service (never by calling audit_record) and
then finds exactly the entry it must have written. Add a case when an app adds an audited action."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client, RequestFactory
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEntry
from audit.services import audit_purge_older_than
from coliseum.models import ApiKeyKind, Membership, Role, Tenant
from tests.factories import MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


@dataclass
class World:
    tenant: Tenant
    owner: User
    staff: User

    def api(self, user: User | None = None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    def admin(self) -> Client:
        client = Client()
        client.force_login(self.staff)
        return client


@pytest.fixture
def world() -> World:
    tenant = TenantFactory.create(plan="enterprise")
    owner = MembershipFactory.create(tenant=tenant, role=Role.OWNER).user
    staff = UserFactory.create(is_staff=True, is_superuser=True)
    return World(tenant=tenant, owner=owner, staff=staff)


def login_succeeded(w: World) -> None:
    response = w.api().post(
        "/api/v1/auth/token",
        {"username": w.owner.username, "password": "correct-horse-battery"},
        format="json",
    )
    assert response.status_code == 200


def login_failed(w: World) -> None:
    response = w.api().post(
        "/api/v1/auth/token", {"username": w.owner.username, "password": "wrong-horse"}, format="json"
    )
    assert response.status_code == 401


def refresh_failed(w: World) -> None:
    response = w.api().post("/api/v1/auth/token/refresh", {"refresh": "not-a-token"}, format="json")
    assert response.status_code == 401


def tenant_created(w: World) -> None:
    from coliseum.services import tenant_create

    tenant_create(slug="walked-tenant", name="Walked", owner=w.owner, actor=w.owner)


def membership_created(w: World) -> None:
    from coliseum.services import membership_create

    membership_create(tenant=w.tenant, user=UserFactory.create(), role=Role.VIEWER, actor=w.owner)


def membership_role_changed(w: World) -> None:
    from coliseum.services import membership_role_change

    membership = MembershipFactory.create(tenant=w.tenant, role=Role.VIEWER)
    membership_role_change(membership=membership, role=Role.ANALYST, actor=w.owner)


def membership_removed(w: World) -> None:
    from coliseum.services import membership_remove

    membership: Membership = MembershipFactory.create(tenant=w.tenant, role=Role.VIEWER)
    membership_remove(membership=membership, actor=w.owner)


def api_key_created(w: World) -> None:
    from coliseum.services import api_key_create

    api_key_create(tenant=w.tenant, kind=ApiKeyKind.WRITE, name="walk", actor=w.owner)


def api_key_revoked(w: World) -> None:
    from coliseum.services import api_key_create, api_key_revoke

    issued = api_key_create(tenant=w.tenant, kind=ApiKeyKind.WRITE, name="walk", actor=w.owner)
    api_key_revoke(key=issued.key, actor=w.owner)


def plan_assigned(w: World) -> None:
    from billing.services import tenant_plan_assign

    tenant_plan_assign(tenant=w.tenant, plan="pro", actor=w.staff)


def report_created(w: World) -> None:
    from reports.services.reports import report_request

    today = date.today()
    report_request(
        tenant=w.tenant,
        actor=w.owner,
        kind="tenant",
        format="json",
        start_day=today - timedelta(days=7),
        end_day=today,
    )


def report_downloaded(w: World) -> None:
    from reports.models import Report
    from reports.services.links import report_download_record

    report = Report.objects.create(tenant=w.tenant, kind="tenant", format="json", params={})
    request = RequestFactory().get("/")
    request.user = w.owner
    report_download_record(report=report, actor=w.owner, request=request)


def report_share_link_used(w: World) -> None:
    from reports.models import Report
    from reports.services.links import share_link_use, share_token

    expires = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    report = Report.objects.create(
        tenant=w.tenant, kind="tenant", format="json", params={}, status="ready", share_expires_at=expires
    )
    token = share_token(report=report)
    assert token is not None
    share_link_use(token=token, request=RequestFactory().get("/r/x"))


def report_schedule_created(w: World) -> None:
    from reports.services.schedules import report_schedule_create

    report_schedule_create(
        tenant=w.tenant,
        actor=w.owner,
        kind="tenant",
        format="json",
        frequency="weekly",
        params={},
        recipient_user_ids=[w.owner.pk],
    )


def report_schedule_deleted(w: World) -> None:
    from reports.services.schedules import report_schedule_create, report_schedule_delete

    schedule = report_schedule_create(
        tenant=w.tenant,
        actor=w.owner,
        kind="tenant",
        format="json",
        frequency="weekly",
        params={},
        recipient_user_ids=[w.owner.pk],
    )
    report_schedule_delete(tenant=w.tenant, schedule_id=schedule.pk, actor=w.owner)


def plan_unassigned(w: World) -> None:
    from billing.services import tenant_plan_assign, tenant_plan_unassign

    tenant_plan_assign(tenant=w.tenant, plan="pro", actor=w.staff)
    tenant_plan_unassign(tenant=w.tenant, actor=w.staff)


def entitlement_overridden(w: World) -> None:
    from billing.services import entitlement_override_set

    entitlement_override_set(
        tenant=w.tenant, name="leaderboard_depth", value=25, reason="walk", actor=w.staff
    )


def entitlement_override_cleared(w: World) -> None:
    from billing.services import entitlement_override_clear, entitlement_override_set

    entitlement_override_set(
        tenant=w.tenant, name="leaderboard_depth", value=25, reason="walk", actor=w.staff
    )
    entitlement_override_clear(tenant=w.tenant, name="leaderboard_depth", actor=w.staff)


def admin_add(w: World) -> None:
    response = w.admin().post("/admin/auth/group/add/", {"name": "walkers"})
    assert response.status_code == 302


def admin_change(w: World) -> None:
    group = Group.objects.create(name="walkers")
    response = w.admin().post(f"/admin/auth/group/{group.pk}/change/", {"name": "runners"})
    assert response.status_code == 302


def admin_delete(w: World) -> None:
    group = Group.objects.create(name="walkers")
    response = w.admin().post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302


def audit_exported(w: World) -> None:
    response = w.api(w.owner).get("/api/v1/audit-logs/export.csv")
    assert response.status_code == 200


def audit_purged(w: World) -> None:
    audit_purge_older_than(cutoff=timezone.now() - timedelta(days=365))


def leaderboard_rebuilt(w: World) -> None:
    response = w.admin().post(
        "/admin/leaderboards/tenantboards/", {"action": "rebuild_boards", "_selected_action": [w.tenant.pk]}
    )
    assert response.status_code == 302


def report_rerendered(w: World) -> None:
    from reports.models import Report
    from reports.services.reports import report_rerender

    report = Report.objects.create(tenant=w.tenant, kind="tenant", format="json", params={}, status="failed")
    report_rerender(report=report, actor=w.staff)


def privacy_export_requested(w: World) -> None:
    from coliseum.privacy.services import privacy_export_request

    privacy_export_request(tenant=w.tenant, user_id="fan-walk", actor=w.owner)


def privacy_erasure_requested(w: World) -> None:
    from coliseum.privacy.services import privacy_erasure_request

    privacy_erasure_request(tenant=w.tenant, user_id="fan-walk", actor=w.owner)


def privacy_retention_run(w: World) -> None:
    from coliseum.privacy.retention import retention_run

    run = retention_run()
    assert not run.dry_run


CASES: list[tuple[str, Callable[[World], None], bool]] = [
    # (action, how it happens, whether the entry names the tenant)
    ("auth.login_succeeded", login_succeeded, False),
    ("auth.login_failed", login_failed, False),
    ("auth.refresh_failed", refresh_failed, False),
    ("tenant.created", tenant_created, False),
    ("membership.created", membership_created, True),
    ("membership.role_changed", membership_role_changed, True),
    ("membership.removed", membership_removed, True),
    ("api_key.created", api_key_created, True),
    ("api_key.revoked", api_key_revoked, True),
    ("plan.assigned", plan_assigned, True),
    ("plan.unassigned", plan_unassigned, True),
    ("entitlement.overridden", entitlement_overridden, True),
    ("entitlement.override_cleared", entitlement_override_cleared, True),
    ("report.created", report_created, True),
    ("report.downloaded", report_downloaded, True),
    ("report.share_link_used", report_share_link_used, True),
    ("report_schedule.created", report_schedule_created, True),
    ("report_schedule.deleted", report_schedule_deleted, True),
    ("admin.add", admin_add, False),
    ("admin.change", admin_change, False),
    ("admin.delete", admin_delete, False),
    ("audit.exported", audit_exported, True),
    ("audit.purged", audit_purged, False),
    ("leaderboard.rebuilt", leaderboard_rebuilt, True),
    ("report.rerendered", report_rerendered, True),
    ("privacy.export_requested", privacy_export_requested, True),
    ("privacy.erasure_requested", privacy_erasure_requested, True),
    ("privacy.retention_run", privacy_retention_run, False),
]


@pytest.mark.parametrize(("action", "perform", "names_tenant"), CASES, ids=[c[0] for c in CASES])
def test_each_audited_action_writes_its_entry(
    world: World, action: str, perform: Callable[[World], None], names_tenant: bool
) -> None:
    # given no entry for this action yet
    assert not AuditEntry.objects.filter(action=action).exists()
    # when the action happens through its public path
    perform(world)
    # then exactly one entry records it, with an actor and, for tenant actions, the tenant
    entries = list(AuditEntry.objects.filter(action=action))
    assert len(entries) == 1, [e.action for e in AuditEntry.objects.all()]
    entry = entries[0]
    assert entry.actor_type in ("user", "api_key", "system", "stripe", "anonymous")
    if names_tenant:
        assert entry.tenant_id == world.tenant.pk
