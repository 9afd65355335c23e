"""Plan changes. The billing issue adds Stripe-derived plans and grace periods; operator assignment and the
audit row are here from the start so that `create_tenant --plan` and the admin use one path."""

from __future__ import annotations

from django.db import transaction

from audit.services import Actor, audit_record
from coliseum.models import Plan, Tenant


def tenant_plan_assign(*, tenant: Tenant, plan: str, actor: Actor = "system") -> Tenant:
    """An operator assigns a plan (wins over Stripe while set)."""
    if plan not in Plan.values:
        raise ValueError(f"unknown plan {plan!r}")
    with transaction.atomic():
        previous = tenant.plan
        if previous != plan:
            tenant.plan = plan
            tenant.save(update_fields=["plan"])
            audit_record(
                action="plan.assigned",
                actor=actor,
                tenant=tenant,
                target=tenant,
                details={"from": previous, "to": plan, "source": "operator"},
            )
    return tenant
