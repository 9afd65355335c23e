"""Create (or sync) the Coliseum Products and Prices in Stripe and register dj-stripe's webhook endpoint.

    STRIPE_TEST_SECRET_KEY=sk_test_... python manage.py billing_setup --base-url https://coliseum.example.com

Idempotent: products are found by metadata `coliseum_plan`, prices by lookup key `coliseum_<plan>_monthly`
(a changed amount creates a new price and moves the lookup key to it), the endpoint by its URL."""

from __future__ import annotations

from typing import Any, cast
from uuid import uuid4

import stripe
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse
from djstripe.models import Price, Product, WebhookEndpoint
from djstripe.settings import djstripe_settings
from tqdm import tqdm

from billing.services import plan_lookup_key
from coliseum.models import Plan

WEBHOOK_EVENTS = [
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
    "checkout.session.completed",
]


def _amounts() -> dict[str, int]:
    return {
        Plan.BASIC: 0,
        Plan.PRO: settings.BILLING_PRICE_PRO,
        Plan.ENTERPRISE: settings.BILLING_PRICE_ENTERPRISE,
    }


class Command(BaseCommand):
    help = "Create or sync the Basic/Pro/Enterprise Products and Prices in Stripe and the webhook endpoint."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default=settings.PUBLIC_BASE_URL, help="Public https origin")
        parser.add_argument("--skip-webhook", action="store_true", help="Only products and prices")

    def handle(self, *args: Any, **options: Any) -> None:
        api_key = str(djstripe_settings.STRIPE_SECRET_KEY)
        if not api_key or api_key.endswith("placeholder"):
            raise CommandError("Set STRIPE_TEST_SECRET_KEY (or STRIPE_LIVE_SECRET_KEY + STRIPE_LIVE_MODE).")
        try:
            listed: Any = stripe.Product.list(api_key=api_key, limit=100, active=True).auto_paging_iter()
            products = {
                p["metadata"].get("coliseum_plan"): p
                for p in listed
                if (p.get("metadata") or {}).get("coliseum_plan")
            }
            for plan in tqdm(Plan.values, desc="plans", unit="plan"):
                self._sync_plan(api_key, plan, products.get(plan))
            if not options["skip_webhook"]:
                self._sync_webhook(api_key, options["base_url"].rstrip("/"))
        except stripe.StripeError as exc:
            raise CommandError(f"Stripe refused: {exc.user_message or exc.__class__.__name__}") from exc

    def _sync_plan(self, api_key: str, plan: str, product: Any) -> None:
        name = f"Coliseum {Plan(plan).label}"
        metadata = {"coliseum_plan": plan}
        if product is None:
            product = cast(Any, stripe.Product.create(api_key=api_key, name=name, metadata=metadata))
            self.stdout.write(f"created product {product['id']} for {plan}")
        elif product.get("name") != name:
            product = stripe.Product.modify(product["id"], api_key=api_key, name=name, metadata=metadata)
        Product.sync_from_stripe_data(product, api_key=api_key)

        amount, currency = _amounts()[plan], settings.BILLING_CURRENCY.lower()
        found = stripe.Price.list(api_key=api_key, lookup_keys=[plan_lookup_key(plan)], limit=1).data
        current: Any = found[0] if found else None
        if (
            current is not None
            and current.get("unit_amount") == amount
            and current.get("currency") == currency
            and current.get("active")
        ):
            price = current
        else:
            price = stripe.Price.create(
                api_key=api_key,
                product=product["id"],
                unit_amount=amount,
                currency=currency,
                recurring={"interval": "month"},
                lookup_key=plan_lookup_key(plan),
                transfer_lookup_key=True,
                metadata=metadata,
            )
            self.stdout.write(f"created price {price['id']} for {plan}: {amount} {currency}/month")
            if current is not None:
                stripe.Price.modify(current["id"], api_key=api_key, active=False)
        Price.sync_from_stripe_data(price, api_key=api_key)

    def _sync_webhook(self, api_key: str, base_url: str) -> None:
        existing = WebhookEndpoint.objects.filter(url__startswith=f"{base_url}/stripe/webhook/").first()
        if existing is not None:
            self.stdout.write(f"webhook endpoint already registered: {existing.url}")
            return
        uuid = uuid4()
        url = base_url + reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": uuid})
        data = stripe.WebhookEndpoint.create(
            api_key=api_key,
            url=url,
            enabled_events=cast(Any, WEBHOOK_EVENTS),
            api_version=djstripe_settings.STRIPE_API_VERSION,
            metadata={"djstripe_uuid": str(uuid)},
        )
        WebhookEndpoint.sync_from_stripe_data(data, api_key=api_key)
        self.stdout.write(f"registered webhook endpoint {url}")
