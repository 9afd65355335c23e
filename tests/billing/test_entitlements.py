"""Plan resolution, operator assignment and overrides, the entitlements cache, grace periods."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from billing import tasks as billing_tasks
from billing.entitlements import cheapest_plan_allowing, entitlements_for
from billing.models import BillingAccount, EntitlementOverride
from billing.services import (
    entitlement_override_clear,
    entitlement_override_set,
    plans_refresh_due,
    tenant_plan_assign,
    tenant_plan_unassign,
)
from coliseum.models import Tenant
from tests.factories import TenantFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.clock]


def _stripe_account(tenant: Tenant, **fields: Any) -> BillingAccount:
    defaults: dict[str, Any] = {"subscription_status": "active", "subscription_plan": "pro"}
    defaults.update(fields)
    account, _ = BillingAccount.objects.update_or_create(tenant=tenant, defaults=defaults)
    return account


def test_a_tenant_with_neither_assignment_nor_subscription_is_basic() -> None:
    # given a new tenant
    tenant = TenantFactory.create()
    # when its entitlements are read
    ent = entitlements_for(tenant)
    # then it has Basic's
    assert ent.plan == "basic"
    assert ent.leaderboard_windows == ("24h", "7d")
    assert ent.api_requests_per_minute == 60
    assert ent.live_feed is False


def test_the_cheapest_plan_allowing_a_feature_is_named() -> None:
    assert cheapest_plan_allowing(lambda e: e.live_feed) == "enterprise"
    assert cheapest_plan_allowing(lambda e: e.leaderboard_filters) == "pro"
    assert cheapest_plan_allowing(lambda e: e.api_requests_per_minute > 10**6) is None


def test_operator_assignment_wins_over_stripe_and_unassign_returns_to_stripe() -> None:
    # given a tenant paying for Pro through Stripe
    tenant = TenantFactory.create()
    _stripe_account(tenant)
    tenant_plan_unassign(tenant=tenant, actor="system")  # resolves Stripe's plan
    assert Tenant.objects.get(pk=tenant.pk).plan == "pro"
    operator = UserFactory.create(is_staff=True)
    # when an operator assigns Enterprise
    tenant_plan_assign(tenant=tenant, plan="enterprise", actor=operator)
    # then Enterprise is in force, audited as assigned and as a plan change by the operator
    assert Tenant.objects.get(pk=tenant.pk).plan == "enterprise"
    assert entitlements_for(tenant).live_feed is True
    changed = AuditEntry.objects.filter(tenant=tenant, action="plan.changed").order_by("at", "id").last()
    assert changed is not None
    assert changed.details["to"] == "enterprise" and changed.actor_user == operator
    assert AuditEntry.objects.filter(tenant=tenant, action="plan.assigned").count() == 1
    # when the assignment is removed
    tenant_plan_unassign(tenant=tenant, actor=operator)
    # then Stripe's plan is back
    assert Tenant.objects.get(pk=tenant.pk).plan == "pro"
    assert AuditEntry.objects.filter(tenant=tenant, action="plan.unassigned").count() == 1


def test_unassign_without_subscription_falls_to_basic() -> None:
    tenant = TenantFactory.create()
    tenant_plan_assign(tenant=tenant, plan="pro")
    tenant_plan_unassign(tenant=tenant)
    assert Tenant.objects.get(pk=tenant.pk).plan == "basic"
    assert entitlements_for(tenant).plan == "basic"


def test_assigning_an_unknown_plan_is_refused() -> None:
    tenant = TenantFactory.create()
    with pytest.raises(ValueError):
        tenant_plan_assign(tenant=tenant, plan="platinum")
    assert not BillingAccount.objects.filter(tenant=tenant, operator_plan="platinum").exists()


def test_a_plan_change_is_seen_at_once_even_through_a_stale_tenant_instance() -> None:
    # given a consumer that loaded its tenant while on Basic and read (and cached) its entitlements
    tenant = TenantFactory.create()
    stale = Tenant.objects.get(pk=tenant.pk)
    assert entitlements_for(stale).live_feed is False
    # when the plan changes elsewhere
    tenant_plan_assign(tenant=Tenant.objects.get(pk=tenant.pk), plan="enterprise")
    # then the next read through the old instance sees it (what the WebSocket consumer checks)
    assert stale.plan == "basic"
    assert entitlements_for(stale).live_feed is True


def test_entitlements_cost_one_query_cold_and_none_warm(django_assert_num_queries: Any) -> None:
    # given a Pro tenant with an override, its entitlements not cached
    tenant = TenantFactory.create()
    tenant_plan_assign(tenant=tenant, plan="pro")
    entitlement_override_set(tenant=tenant, name="leaderboard_depth", value=250)
    # then the first read is one query, and later ones none
    with django_assert_num_queries(1):
        assert entitlements_for(tenant).leaderboard_depth == 250
    with django_assert_num_queries(0):
        ent = entitlements_for(tenant)
    assert ent.plan == "pro" and ent.leaderboard_depth == 250


def test_an_override_replaces_one_entitlement_is_audited_and_can_be_cleared() -> None:
    # given a Basic tenant and an operator
    tenant = TenantFactory.create()
    operator = UserFactory.create(is_staff=True)
    assert entitlements_for(tenant).api_requests_per_minute == 60
    # when the operator raises its API rate and unlocks the all-time window
    entitlement_override_set(tenant=tenant, name="api_requests_per_minute", value=300, actor=operator)
    entitlement_override_set(
        tenant=tenant, name="leaderboard_windows", value=["24h", "7d", "all"], actor=operator
    )
    # then only those entitlements change, at once, and each change is audited
    ent = entitlements_for(tenant)
    assert ent.api_requests_per_minute == 300
    assert ent.leaderboard_windows == ("24h", "7d", "all")
    assert ent.plan == "basic" and ent.leaderboard_depth == 10
    assert AuditEntry.objects.filter(tenant=tenant, action="entitlement.overridden").count() == 2
    # when one is cleared
    assert entitlement_override_clear(tenant=tenant, name="api_requests_per_minute", actor=operator)
    # then the plan's value is back
    assert entitlements_for(tenant).api_requests_per_minute == 60
    assert AuditEntry.objects.filter(tenant=tenant, action="entitlement.override_cleared").count() == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("api_requests_per_minute", "lots"),
        ("api_requests_per_minute", -1),
        ("live_feed", 1),
        ("leaderboard_windows", ["forever"]),
        ("no_such_entitlement", True),
    ],
)
def test_an_override_of_the_wrong_type_is_refused(name: str, value: Any) -> None:
    tenant = TenantFactory.create()
    with pytest.raises(ValueError):
        entitlement_override_set(tenant=tenant, name=name, value=value)
    assert EntitlementOverride.objects.filter(tenant=tenant).count() == 0
    assert AuditEntry.objects.filter(tenant=tenant, action="entitlement.overridden").count() == 0


def test_past_due_keeps_the_plan_for_the_grace_period_then_falls_to_basic(settings: Any) -> None:
    # given a Pro subscription past due for 6 of the 7 grace days
    settings.BILLING_PAST_DUE_GRACE_DAYS = 7
    tenant = TenantFactory.create()
    account = _stripe_account(
        tenant, subscription_status="past_due", past_due_since=timezone.now() - timedelta(days=6)
    )
    tenant_plan_unassign(tenant=tenant)
    # then it still has Pro
    assert entitlements_for(tenant).plan == "pro"
    # when the grace period has run out
    BillingAccount.objects.filter(pk=account.pk).update(
        past_due_since=timezone.now() - timedelta(days=7, seconds=1)
    )
    # then the beat job drops it to Basic, audited
    assert billing_tasks.plans_refresh_due.apply().result == 1
    assert Tenant.objects.get(pk=tenant.pk).plan == "basic"
    assert entitlements_for(tenant).plan == "basic"
    entry = AuditEntry.objects.filter(tenant=tenant, action="plan.changed").order_by("id").last()
    assert entry is not None and entry.details == {
        "from": "pro",
        "to": "basic",
        "source": "default",
        "reason": "period_lapsed",
    }
    # and running it again changes nothing
    assert plans_refresh_due() == 0


def test_grace_period_end_is_applied_lazily_by_the_next_entitlements_read(settings: Any) -> None:
    # given Pro entitlements read (and cached) half a second before the grace period ends
    settings.BILLING_PAST_DUE_GRACE_DAYS = 7
    tenant = TenantFactory.create()
    since = timezone.now() - timedelta(days=7) + timedelta(seconds=0.5)
    _stripe_account(tenant, subscription_status="past_due", past_due_since=since)
    tenant_plan_unassign(tenant=tenant)
    assert entitlements_for(tenant).plan == "pro"
    # when a gate reads them again after the deadline, before any beat job ran
    time.sleep(0.6)
    ent = entitlements_for(tenant)
    # then Basic is in force and Tenant.plan follows
    assert ent.plan == "basic"
    assert Tenant.objects.get(pk=tenant.pk).plan == "basic"


def test_canceled_subscription_keeps_the_plan_until_period_end() -> None:
    tenant = TenantFactory.create()
    account = _stripe_account(
        tenant, subscription_status="canceled", current_period_end=timezone.now() + timedelta(days=3)
    )
    tenant_plan_unassign(tenant=tenant)
    assert Tenant.objects.get(pk=tenant.pk).plan == "pro"
    BillingAccount.objects.filter(pk=account.pk).update(
        current_period_end=timezone.now() - timedelta(seconds=1)
    )
    assert plans_refresh_due() == 1
    assert Tenant.objects.get(pk=tenant.pk).plan == "basic"


def test_gates_keep_answering_from_the_database_when_redis_is_down(settings: Any) -> None:
    # given an Enterprise tenant and a Redis that refuses connections
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from billing.throttles import TenantPlanThrottle
    from tests.factories import MembershipFactory

    tenant = TenantFactory.create(plan="enterprise")
    member = MembershipFactory.create(tenant=tenant)
    dead = {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    dead["OPTIONS"] = {**dead["OPTIONS"], "SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2}
    settings.CACHES = {"default": dead}
    # when a gate reads the entitlements and the throttle counts a request
    ent = entitlements_for(tenant)
    request = Request(APIRequestFactory().get("/api/v1/subscriptions"))
    request.user = member.user
    allowed = TenantPlanThrottle().allow_request(request, None)
    # then both answer: the plan from the database, the request let through
    assert ent.plan == "enterprise" and ent.live_feed is True
    assert allowed is True
