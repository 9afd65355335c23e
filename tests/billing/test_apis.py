"""The subscription API, the plan gates (permission + throttle) and the OpenAPI schema."""

from __future__ import annotations

import time
from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEntry
from billing.entitlements import entitlements_for
from billing.models import BillingAccount
from billing.services import usage_increment
from coliseum.models import Role, Tenant
from tests.factories import MembershipFactory, TenantFactory, UserFactory

from .conftest import Deliver, subscription
from .fakestripe import FakeStripe

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.billing.urls")]


def _client_for(tenant: Tenant, role: str = Role.OWNER) -> APIClient:
    client = APIClient()
    client.force_authenticate(MembershipFactory.create(tenant=tenant, role=role).user)
    return client


def _away_from_a_minute_boundary() -> None:
    """The throttle counts in fixed minutes; start a counting test well inside one."""
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.1)


def test_subscription_detail_shows_plan_entitlements_and_usage(stripe_tenant: Tenant) -> None:
    # given a Basic tenant that ingested 5 events and rendered 2 reports this month
    usage_increment(tenant_id=stripe_tenant.pk, kind="events", amount=5)
    usage_increment(tenant_id=stripe_tenant.pk, kind="reports", amount=2)
    client = _client_for(stripe_tenant)
    # when its owner asks
    response = client.get("/api/v1/subscriptions")
    # then the plan, its entitlements and this month's usage (this call included) are shown
    assert response.status_code == 200
    body = response.json()
    assert body["plan"] == "basic" and body["source"] == "default" and body["status"] is None
    assert body["entitlements"]["api_requests_per_minute"] == 60
    assert body["entitlements"]["leaderboard_windows"] == ["24h", "7d"]
    assert body["usage"]["events"] == 5 and body["usage"]["reports"] == 2
    assert body["usage"]["api_calls"] == 1
    assert client.get("/api/v1/subscriptions").json()["usage"]["api_calls"] == 2


def test_subscription_detail_after_a_stripe_subscription(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe
) -> None:
    deliver("customer.subscription.created", fake_stripe.put(subscription(plan="pro")))
    body = _client_for(stripe_tenant, Role.ADMIN).get("/api/v1/subscriptions").json()
    assert body["plan"] == "pro" and body["source"] == "stripe" and body["status"] == "active"
    assert body["current_period_end"].startswith("2026-12-18")
    assert body["entitlements"]["leaderboard_filters"] is True


@pytest.mark.parametrize("role", [Role.ANALYST, Role.VIEWER])
def test_only_owners_and_admins_see_or_change_billing(role: str, fake_stripe: FakeStripe) -> None:
    tenant = TenantFactory.create()
    client = _client_for(tenant, role)
    for method, url in [
        ("get", "/api/v1/subscriptions"),
        ("post", "/api/v1/subscriptions/upgrade"),
        ("post", "/api/v1/subscriptions/portal"),
    ]:
        response = getattr(client, method)(url, {"plan": "pro"}, format="json")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "role_required"
    assert fake_stripe.calls == []


def test_another_tenants_billing_is_not_found(fake_stripe: FakeStripe) -> None:
    mine, theirs = TenantFactory.create(), TenantFactory.create()
    client = _client_for(mine)
    response = client.get("/api/v1/subscriptions", headers={"X-Tenant": theirs.slug})
    assert response.status_code == 404
    response = client.post(
        "/api/v1/subscriptions/upgrade", {"plan": "pro"}, format="json", headers={"X-Tenant": theirs.slug}
    )
    assert response.status_code == 404
    assert not BillingAccount.objects.filter(tenant=theirs).exists()


