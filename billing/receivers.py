"""Hooks into dj-stripe's processed webhook events and into Tenant saves. Only glue: the logic is in
billing.services.

dj-stripe verifies the signature, stores the Event once (a duplicate delivery is answered without running
handlers again) and runs its own handlers, then ours, inside one transaction: if ours raise, the Event is
not stored and Stripe's retry processes it again."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from djstripe.event_handlers import djstripe_receiver
from djstripe.models import Event

from coliseum.models import Tenant

from . import services
from .entitlements import entitlements_invalidate


def _created(event: Event) -> int:
    created = event.created
    return int(created.timestamp()) if created is not None else 0


@djstripe_receiver(
    ["customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted"]
)
def on_subscription_event(sender: Any, event: Event, **kwargs: Any) -> None:
    services.stripe_subscription_apply(
        subscription=event.data["object"], event_type=str(event.type), event_created=_created(event)
    )


@djstripe_receiver(["invoice.paid", "invoice.payment_failed"])
def on_invoice_event(sender: Any, event: Event, **kwargs: Any) -> None:
    invoice = event.data["object"]
    services.stripe_invoice_apply(invoice=invoice, event_type=str(event.type), event_created=_created(event))
    if event.type == "invoice.paid":
        services.stripe_money_event_ingest(
            stripe_event_id=str(event.id), obj=invoice, event_created=_created(event)
        )


@djstripe_receiver("checkout.session.completed")
def on_checkout_completed(sender: Any, event: Event, **kwargs: Any) -> None:
    session = event.data["object"]
    services.stripe_checkout_apply(session=session, event_created=_created(event))
    services.stripe_money_event_ingest(
        stripe_event_id=str(event.id), obj=session, event_created=_created(event)
    )


@receiver(post_save, sender=Tenant)
def on_tenant_saved(sender: Any, instance: Tenant, **kwargs: Any) -> None:
    # Tenant.plan may be set outside billing.services (factories, shell): never serve a stale plan.
    entitlements_invalidate(instance.pk)
    transaction.on_commit(lambda: entitlements_invalidate(instance.pk))
