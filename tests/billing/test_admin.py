"""Operators assign plans and override entitlements in the admin; every change is audited."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEntry
from billing.entitlements import entitlements_for
from billing.models import BillingAccount, EntitlementOverride
from coliseum.models import Tenant
from tests.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def _operator_client() -> tuple[Client, object]:
    operator = UserFactory.create(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    return client, operator


def test_an_operator_assigns_and_removes_a_plan_in_the_admin() -> None:
    # given a Basic tenant
    tenant = TenantFactory.create()
    client, operator = _operator_client()
    # when an operator adds a billing account assigning Enterprise
    response = client.post(
        "/admin/billing/billingaccount/add/", {"tenant": tenant.pk, "operator_plan": "enterprise"}
    )
    # then the tenant is on Enterprise at once, audited with the operator as actor
    assert response.status_code == 302
    assert Tenant.objects.get(pk=tenant.pk).plan == "enterprise"
    assert entitlements_for(tenant).live_feed is True
    entry = AuditEntry.objects.get(tenant=tenant, action="plan.changed")
    assert entry.actor_user == operator
    # when the assignment is cleared
    account = BillingAccount.objects.get(tenant=tenant)
    response = client.post(f"/admin/billing/billingaccount/{account.pk}/change/", {"operator_plan": ""})
    assert response.status_code == 302
    # then the tenant falls back to Basic (no subscription), audited
    assert Tenant.objects.get(pk=tenant.pk).plan == "basic"
    assert AuditEntry.objects.filter(tenant=tenant, action="plan.unassigned").count() == 1


def test_an_operator_overrides_an_entitlement_in_the_admin() -> None:
    tenant = TenantFactory.create()
    client, operator = _operator_client()
    response = client.post(
        "/admin/billing/entitlementoverride/add/",
        {"tenant": tenant.pk, "name": "api_requests_per_minute", "value": "300", "reason": "launch week"},
    )
    assert response.status_code == 302
    assert entitlements_for(tenant).api_requests_per_minute == 300
    entry = AuditEntry.objects.get(tenant=tenant, action="entitlement.overridden")
    assert entry.actor_user == operator and entry.details["to"] == 300
    # and deleting it restores the plan's value, audited
    override = EntitlementOverride.objects.get(tenant=tenant)
    response = client.post(f"/admin/billing/entitlementoverride/{override.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert entitlements_for(tenant).api_requests_per_minute == 60
    assert AuditEntry.objects.filter(tenant=tenant, action="entitlement.override_cleared").count() == 1


def test_an_override_of_the_wrong_type_is_refused_by_the_admin_form() -> None:
    tenant = TenantFactory.create()
    client, _ = _operator_client()
    response = client.post(
        "/admin/billing/entitlementoverride/add/",
        {"tenant": tenant.pk, "name": "live_feed", "value": '"yes please"', "reason": ""},
    )
    assert response.status_code == 200
    assert b"takes true or false" in response.content
    assert not EntitlementOverride.objects.exists()
    assert not AuditEntry.objects.filter(tenant=tenant).exists()
