"""Stripe webhooks through dj-stripe's real, signed endpoint; Stripe's API faked at the HTTP boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from djstripe.models import Event, Subscription
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from audit.models import AuditEntry
from billing.entitlements import entitlements_for
from billing.models import BillingAccount
from coliseum.models import Tenant

from .conftest import RECORDED_AT, WEBHOOK_SECRET, Deliver, event_payload, sign, subscription
from .fakestripe import FakeStripe, fixture

pytestmark = pytest.mark.django_db


def _plan(tenant: Tenant) -> str:
    return str(Tenant.objects.get(pk=tenant.pk).plan)


def test_subscription_created_puts_the_paid_plan_in_force(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe
) -> None:
    # given a tenant on Basic whose customer subscribes to Pro
    sub = fake_stripe.put(subscription(plan="pro"))
    # when Stripe delivers customer.subscription.created
    response = deliver("customer.subscription.created", sub)
    # then dj-stripe stores it and the tenant is on Pro, audited as a Stripe change
    assert response.status_code == 200
    assert Subscription.objects.filter(id=sub["id"]).exists()
    assert _plan(stripe_tenant) == "pro"
    assert entitlements_for(stripe_tenant).leaderboard_filters is True
    entry = AuditEntry.objects.get(tenant=stripe_tenant, action="plan.changed")
    assert entry.actor_type == "stripe"
    assert entry.details["from"] == "basic" and entry.details["to"] == "pro"


def test_subscription_updated_to_enterprise_changes_the_plan(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe
) -> None:
    deliver("customer.subscription.created", fake_stripe.put(subscription(plan="pro")))
    upgraded = fake_stripe.put(subscription(plan="enterprise"))
    assert deliver("customer.subscription.updated", upgraded, created=RECORDED_AT + 60).status_code == 200
    assert _plan(stripe_tenant) == "enterprise"
    assert entitlements_for(stripe_tenant).live_feed is True


def test_the_plan_is_read_from_the_product_when_the_price_has_no_metadata(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe
) -> None:
    # given a price without metadata whose product says enterprise
    sub = subscription(plan="enterprise")
    sub["metadata"] = {}
    sub["items"]["data"][0]["price"]["metadata"] = {}
    fake_stripe.objects["/v1/prices/price_TEnt000001"]["metadata"] = {}
    deliver("customer.subscription.created", fake_stripe.put(sub))
    assert _plan(stripe_tenant) == "enterprise"


def test_a_duplicate_delivery_changes_nothing_twice(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe
) -> None:
    # given a delivered event
    sub = fake_stripe.put(subscription(plan="pro"))
    assert deliver("customer.subscription.created", sub, event_id="evt_TDup0001").status_code == 200
    # when Stripe delivers the very same event again
    second = deliver("customer.subscription.created", sub, event_id="evt_TDup0001")
    # then it is acknowledged and nothing happens twice
    assert second.status_code == 200
    assert Event.objects.filter(id="evt_TDup0001").count() == 1
    assert AuditEntry.objects.filter(tenant=stripe_tenant, action="plan.changed").count() == 1
    assert _plan(stripe_tenant) == "pro"


def test_an_older_update_delivered_after_a_newer_one_changes_nothing(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe
) -> None:
    # given the newer event (enterprise) delivered first
    deliver("customer.subscription.updated", subscription(plan="enterprise"), created=RECORDED_AT + 120)
    assert _plan(stripe_tenant) == "enterprise"
    # when the older one (still pro) arrives late
    response = deliver("customer.subscription.updated", subscription(plan="pro"), created=RECORDED_AT + 60)
    # then it is acknowledged but the plan stays
    assert response.status_code == 200
    assert _plan(stripe_tenant) == "enterprise"
    account = BillingAccount.objects.get(tenant=stripe_tenant)
    assert account.subscription_plan == "enterprise"
    assert AuditEntry.objects.filter(tenant=stripe_tenant, action="plan.changed").count() == 1


def test_an_incomplete_created_event_in_the_same_second_as_the_activation_changes_nothing(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe
) -> None:
    # given a checkout whose subscription became active, reported first
    fake_stripe.put(subscription(plan="pro"))
    deliver("customer.subscription.updated", subscription(plan="pro"), created=RECORDED_AT)
    assert _plan(stripe_tenant) == "pro"
    # when `created` (still incomplete) from the same second arrives after it
    deliver(
        "customer.subscription.created", subscription(plan="pro", status="incomplete"), created=RECORDED_AT
    )
    # then the subscription stays active
    assert BillingAccount.objects.get(tenant=stripe_tenant).subscription_status == "active"
    assert _plan(stripe_tenant) == "pro"


@pytest.mark.parametrize(
    "signature",
    [
        "t=1,v1=" + "0" * 64,  # forged
        sign("something else entirely"),  # signed, but not this body
        "",  # empty
    ],
)
def test_a_badly_signed_delivery_is_refused_and_changes_nothing(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe, signature: str
) -> None:
    sub = fake_stripe.put(subscription(plan="enterprise"))
    response = deliver("customer.subscription.created", sub, signature=signature)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert _plan(stripe_tenant) == "basic"
    assert not Event.objects.exists()
    assert not AuditEntry.objects.filter(tenant=stripe_tenant).exists()


def test_a_tampered_body_is_refused(deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe) -> None:
    # given a payload signed for pro, then edited to enterprise in transit
    body = event_payload("customer.subscription.created", subscription(plan="pro"), created=RECORDED_AT)
    signature = sign(body, WEBHOOK_SECRET)
    tampered = body.replace('"coliseum_plan": "pro"', '"coliseum_plan": "enterprise"')
    assert tampered != body
    response = deliver("customer.subscription.created", {}, payload=tampered, signature=signature)
    assert response.status_code == 400
    assert _plan(stripe_tenant) == "basic"


def test_a_delivery_signed_with_another_secret_is_refused(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe
) -> None:
    body = event_payload("customer.subscription.created", subscription(plan="pro"), created=RECORDED_AT)
    response = deliver("x", {}, payload=body, signature=sign(body, "whsec_someone_else"))
    assert response.status_code == 400
    assert _plan(stripe_tenant) == "basic"


def test_an_event_for_an_unknown_customer_is_acknowledged_and_changes_no_tenant(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe
) -> None:
    stranger = fake_stripe.load("customer", id="cus_TStranger01", metadata={})
    sub = fake_stripe.put(subscription(plan="enterprise", id="sub_TStranger01", customer=stranger["id"]))
    assert deliver("customer.subscription.created", sub).status_code == 200
    assert _plan(stripe_tenant) == "basic"
    assert BillingAccount.objects.count() == 1


def test_payment_failed_keeps_the_plan_during_grace_then_basic(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe, settings: Any
) -> None:
    # given a Pro subscription
    deliver("customer.subscription.created", fake_stripe.put(subscription(plan="pro")))
    now = int(timezone.now().timestamp())
    # when a renewal payment fails
    invoice = fake_stripe.load("invoice", status="open", amount_paid=0)
    assert deliver("invoice.payment_failed", invoice, created=now).status_code == 200
    # then the subscription is past due but the plan is kept for the grace period
    account = BillingAccount.objects.get(tenant=stripe_tenant)
    assert account.subscription_status == "past_due"
    assert account.past_due_since == datetime.fromtimestamp(now, tz=UTC)
    assert _plan(stripe_tenant) == "pro"
    # and once the (configurable) grace period is over the tenant is on Basic
    settings.BILLING_PAST_DUE_GRACE_DAYS = 0
    from billing.services import plans_refresh_due

    assert plans_refresh_due() == 1
    assert _plan(stripe_tenant) == "basic"
    # when the invoice is finally paid
    paid = fake_stripe.load("invoice")
    assert deliver("invoice.paid", paid, created=now + 10).status_code == 200
    # then the plan is back
    assert _plan(stripe_tenant) == "pro"
    assert BillingAccount.objects.get(tenant=stripe_tenant).past_due_since is None


def test_subscription_updated_to_past_due_starts_the_grace_period(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe, settings: Any
) -> None:
    # given a Pro subscription
    deliver("customer.subscription.created", fake_stripe.put(subscription(plan="pro")))
    an_hour_ago = int(timezone.now().timestamp()) - 3600
    # when Stripe reports it past due
    deliver(
        "customer.subscription.updated", fake_stripe.put(subscription(status="past_due")), created=an_hour_ago
    )
    # then the grace period starts at the event's time and the plan is kept
    account = BillingAccount.objects.get(tenant=stripe_tenant)
    assert account.subscription_status == "past_due"
    assert account.past_due_since == datetime.fromtimestamp(an_hour_ago, tz=UTC)
    assert _plan(stripe_tenant) == "pro"
    # and a later past_due update does not restart the grace period
    deliver("customer.subscription.updated", subscription(status="past_due"), created=an_hour_ago + 60)
    assert BillingAccount.objects.get(tenant=stripe_tenant).past_due_since == account.past_due_since


def test_cancel_at_period_end_keeps_the_plan_until_then_and_deleted_drops_to_basic(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe
) -> None:
    # given a Pro subscription set to cancel at the end of a period that ends in 10 days
    period_end = int((timezone.now() + timedelta(days=10)).timestamp())
    sub = subscription(plan="pro", cancel_at_period_end=True)
    sub["items"]["data"][0]["current_period_end"] = period_end
    deliver("customer.subscription.updated", fake_stripe.put(sub))
    # then the plan is kept until the period ends
    assert _plan(stripe_tenant) == "pro"
    account = BillingAccount.objects.get(tenant=stripe_tenant)
    assert account.cancel_at_period_end is True
    # when the period ends and Stripe deletes the subscription
    ended = subscription(plan="pro", status="canceled")
    ended["items"]["data"][0]["current_period_end"] = int(timezone.now().timestamp()) - 1
    fake_stripe.objects.pop("/v1/subscriptions/sub_TSub0000001")
    assert deliver("customer.subscription.deleted", ended, created=RECORDED_AT + 60).status_code == 200
    # then the tenant is on Basic
    assert _plan(stripe_tenant) == "basic"
    assert BillingAccount.objects.get(tenant=stripe_tenant).subscription_status == "canceled"


def test_an_operator_assignment_survives_stripe_events(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe
) -> None:
    from billing.services import tenant_plan_assign

    tenant_plan_assign(tenant=stripe_tenant, plan="enterprise")
    deliver("customer.subscription.created", fake_stripe.put(subscription(plan="pro")))
    assert _plan(stripe_tenant) == "enterprise"
    assert BillingAccount.objects.get(tenant=stripe_tenant).subscription_plan == "pro"


def test_checkout_completed_links_a_new_customer_and_starts_the_plan(
    deliver: Deliver, fake_stripe: FakeStripe, db: Any
) -> None:
    # given a tenant that started a checkout but has no customer on file yet
    from tests.factories import TenantFactory

    tenant = TenantFactory.create()
    fake_stripe.load("customer", metadata={"coliseum_tenant_id": str(tenant.pk)})
    session = fixture("checkout_session_subscription")
    session["client_reference_id"] = str(tenant.pk)
    session["metadata"]["coliseum_tenant_id"] = str(tenant.pk)
    fake_stripe.put(session)
    fake_stripe.put(subscription(plan="pro"))
    # when Stripe reports the checkout completed
    assert deliver("checkout.session.completed", session).status_code == 200
    # then the customer is remembered and the tenant is on Pro at once
    account = BillingAccount.objects.get(tenant=tenant)
    assert account.stripe_customer_id == "cus_TCust00001"
    assert account.stripe_subscription_id == "sub_TSub0000001"
    assert _plan(tenant) == "pro"
    # and the subscription's own later events are taken as they come
    later = fake_stripe.put(subscription(plan="enterprise"))
    deliver("customer.subscription.updated", later, created=RECORDED_AT + 60)
    assert _plan(tenant) == "enterprise"


def test_a_webhook_to_an_unknown_endpoint_is_404(stripe_tenant: Tenant, fake_stripe: FakeStripe) -> None:
    from django.test import Client

    body = event_payload("customer.subscription.created", subscription(), created=RECORDED_AT)
    response = Client().post(
        "/stripe/webhook/00000000-0000-0000-0000-000000000000/",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": sign(body)},
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert _plan(stripe_tenant) == "basic"


def test_malformed_json_is_refused(deliver: Deliver, stripe_tenant: Tenant) -> None:
    body = "{not json"
    response = deliver("x", {}, payload=body, signature=sign(body))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not Event.objects.exists()
    assert _plan(stripe_tenant) == "basic"


def test_a_delivery_without_signature_header_is_refused(stripe_tenant: Tenant, webhook_endpoint: Any) -> None:
    from django.test import Client

    body = event_payload("customer.subscription.created", subscription(plan="pro"), created=RECORDED_AT)
    url = f"/stripe/webhook/{webhook_endpoint.djstripe_uuid}/"
    response = Client().post(url, data=body, content_type="application/json")
    assert response.status_code == 400
    assert _plan(stripe_tenant) == "basic"


def test_a_processing_failure_answers_503_so_stripe_retries_and_stores_nothing(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe
) -> None:
    # given Stripe's API failing while dj-stripe re-fetches the subscription
    sub = subscription(plan="pro")
    fake_stripe.fail_with = 500
    response = deliver("customer.subscription.created", sub, event_id="evt_TRetry0001")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "webhook_failed"
    assert not Event.objects.filter(id="evt_TRetry0001").exists()
    assert _plan(stripe_tenant) == "basic"
    # when Stripe retries once its API is back
    fake_stripe.fail_with = None
    fake_stripe.put(sub)
    assert deliver("customer.subscription.created", sub, event_id="evt_TRetry0001").status_code == 200
    # then the event is applied
    assert _plan(stripe_tenant) == "pro"


def test_a_replayed_delivery_older_than_the_tolerance_is_refused(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe
) -> None:
    # given a genuinely signed delivery captured ten minutes ago
    sub = fake_stripe.put(subscription(plan="enterprise"))
    body = event_payload("customer.subscription.created", sub, created=RECORDED_AT)
    stale = sign(body, at=int(timezone.now().timestamp()) - 600)
    # when it is replayed now
    response = deliver("x", {}, payload=body, signature=stale)
    # then it is refused and changes nothing
    assert response.status_code == 400
    assert _plan(stripe_tenant) == "basic"
    assert not Event.objects.exists()


def test_a_huge_body_is_refused_with_413(deliver: Deliver, stripe_tenant: Tenant, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    body = event_payload("customer.subscription.created", {"padding": "x" * 100_000}, created=RECORDED_AT)
    response = deliver("x", {}, payload=body, signature=sign(body))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not Event.objects.exists()


@given(order=st.permutations(range(4)))
@hyp_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_delivery_order_ends_in_the_newest_events_state(
    order: list[int], fake_stripe: FakeStripe
) -> None:
    # given four successive states of one subscription, delivered in any order
    from billing.services import stripe_subscription_apply
    from tests.factories import TenantFactory

    tenant = TenantFactory.create()
    BillingAccount.objects.create(tenant=tenant, stripe_customer_id=f"cus_TOrder{tenant.pk}")
    states = [("active", "pro"), ("active", "enterprise"), ("past_due", "enterprise"), ("active", "pro")]
    for index in order:
        status, plan = states[index]
        sub = subscription(status=status, plan=plan, customer=f"cus_TOrder{tenant.pk}")
        stripe_subscription_apply(
            subscription=sub, event_type="customer.subscription.updated", event_created=RECORDED_AT + index
        )
    # then the account holds the newest state, whatever the order
    account = BillingAccount.objects.get(tenant=tenant)
    assert (account.subscription_status, account.subscription_plan) == states[-1]
    assert account.past_due_since is None
    assert _plan(tenant) == "pro"
