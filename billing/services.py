"""Plan changes, entitlement overrides and the Stripe side of billing. Every write of billing is here.

Plan resolution (one rule, `plan_resolve`): operator assignment (wins while set) > the active Stripe
subscription's plan (Price/Product metadata `coliseum_plan`) > Basic. `Tenant.plan` is kept equal to the
result (other apps read it); each change writes the audit row "plan.changed" in the same transaction and
drops the cached entitlements, so every gate sees it on its next check."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.services import Actor, audit_record
from coliseum.errors import ApplicationError
from coliseum.models import Plan, Tenant

from .entitlements import entitlement_value_validate, entitlements_invalidate
from .models import BillingAccount, EntitlementOverride

# Stripe statuses under which the subscription's plan is in force (past_due: during the grace period).
LIVE_STATUSES = ("active", "trialing", "past_due")
# How far along its lifecycle a subscription is; breaks ties between events of the same second.
_STATUS_RANK = {
    "incomplete": 0,
    "incomplete_expired": 1,
    "trialing": 1,
    "active": 2,
    "past_due": 2,
    "paused": 2,
    "unpaid": 3,
    "canceled": 4,
}
# uuid5 namespace of the Passport event ids minted from Stripe event ids (never change it: idempotency).
MONEY_EVENT_NAMESPACE = uuid.UUID("6f1c3c1e-8a53-5d0e-9a55-2d1f4e0b7c21")
TICKET_METADATA_KEYS = ("user_id", "show_id", "artist_id")


class StripeUnavailableError(ApplicationError):
    status_code = 502
    code = "stripe_unavailable"


# --- plan resolution ---------------------------------------------------------------------------------------


def _grace() -> timedelta:
    return timedelta(days=settings.BILLING_PAST_DUE_GRACE_DAYS)


def plan_resolve(account: BillingAccount, *, now: datetime | None = None) -> tuple[str, str, datetime | None]:
    """(plan, source, deadline): the plan in force, where it comes from (operator / stripe / default) and,
    when it lapses by itself (end of the grace period or of a canceled subscription's paid period), when."""
    now = now or timezone.now()
    if account.operator_plan:
        return account.operator_plan, "operator", None
    plan, status, period_end = (
        account.subscription_plan,
        account.subscription_status,
        account.current_period_end,
    )
    if not plan or not status:
        return Plan.BASIC, "default", None
    if status in ("active", "trialing"):
        if account.cancel_at_period_end and period_end is not None:
            return (plan, "stripe", period_end) if now < period_end else (Plan.BASIC, "default", None)
        return plan, "stripe", None
    if status == "past_due":
        grace_end = (account.past_due_since or now) + _grace()
        return (plan, "stripe", grace_end) if now < grace_end else (Plan.BASIC, "default", None)
    if status == "canceled" and period_end is not None and now < period_end:
        # Canceled at once but paid until period end: keep the plan until then.
        return plan, "stripe", period_end
    return Plan.BASIC, "default", None


def plan_deadline(account: BillingAccount) -> datetime | None:
    return plan_resolve(account)[2]


def _invalidate_on_commit(tenant_id: int) -> None:
    # Now (this connection's next read must not see the old value) and again after commit (another process
    # may have refilled the cache from the not-yet-committed state in between).
    entitlements_invalidate(tenant_id)
    transaction.on_commit(lambda: entitlements_invalidate(tenant_id))


def tenant_plan_refresh(
    *, tenant_id: int, actor: Actor = "system", request: HttpRequest | None = None, reason: str = ""
) -> str:
    """Re-resolve a tenant's plan from its billing account and store it in `Tenant.plan` (audited when it
    changes). Idempotent; safe to call at any time (the beat job and lazy evaluation do)."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        account = BillingAccount.objects.filter(tenant=tenant).first()
        if account is None:
            return str(tenant.plan)
        plan, source, _ = plan_resolve(account)
        previous = tenant.plan
        if previous != plan:
            tenant.plan = plan
            tenant.save(update_fields=["plan"])
            audit_record(
                action="plan.changed",
                actor=actor,
                tenant=tenant,
                target=tenant,
                request=request,
                details={"from": previous, "to": plan, "source": source, "reason": reason},
            )
        _invalidate_on_commit(tenant.pk)
        return plan


def _account_for_update(tenant: Tenant) -> BillingAccount:
    BillingAccount.objects.get_or_create(tenant=tenant)
    return BillingAccount.objects.select_for_update().get(tenant=tenant)


def tenant_plan_assign(
    *, tenant: Tenant, plan: str, actor: Actor = "system", request: HttpRequest | None = None
) -> Tenant:
    """An operator assigns a plan (wins over Stripe while set)."""
    if plan not in Plan.values:
        raise ValueError(f"unknown plan {plan!r}")
    with transaction.atomic():
        account = _account_for_update(tenant)
        previous = account.operator_plan
        if previous != plan:
            account.operator_plan = plan
            account.save(update_fields=["operator_plan", "updated_at"])
            audit_record(
                action="plan.assigned",
                actor=actor,
                tenant=tenant,
                target=tenant,
                request=request,
                details={"from": previous or None, "to": plan, "source": "operator"},
            )
        tenant.plan = tenant_plan_refresh(
            tenant_id=tenant.pk, actor=actor, request=request, reason="operator"
        )
    return tenant


def tenant_plan_unassign(
    *, tenant: Tenant, actor: Actor = "system", request: HttpRequest | None = None
) -> Tenant:
    """Remove an operator assignment: the plan comes from Stripe again, or is Basic."""
    with transaction.atomic():
        account = _account_for_update(tenant)
        if account.operator_plan:
            previous = account.operator_plan
            account.operator_plan = ""
            account.save(update_fields=["operator_plan", "updated_at"])
            audit_record(
                action="plan.unassigned",
                actor=actor,
                tenant=tenant,
                target=tenant,
                request=request,
                details={"from": previous, "source": "operator"},
            )
        tenant.plan = tenant_plan_refresh(
            tenant_id=tenant.pk, actor=actor, request=request, reason="operator"
        )
    return tenant


def plans_refresh_due(*, now: datetime | None = None) -> int:
    """Beat job body: re-resolve every tenant whose grace period or paid period has run out.
    Returns how many tenants changed plan."""
    now = now or timezone.now()
    changed = 0
    candidates = BillingAccount.objects.filter(operator_plan="").exclude(subscription_status="")
    for account in candidates.select_related("tenant").iterator():
        plan, _, _ = plan_resolve(account, now=now)
        if plan != account.tenant.plan:
            tenant_plan_refresh(tenant_id=account.tenant_id, actor="system", reason="period_lapsed")
            changed += 1
    return changed


# --- entitlement overrides ---------------------------------------------------------------------------------


def entitlement_override_set(
    *,
    tenant: Tenant,
    name: str,
    value: Any,
    reason: str = "",
    actor: Actor = "system",
    request: HttpRequest | None = None,
) -> EntitlementOverride:
    value = entitlement_value_validate(name, value)
    with transaction.atomic():
        existing = EntitlementOverride.objects.select_for_update().filter(tenant=tenant, name=name).first()
        previous = existing.value if existing else None
        override, _ = EntitlementOverride.objects.update_or_create(
            tenant=tenant,
            name=name,
            defaults={
                "value": value,
                "reason": reason,
                "created_by": actor if getattr(actor, "is_authenticated", False) else None,
            },
        )
        audit_record(
            action="entitlement.overridden",
            actor=actor,
            tenant=tenant,
            target=override,
            request=request,
            details={"name": name, "from": previous, "to": value, "reason": reason},
        )
        _invalidate_on_commit(tenant.pk)
    return override


def entitlement_override_clear(
    *, tenant: Tenant, name: str, actor: Actor = "system", request: HttpRequest | None = None
) -> bool:
    with transaction.atomic():
        override = EntitlementOverride.objects.select_for_update().filter(tenant=tenant, name=name).first()
        if override is None:
            return False
        audit_record(
            action="entitlement.override_cleared",
            actor=actor,
            tenant=tenant,
            target=override,
            request=request,
            details={"name": name, "from": override.value},
        )
        override.delete()
        _invalidate_on_commit(tenant.pk)
    return True


# --- usage counters ----------------------------------------------------------------------------------------
# Kept in billing/usage.py (no Stripe import) so the ingestion hot path can count without loading billing.

from .usage import USAGE_KEY, USAGE_KINDS, USAGE_TTL_SECONDS, usage_increment, usage_period  # noqa: E402

__all__ = ["USAGE_KEY", "USAGE_KINDS", "USAGE_TTL_SECONDS", "usage_increment", "usage_period"]


# --- Stripe: webhooks --------------------------------------------------------------------------------------


def _id_of(value: Any) -> str:
    """Stripe fields hold either an id or the expanded object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _ts(value: Any) -> datetime | None:
    if value in (None, "", 0):
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


def _plan_from_metadata(*objects: Any) -> str:
    for obj in objects:
        if isinstance(obj, dict):
            plan = (obj.get("metadata") or {}).get("coliseum_plan", "")
            if plan in Plan.values:
                return str(plan)
    return ""


def _plan_of_price(price: Any) -> str:
    """Price metadata, else its Product's (expanded, or the copy dj-stripe keeps)."""
    if isinstance(price, dict):
        product = price.get("product")
        plan = _plan_from_metadata(price, product if isinstance(product, dict) else None)
        if plan:
            return plan
        price_id, product_id = _id_of(price), _id_of(product)
    else:
        price_id, product_id = _id_of(price), ""
    from djstripe.models import Price, Product

    stored = Price.objects.filter(id=price_id).values_list("metadata", "product_id").first()
    if stored:
        plan = (stored[0] or {}).get("coliseum_plan", "")
        if plan in Plan.values:
            return str(plan)
        product_id = product_id or str(stored[1] or "")
    metadata = Product.objects.filter(id=product_id).values_list("metadata", flat=True).first() or {}
    plan = metadata.get("coliseum_plan", "")
    return str(plan) if plan in Plan.values else ""


def _subscription_plan(subscription: dict[str, Any]) -> str:
    for item in (subscription.get("items") or {}).get("data") or []:
        plan = _plan_of_price(item.get("price"))
        if plan:
            return plan
    return _plan_from_metadata(subscription)


def _subscription_period_end(subscription: dict[str, Any]) -> datetime | None:
    # Since API 2025-03-31 the period lives on the items; older versions keep it on the subscription.
    ends = [item.get("current_period_end") for item in (subscription.get("items") or {}).get("data") or []]
    ends = [e for e in ends if e] or [subscription.get("current_period_end")]
    return _ts(max((e for e in ends if e), default=None))


def _tenant_id_from(*objects: Any) -> int | None:
    for obj in objects:
        if not isinstance(obj, dict):
            continue
        raw = (obj.get("metadata") or {}).get("coliseum_tenant_id") or obj.get("client_reference_id")
        if raw and str(raw).isdigit():
            return int(raw)
    return None


def _account_for_stripe(customer_id: str, *objects: Any) -> BillingAccount | None:
    """The billing account a Stripe object belongs to, locked: by customer id, else by the tenant id we put in
    metadata / client_reference_id when creating the checkout (then the customer id is remembered)."""
    account = None
    if customer_id:
        account = BillingAccount.objects.select_for_update().filter(stripe_customer_id=customer_id).first()
    if account is None:
        tenant_id = _tenant_id_from(*objects)
        if tenant_id is None or not Tenant.objects.filter(pk=tenant_id).exists():
            return None
        BillingAccount.objects.get_or_create(tenant_id=tenant_id)
        account = BillingAccount.objects.select_for_update().get(tenant_id=tenant_id)
        if customer_id and not account.stripe_customer_id:
            account.stripe_customer_id = customer_id
            account.save(update_fields=["stripe_customer_id", "updated_at"])
    return account


def stripe_subscription_apply(
    *, subscription: dict[str, Any], event_type: str, event_created: int
) -> str | None:
    """customer.subscription.created/updated/deleted: take the subscription's state as the tenant's Stripe
    snapshot and re-resolve the plan. An event older than the last applied one changes nothing (Stripe does
    not guarantee delivery order). Returns the plan in force, or None when the customer is not ours."""
    with transaction.atomic():
        account = _account_for_stripe(_id_of(subscription.get("customer")), subscription)
        if account is None:
            return None
        sub_id = _id_of(subscription)
        status = "canceled" if event_type.endswith(".deleted") else str(subscription.get("status") or "")
        if event_created < account.stripe_event_created:
            return None
        if event_created == account.stripe_event_created and _STATUS_RANK.get(status, 0) < _STATUS_RANK.get(
            account.subscription_status, 0
        ):
            # Same second (Stripe's resolution): e.g. `created` (incomplete) arriving after `updated`
            # (active) for a checkout. Never step back in the subscription's lifecycle on a tie.
            return None
        if account.stripe_subscription_id and account.stripe_subscription_id != sub_id:
            # Another subscription of the same customer: only a live one replaces the one we track.
            if status not in LIVE_STATUSES:
                return None
        was_past_due = account.subscription_status == "past_due"
        account.stripe_subscription_id = sub_id
        account.subscription_status = status
        account.subscription_plan = _subscription_plan(subscription) or account.subscription_plan
        account.current_period_end = _subscription_period_end(subscription) or account.current_period_end
        account.cancel_at_period_end = bool(subscription.get("cancel_at_period_end"))
        if status == "past_due":
            if not was_past_due or account.past_due_since is None:
                account.past_due_since = _ts(event_created)
        else:
            account.past_due_since = None
        account.stripe_event_created = event_created
        account.save()
        return tenant_plan_refresh(tenant_id=account.tenant_id, actor="stripe", reason=event_type)


def _invoice_subscription_id(invoice: dict[str, Any]) -> str:
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    return _id_of(invoice.get("subscription") or parent.get("subscription"))


def stripe_invoice_apply(*, invoice: dict[str, Any], event_type: str, event_created: int) -> str | None:
    """invoice.paid / invoice.payment_failed for the tracked subscription: a failed payment starts the grace
    period (past_due), a paid invoice ends it. Stripe also sends customer.subscription.updated; whichever
    arrives first wins and the other then changes nothing."""
    sub_id = _invoice_subscription_id(invoice)
    if not sub_id:
        return None
    with transaction.atomic():
        account = _account_for_stripe(_id_of(invoice.get("customer")), invoice)
        if account is None or account.stripe_subscription_id != sub_id:
            return None
        if event_created < account.stripe_event_created:
            return None
        if event_type == "invoice.payment_failed" and account.subscription_status in ("active", "trialing"):
            account.subscription_status = "past_due"
            account.past_due_since = _ts(event_created)
        elif event_type == "invoice.paid" and account.subscription_status in ("past_due", "unpaid"):
            account.subscription_status = "active"
            account.past_due_since = None
        else:
            return None
        account.stripe_event_created = event_created
        account.save()
        return tenant_plan_refresh(tenant_id=account.tenant_id, actor="stripe", reason=event_type)


def stripe_checkout_apply(*, session: dict[str, Any], event_created: int) -> str | None:
    """checkout.session.completed for a subscription checkout we started: remember the customer and, unless
    a newer subscription event already did, put the bought plan in force at once."""
    if session.get("mode") != "subscription":
        return None
    with transaction.atomic():
        account = _account_for_stripe(_id_of(session.get("customer")), session)
        if account is None or event_created < account.stripe_event_created:
            return None
        plan = _plan_from_metadata(session)
        sub_id = _id_of(session.get("subscription"))
        if not plan or not sub_id or session.get("status") not in (None, "complete"):
            return None
        if account.stripe_subscription_id == sub_id and account.subscription_status:
            return None  # the subscription's own events are the better source
        account.stripe_subscription_id = sub_id
        account.subscription_plan = plan
        account.subscription_status = "active"
        account.cancel_at_period_end = False
        account.past_due_since = None
        account.stripe_event_created = event_created
        account.save()
        return tenant_plan_refresh(
            tenant_id=account.tenant_id, actor="stripe", reason="checkout.session.completed"
        )


# --- Stripe: money events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MoneyEvent:
    tenant: Tenant
    event: dict[str, Any]


def money_event_build(*, stripe_event_id: str, obj: dict[str, Any], event_created: int) -> MoneyEvent | None:
    """A paid checkout session or invoice carrying ticket/tip metadata (`user_id`, `show_id`, `artist_id`) as
    a `treasury.money_spent` Passport event; None when the object is not such a purchase.

    The tenant comes from metadata `coliseum_tenant_id` (or `coliseum_tenant`, a slug), else from the paying
    customer's billing account. The event id is uuid5(namespace, Stripe event id): replays are duplicates."""
    metadata = obj.get("metadata") or {}
    if not any(metadata.get(k) for k in TICKET_METADATA_KEYS) or not metadata.get("user_id"):
        return None
    if obj.get("object") == "checkout.session":
        if obj.get("payment_status") != "paid":
            return None
        amount = obj.get("amount_total")
    else:
        amount = obj.get("amount_paid")
    if not isinstance(amount, int) or amount <= 0 or not obj.get("currency"):
        return None
    tenant = None
    tenant_id = _tenant_id_from({"metadata": metadata})
    if tenant_id is not None:
        tenant = Tenant.objects.filter(pk=tenant_id).first()
    elif metadata.get("coliseum_tenant"):
        tenant = Tenant.objects.filter(slug=metadata["coliseum_tenant"]).first()
    else:
        account = (
            BillingAccount.objects.select_related("tenant")
            .filter(stripe_customer_id=_id_of(obj.get("customer")) or None)
            .first()
        )
        tenant = account.tenant if account else None
    if tenant is None:
        return None
    properties: dict[str, Any] = {
        "amount_minor": amount,
        "currency": str(obj["currency"]).upper(),
        "reason": str(metadata.get("reason") or ("tip" if not metadata.get("show_id") else "ticket")),
    }
    for key in ("show_id", "artist_id"):
        if metadata.get(key):
            properties[key] = str(metadata[key])
    payment_intent = _id_of(obj.get("payment_intent"))
    if payment_intent:
        properties["stripe_payment_intent_id"] = payment_intent
    occurred = _ts(event_created) or timezone.now()
    return MoneyEvent(
        tenant=tenant,
        event={
            "event_id": str(uuid.uuid5(MONEY_EVENT_NAMESPACE, stripe_event_id)),
            "type": "treasury.money_spent",
            "occurred_at": occurred.isoformat().replace("+00:00", "Z"),
            "user_id": str(metadata["user_id"]),
            "properties": properties,
        },
    )


def stripe_money_event_ingest(*, stripe_event_id: str, obj: dict[str, Any], event_created: int) -> bool:
    """Send a ticket/tip payment through the one ingestion path. Raises when ingestion refuses it, so the
    webhook fails and Stripe retries (a payment is never silently dropped)."""
    money = money_event_build(stripe_event_id=stripe_event_id, obj=obj, event_created=event_created)
    if money is None:
        return False
    from ingestion.services import event_batch_ingest

    result = event_batch_ingest(tenant=money.tenant, events=[money.event], source="stripe")
    if result.rejected:
        raise ValueError(f"money event refused by ingestion: {result.rejected}")
    return True


# --- Stripe: checkout and portal ---------------------------------------------------------------------------


def _api_key() -> str:
    from djstripe.settings import djstripe_settings

    return str(djstripe_settings.STRIPE_SECRET_KEY)


def plan_lookup_key(plan: str) -> str:
    return f"coliseum_{plan}_monthly"


def stripe_customer_ensure(*, tenant: Tenant) -> str:
    """The tenant's Stripe customer id, creating the customer on first use (idempotent on Stripe's side)."""
    with transaction.atomic():
        account = _account_for_update(tenant)
        if account.stripe_customer_id:
            return account.stripe_customer_id
        try:
            customer = stripe.Customer.create(
                api_key=_api_key(),
                name=tenant.name,
                metadata={"coliseum_tenant_id": str(tenant.pk), "coliseum_tenant": tenant.slug},
                idempotency_key=f"coliseum-customer-{tenant.pk}",
            )
        except stripe.StripeError as exc:
            raise StripeUnavailableError("Stripe could not be reached; try again shortly.") from exc
        account.stripe_customer_id = str(customer["id"])
        account.save(update_fields=["stripe_customer_id", "updated_at"])
        return account.stripe_customer_id


def checkout_session_create(
    *, tenant: Tenant, plan: str, actor: Actor, request: HttpRequest | None = None
) -> str:
    """A Stripe Checkout URL for subscribing to `plan`. A tenant that already pays is sent to the portal
    instead (a second subscription would bill twice)."""
    if plan not in (Plan.PRO, Plan.ENTERPRISE):
        raise ApplicationError("Choose pro or enterprise; basic is free.", code="invalid_plan")
    account = BillingAccount.objects.filter(tenant=tenant).first()
    if account and account.subscription_status in LIVE_STATUSES:
        raise ApplicationError(
            "This tenant already has a subscription: change plans in the billing portal.",
            code="subscription_exists",
            status_code=409,
        )
    customer_id = stripe_customer_ensure(tenant=tenant)
    try:
        prices = stripe.Price.list(
            api_key=_api_key(), lookup_keys=[plan_lookup_key(plan)], active=True, limit=1
        )
        if not prices.data:
            raise StripeUnavailableError(
                f"No Stripe price for {plan}: an operator must run `manage.py billing_setup`.",
                code="billing_not_configured",
                status_code=503,
            )
        session = stripe.checkout.Session.create(
            api_key=_api_key(),
            mode="subscription",
            customer=customer_id,
            client_reference_id=str(tenant.pk),
            line_items=[{"price": prices.data[0].id, "quantity": 1}],
            success_url=settings.BILLING_CHECKOUT_SUCCESS_URL,
            cancel_url=settings.BILLING_CHECKOUT_CANCEL_URL,
            metadata={"coliseum_tenant_id": str(tenant.pk), "coliseum_plan": plan},
            subscription_data={"metadata": {"coliseum_tenant_id": str(tenant.pk), "coliseum_plan": plan}},
        )
    except stripe.StripeError as exc:
        raise StripeUnavailableError("Stripe could not be reached; try again shortly.") from exc
    with transaction.atomic():
        audit_record(
            action="billing.checkout_started",
            actor=actor,
            tenant=tenant,
            target=tenant,
            request=request,
            details={"plan": plan},
        )
    return str(session["url"])


def billing_portal_session_create(*, tenant: Tenant) -> str:
    customer_id = stripe_customer_ensure(tenant=tenant)
    try:
        session = stripe.billing_portal.Session.create(
            api_key=_api_key(), customer=customer_id, return_url=settings.BILLING_PORTAL_RETURN_URL
        )
    except stripe.StripeError as exc:
        raise StripeUnavailableError("Stripe could not be reached; try again shortly.") from exc
    return str(session["url"])
