"""Billing reads: the subscription summary and this month's usage."""

from __future__ import annotations

from typing import Any

from django_redis import get_redis_connection

from coliseum.models import Tenant

from .entitlements import entitlements_for
from .models import BillingAccount
from .services import USAGE_KEY, USAGE_KINDS, plan_resolve, usage_period


def usage_this_period(tenant: Tenant) -> dict[str, Any]:
    """This calendar month's (UTC) usage from the Redis counters `usage:{tenant_id}:{YYYYMM}:{kind}`,
    kind in api_calls | events | reports (raw keys, no cache prefix; see billing.services.usage_increment)."""
    period = usage_period()
    keys = [USAGE_KEY.format(tenant_id=tenant.pk, period=period, kind=kind) for kind in USAGE_KINDS]
    values = get_redis_connection("default").mget(keys)
    usage: dict[str, Any] = {kind: int(v or 0) for kind, v in zip(USAGE_KINDS, values, strict=True)}
    usage["period"] = f"{period[:4]}-{period[4:]}"
    return usage


def subscription_summary(*, tenant: Tenant) -> dict[str, Any]:
    account = BillingAccount.objects.filter(tenant=tenant).first()
    entitlements = entitlements_for(tenant)
    summary: dict[str, Any] = {
        "plan": entitlements.plan,
        "source": "default",
        "status": None,
        "current_period_end": None,
        "cancel_at_period_end": False,
        "grace_period_ends_at": None,
        "entitlements": entitlements.as_json(),
        "usage": usage_this_period(tenant),
    }
    if account is not None:
        _, source, deadline = plan_resolve(account)
        summary.update(
            source=source,
            status=account.subscription_status or None,
            current_period_end=account.current_period_end,
            cancel_at_period_end=account.cancel_at_period_end,
            grace_period_ends_at=deadline if account.subscription_status == "past_due" else None,
        )
    elif entitlements.plan != "basic":
        summary["source"] = "operator"
    return summary
