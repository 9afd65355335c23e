"""Billing fixtures: the fake Stripe HTTP layer, a dj-stripe webhook endpoint and a signed-delivery helper."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stripe
from django.test import Client
from djstripe.models import WebhookEndpoint
from djstripe.settings import djstripe_settings

from coliseum.models import Tenant
from tests.factories import TenantFactory

from .fakestripe import FakeStripe, fixture

WEBHOOK_SECRET = "whsec_test_" + "c0ffee" * 6
RECORDED_AT = 1795000000  # the `created` of the recorded objects


FAKE_SECRET_KEY = "sk_test_" + "Fake0Key" * 4


@pytest.fixture(autouse=True)
def _stripe_test_key(settings: Any) -> None:
    # dj-stripe checks the key's shape (sk_test_ + 24 characters) before it asks Stripe who the account is.
    settings.STRIPE_TEST_SECRET_KEY = FAKE_SECRET_KEY


class _NoNetwork(FakeStripe):
    """Installed for every billing test: a Stripe call that no test asked to fake fails loudly."""

    def request(self, method: str, url: str, headers: Any, post_data: Any = None, **kwargs: Any) -> Any:
        raise AssertionError(f"unexpected Stripe call {method} {url}: request the fake_stripe fixture")


@pytest.fixture(autouse=True)
def _stripe_never_reaches_the_network() -> Iterator[None]:
    previous = stripe.default_http_client
    stripe.default_http_client = _NoNetwork()
    try:
        yield
    finally:
        stripe.default_http_client = previous


@pytest.fixture
def fake_stripe(_stripe_never_reaches_the_network: None) -> Iterator[FakeStripe]:
    previous = stripe.default_http_client
    fake = FakeStripe()
    stripe.default_http_client = fake
    for name in ("product_pro", "product_enterprise", "price_pro", "price_enterprise", "account"):
        fake.load(name)
    fake.objects["/v1/account"] = fake.objects["/v1/accounts/acct_TColiseum0001"]
    try:
        yield fake
    finally:
        stripe.default_http_client = previous


@pytest.fixture
def webhook_endpoint(db: Any) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        id="we_TTest000001",
        livemode=False,
        api_version=djstripe_settings.STRIPE_API_VERSION,
        enabled_events=["*"],
        secret=WEBHOOK_SECRET,
        status="enabled",
        url="https://coliseum.example/stripe/webhook/",
        metadata={},
    )


def sign(payload: str, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """Exactly Stripe's scheme: t=<unix>,v1=hex(HMAC-SHA256(secret, "<t>.<payload>"))."""
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event_payload(event_type: str, obj: dict[str, Any], *, created: int, event_id: str | None = None) -> str:
    return json.dumps(
        {
            "id": event_id or "evt_T" + secrets.token_hex(8),
            "object": "event",
            "api_version": djstripe_settings.STRIPE_API_VERSION,
            "created": created,
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
    )


Deliver = Callable[..., Any]


@pytest.fixture
def deliver(webhook_endpoint: WebhookEndpoint, fake_stripe: FakeStripe) -> Deliver:
    """POST a signed event to dj-stripe's real webhook view; returns the response."""
    client = Client(raise_request_exception=False)
    url = f"/stripe/webhook/{webhook_endpoint.djstripe_uuid}/"

    def _deliver(
        event_type: str,
        obj: dict[str, Any],
        *,
        created: int = RECORDED_AT,
        event_id: str | None = None,
        signature: str | None = None,
        payload: str | None = None,
    ) -> Any:
        body = (
            payload
            if payload is not None
            else event_payload(event_type, obj, created=created, event_id=event_id)
        )
        return client.post(
            url,
            data=body,
            content_type="application/json",
            headers={"Stripe-Signature": signature if signature is not None else sign(body)},
        )

    return _deliver


@pytest.fixture
def stripe_tenant(db: Any, fake_stripe: FakeStripe) -> Tenant:
    """A tenant whose Stripe customer (cus_TCust00001) exists on the fake Stripe and is linked to it."""
    from billing.models import BillingAccount

    tenant = TenantFactory.create()
    fake_stripe.load(
        "customer", metadata={"coliseum_tenant_id": str(tenant.pk), "coliseum_tenant": tenant.slug}
    )
    BillingAccount.objects.create(tenant=tenant, stripe_customer_id="cus_TCust00001")
    return tenant


def subscription(*, status: str = "active", plan: str = "pro", **overrides: Any) -> dict[str, Any]:
    sub = fixture("subscription")
    price = fixture(f"price_{plan}")
    sub["items"]["data"][0]["price"] = price
    sub["metadata"] = {"coliseum_plan": plan}
    sub["status"] = status
    sub.update(overrides)
    sub["items"]["data"][0]["subscription"] = sub["id"]
    return sub