def test_anonymous_callers_are_refused() -> None:
    response = APIClient().get("/api/v1/subscriptions")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_upgrade_returns_a_checkout_url_for_the_plans_price(fake_stripe: FakeStripe) -> None:
    # given a Basic tenant without a Stripe customer
    tenant = TenantFactory.create()
    client = _client_for(tenant)
    # when its owner asks to upgrade to Pro
    response = client.post("/api/v1/subscriptions/upgrade", {"plan": "pro"}, format="json")
    # then a Checkout URL comes back, for Pro's price, tied to this tenant and a new customer
    assert response.status_code == 200
    assert response.json()["url"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    sessions = [p for m, path, p in fake_stripe.calls if m == "POST" and path == "/v1/checkout/sessions"]
    assert len(sessions) == 1
    assert sessions[0]["line_items"][0]["price"] == "price_TPro000001"
    assert sessions[0]["mode"] == "subscription"
    assert sessions[0]["client_reference_id"] == str(tenant.pk)
    assert sessions[0]["subscription_data"]["metadata"]["coliseum_plan"] == "pro"
    account = BillingAccount.objects.get(tenant=tenant)
    assert account.stripe_customer_id and account.stripe_customer_id == sessions[0]["customer"]
    assert AuditEntry.objects.filter(tenant=tenant, action="billing.checkout_started").count() == 1
    # and a second attempt reuses the customer
    assert (
        client.post("/api/v1/subscriptions/upgrade", {"plan": "enterprise"}, format="json").status_code == 200
    )
    assert fake_stripe.paths_called("POST").count("/v1/customers") == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"plan": "platinum"}, "invalid"),
        ({"plan": "basic"}, "invalid"),
        ({"plan": 7}, "invalid"),
        ({}, "invalid"),
        ([1, 2], "invalid"),
    ],
)
def test_upgrade_refuses_bad_input_and_calls_no_one(body: Any, code: str, fake_stripe: FakeStripe) -> None:
    client = _client_for(TenantFactory.create())
    response = client.post("/api/v1/subscriptions/upgrade", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert fake_stripe.calls == []


def test_upgrade_refuses_malformed_json(fake_stripe: FakeStripe) -> None:
    client = _client_for(TenantFactory.create())
    response = client.post("/api/v1/subscriptions/upgrade", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert fake_stripe.calls == []


def test_upgrade_when_already_subscribed_points_to_the_portal(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe
) -> None:
    deliver("customer.subscription.created", fake_stripe.put(subscription(plan="pro")))
    response = _client_for(stripe_tenant).post(
        "/api/v1/subscriptions/upgrade", {"plan": "enterprise"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "subscription_exists"
    assert "/v1/checkout/sessions" not in fake_stripe.paths_called("POST")


def test_upgrade_when_stripe_is_down_answers_502_and_stores_nothing(fake_stripe: FakeStripe) -> None:
    tenant = TenantFactory.create()
    fake_stripe.fail_with = 500
    response = _client_for(tenant).post("/api/v1/subscriptions/upgrade", {"plan": "pro"}, format="json")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "stripe_unavailable"
    assert not BillingAccount.objects.filter(tenant=tenant).exclude(stripe_customer_id=None).exists()


def test_upgrade_before_billing_setup_says_so(fake_stripe: FakeStripe) -> None:
    for key in [k for k in fake_stripe.objects if k.startswith("/v1/prices/")]:
        del fake_stripe.objects[key]
    response = _client_for(TenantFactory.create()).post(
        "/api/v1/subscriptions/upgrade", {"plan": "pro"}, format="json"
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "billing_not_configured"


def test_portal_returns_a_billing_portal_url(stripe_tenant: Tenant, fake_stripe: FakeStripe) -> None:
    response = _client_for(stripe_tenant, Role.ADMIN).post("/api/v1/subscriptions/portal")
    assert response.status_code == 200
    assert response.json()["url"].startswith("https://billing.stripe.com/")
    portal = [p for m, path, p in fake_stripe.calls if path == "/v1/billing_portal/sessions"]
    assert portal == [{"customer": "cus_TCust00001", "return_url": "http://localhost:8000/"}]


def test_a_plan_change_is_seen_immediately_by_every_gate(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe
) -> None:
    _away_from_a_minute_boundary()
    client = _client_for(stripe_tenant)
    # what a WebSocket consumer holds: a tenant instance loaded at connect time
    consumer_tenant = Tenant.objects.get(pk=stripe_tenant.pk)
    # given a Basic tenant: the live feed is refused, naming the plan that has it
    refused = client.get("/test/live-feed")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "plan_required"
    assert refused.json()["error"]["details"]["required_plan"] == "enterprise"
    assert entitlements_for(consumer_tenant).live_feed is False
    # and its 60 API requests a minute are used up
    for _ in range(60):
        assert client.get("/api/v1/subscriptions").status_code == 200
    throttled = client.get("/api/v1/subscriptions")
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(throttled["Retry-After"]) <= 60
    # when Stripe reports the upgrade to Enterprise
    assert (
        deliver("customer.subscription.created", fake_stripe.put(subscription(plan="enterprise"))).status_code
        == 200
    )
    # then, at once: the permission lets the live feed through, the throttle allows 6000 a minute,
    # and the consumer's entitlements include the live feed
    assert client.get("/test/live-feed").status_code == 200
    assert client.get("/api/v1/subscriptions").json()["plan"] == "enterprise"
    assert entitlements_for(consumer_tenant).live_feed is True


def test_the_throttle_is_per_tenant_and_ignores_anonymous_and_tenantless_requests(
    fake_stripe: FakeStripe,
) -> None:
    _away_from_a_minute_boundary()
    from billing.services import entitlement_override_set

    busy, quiet = TenantFactory.create(), TenantFactory.create()
    entitlement_override_set(tenant=busy, name="api_requests_per_minute", value=2)
    busy_client, quiet_client = _client_for(busy), _client_for(quiet)
    assert [busy_client.get("/api/v1/subscriptions").status_code for _ in range(3)] == [200, 200, 429]
    # another tenant is unaffected
    assert quiet_client.get("/api/v1/subscriptions").status_code == 200
    # a user in two tenants who names none is not throttled by either (the view answers tenant_required)
    both = UserFactory.create()
    MembershipFactory.create(user=both, tenant=busy)
    MembershipFactory.create(user=both, tenant=quiet)
    client = APIClient()
    client.force_authenticate(both)
    response = client.get("/api/v1/subscriptions")
    assert response.status_code == 400 and response.json()["error"]["code"] == "tenant_required"
    # anonymous requests are never throttled by plan
    assert [APIClient().get("/api/v1/subscriptions").status_code for _ in range(3)] == [401, 401, 401]


def test_billing_endpoints_are_in_the_openapi_schema() -> None:
    client = APIClient()
    response = client.get("/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})
    assert response.status_code == 200
    schema = response.content.decode()
    for path in (
        "/api/v1/subscriptions",
        "/api/v1/subscriptions/upgrade",
        "/api/v1/subscriptions/portal",
        "/stripe/webhook/{uuid}/",
    ):
        assert f'"{path}"' in schema or f"{path}:" in schema
