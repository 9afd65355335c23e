"""Celery entry points of billing."""

from __future__ import annotations

from celery import shared_task

from coliseum.rls import system_task

from . import services


@shared_task(name="billing.plans_refresh_due", ignore_result=True)
@system_task("plan refresh across tenants")
def plans_refresh_due() -> int:
    """Drop tenants whose past_due grace period or canceled subscription's paid period has ended to the plan
    they are now entitled to (gates already see it lazily; this persists Tenant.plan and the audit row)."""
    return services.plans_refresh_due()
