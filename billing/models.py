"""Billing state per tenant: the inputs of plan resolution (operator assignment, the Stripe subscription
snapshot) and the operator's per-tenant entitlement overrides. `Tenant.plan` stays the plan in force; it is
derived from these rows by billing.services and never edited by hand."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from coliseum.models import Plan, Tenant


class BillingAccount(models.Model):
    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="billing_account")
    # Operator assignment (admin, `create_tenant --plan`): wins over Stripe while set.
    operator_plan = models.CharField(max_length=20, choices=Plan.choices, blank=True)
    stripe_customer_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    stripe_subscription_id = models.CharField(max_length=255, blank=True)
    # The subscription's status as last reported by Stripe (active, trialing, past_due, canceled, ...).
    subscription_status = models.CharField(max_length=32, blank=True)
    # The plan the subscription's Price/Product metadata `coliseum_plan` names.
    subscription_plan = models.CharField(max_length=20, choices=Plan.choices, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    past_due_since = models.DateTimeField(null=True, blank=True)
    # `created` (unix seconds) of the newest Stripe event applied to the subscription snapshot: an older
    # event delivered late changes nothing.
    stripe_event_created = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"billing account of {self.tenant_id}"


class EntitlementOverride(models.Model):
    """One entitlement of one tenant set by an operator, replacing the plan's value (e.g. a Basic tenant
    allowed 300 API requests per minute for a campaign)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="entitlement_overrides")
    name = models.CharField(max_length=64)
    value = models.JSONField(help_text="JSON value: true/false, a number, null (unlimited) or a list")
    reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="entitlement_override_tenant_name_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value!r}"
