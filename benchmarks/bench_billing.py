"""(p) Plan gates' cost per request: `entitlements_for` warm (one Redis GET) and cold (one SQL query), and
the per-tenant API throttle (`TenantPlanThrottle.allow_request`: cached tenant lookup, entitlements, one
pipelined INCR/EXPIRE round trip). Figures in the README, billing section.

Discovered by benchmarks/run.py (`make bench`). Creates one tenant and user in the benchmark database and
removes them at the end."""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

RUNS = 3000
COLD_RUNS = 300


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def plan_gates(ctx: Any = None) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from billing.entitlements import entitlements_for, entitlements_invalidate
    from billing.services import entitlement_override_set, tenant_plan_assign
    from billing.throttles import TenantPlanThrottle
    from coliseum.models import Membership, Tenant

    tenant = Tenant.objects.create(slug="bench-billing", name="Bench billing")
    user = get_user_model().objects.create_user(username="bench-billing", password=None)
    Membership.objects.create(user=user, tenant=tenant, role="owner")
    try:
        tenant_plan_assign(tenant=tenant, plan="pro")
        # A limit the loop cannot reach: the benchmark measures the check, not refusals.
        entitlement_override_set(tenant=tenant, name="api_requests_per_minute", value=10**9)

        cold: list[float] = []
        for _ in range(COLD_RUNS):
            entitlements_invalidate(tenant.pk)
            started = time.perf_counter()
            entitlements_for(tenant)
            cold.append(time.perf_counter() - started)
        warm: list[float] = []
        for _ in range(RUNS):
            started = time.perf_counter()
            entitlements_for(tenant)
            warm.append(time.perf_counter() - started)

        throttle = TenantPlanThrottle()
        factory = APIRequestFactory()
        throttled: list[float] = []
        for _ in range(RUNS):
            request = Request(factory.get("/api/v1/subscriptions"))
            request.user = user
            started = time.perf_counter()
            assert throttle.allow_request(request, None)
            throttled.append(time.perf_counter() - started)
        return {
            "title": "plan gates per request",
            "entitlements_warm_p50_ms": _ms(statistics.median(warm)),
            "entitlements_warm_p99_ms": _ms(_pct(warm, 0.99)),
            "entitlements_cold_p50_ms": _ms(statistics.median(cold)),
            "throttle_check_p50_ms": _ms(statistics.median(throttled)),
            "throttle_check_p99_ms": _ms(_pct(throttled, 0.99)),
        }
    finally:
        tenant.delete()
        user.delete()


SECTIONS = {"p": plan_gates}


if __name__ == "__main__":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coliseum.settings.local")
    django.setup()
    print(plan_gates())
