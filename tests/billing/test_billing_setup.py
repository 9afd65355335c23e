"""`manage.py billing_setup` against the fake Stripe HTTP layer."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from djstripe.models import Price, Product, WebhookEndpoint

from .fakestripe import FakeStripe

pytestmark = pytest.mark.django_db


@pytest.fixture
def empty_stripe(fake_stripe: FakeStripe) -> FakeStripe:
    """A Stripe account with no Coliseum products yet."""
    for key in [k for k in fake_stripe.objects if k.startswith(("/v1/prices/", "/v1/products/"))]:
        del fake_stripe.objects[key]
    return fake_stripe


def _prices(fake: FakeStripe) -> list[dict[str, Any]]:
    return [o for o in fake.objects.values() if o.get("object") == "price"]


def test_setup_creates_three_products_prices_and_the_webhook_endpoint(empty_stripe: FakeStripe) -> None:
    # when an operator runs the setup on a fresh account
    call_command("billing_setup", "--base-url", "https://coliseum.example", stdout=StringIO())
    # then Stripe has one product and one monthly price per plan, tagged with the plan
    prices = {p["lookup_key"]: p for p in _prices(empty_stripe)}
    assert set(prices) == {"coliseum_basic_monthly", "coliseum_pro_monthly", "coliseum_enterprise_monthly"}
    assert prices["coliseum_pro_monthly"]["unit_amount"] == 4900
    assert prices["coliseum_pro_monthly"]["metadata"] == {"coliseum_plan": "pro"}
    assert prices["coliseum_enterprise_monthly"]["recurring"] == {"interval": "month"}
    # and dj-stripe mirrors them
    assert sorted(Product.objects.values_list("metadata__coliseum_plan", flat=True)) == [
        "basic",
        "enterprise",
        "pro",
    ]
    assert Price.objects.count() == 3
    # and the webhook endpoint is registered with Stripe and stored with its signing secret
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.url == f"https://coliseum.example/stripe/webhook/{endpoint.djstripe_uuid}/"
    assert endpoint.secret.startswith("whsec_")
    created = [p for m, path, p in empty_stripe.calls if m == "POST" and path == "/v1/webhook_endpoints"]
    assert "customer.subscription.updated" in created[0]["enabled_events"]


def test_setup_is_idempotent(empty_stripe: FakeStripe) -> None:
    call_command("billing_setup", "--base-url", "https://coliseum.example", stdout=StringIO())
    posts = len(empty_stripe.paths_called("POST"))
    call_command("billing_setup", "--base-url", "https://coliseum.example", stdout=StringIO())
    assert len(empty_stripe.paths_called("POST")) == posts
    assert len(_prices(empty_stripe)) == 3
    assert WebhookEndpoint.objects.count() == 1


def test_a_changed_price_gets_a_new_stripe_price_and_the_old_one_is_retired(
    empty_stripe: FakeStripe, settings: Any
) -> None:
    call_command("billing_setup", "--skip-webhook", stdout=StringIO())
    settings.BILLING_PRICE_PRO = 5900
    call_command("billing_setup", "--skip-webhook", stdout=StringIO())
    pro = [p for p in _prices(empty_stripe) if p["metadata"] == {"coliseum_plan": "pro"}]
    assert sorted((p["unit_amount"], p["active"], p["lookup_key"]) for p in pro) == [
        (4900, False, None),
        (5900, True, "coliseum_pro_monthly"),
    ]


def test_setup_refuses_without_a_real_key(settings: Any, empty_stripe: FakeStripe) -> None:
    settings.STRIPE_TEST_SECRET_KEY = "sk_test_placeholder"
    with pytest.raises(CommandError):
        call_command("billing_setup", stdout=StringIO())
    assert empty_stripe.calls == []
