"""What each plan allows: one declarative table. Every gate (API permissions and throttles, the WebSocket
consumer, report rendering, ingestion rate limits) reads it through `entitlements_for(tenant)`.

Operators can override single entitlements per tenant (billing.models.EntitlementOverride, via the admin)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from django.core.cache import cache
from django.db import connection
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

from coliseum.errors import PlanRequiredError
from coliseum.models import Plan, Tenant

ALL_WINDOWS = ("1h", "24h", "7d", "30d", "90d", "all")


@dataclass(frozen=True)
class Entitlements:
    plan: str
    leaderboard_windows: tuple[str, ...]
    leaderboard_filters: bool  # city / genre / show filters
    leaderboard_depth: int
    kpi_periods: tuple[str, ...]
    reports_per_month: int | None  # None: unlimited
    report_watermark: bool
    report_custom_branding: bool
    report_one_time_links: bool
    api_requests_per_minute: int
    ingest_events_per_second: int
    live_feed: bool  # WebSocket feed and jumbotron
    funnels: bool

    def as_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


PLAN_ENTITLEMENTS: dict[str, Entitlements] = {
    Plan.BASIC: Entitlements(
        plan=Plan.BASIC,
        leaderboard_windows=("24h", "7d"),
        leaderboard_filters=False,
        leaderboard_depth=10,
        kpi_periods=("daily",),
        reports_per_month=5,
        report_watermark=True,
        report_custom_branding=False,
        report_one_time_links=False,
        api_requests_per_minute=60,
        ingest_events_per_second=100,
        live_feed=False,
        funnels=False,
    ),
    Plan.PRO: Entitlements(
        plan=Plan.PRO,
        leaderboard_windows=ALL_WINDOWS,
        leaderboard_filters=True,
        leaderboard_depth=100,
        kpi_periods=("hourly", "daily"),
        reports_per_month=100,
        report_watermark=False,
        report_custom_branding=True,
        report_one_time_links=False,
        api_requests_per_minute=600,
        ingest_events_per_second=1000,
        live_feed=False,
        funnels=True,
    ),
    Plan.ENTERPRISE: Entitlements(
        plan=Plan.ENTERPRISE,
        leaderboard_windows=ALL_WINDOWS,
        leaderboard_filters=True,
        leaderboard_depth=100,
        kpi_periods=("hourly", "daily"),
        reports_per_month=None,
        report_watermark=False,
        report_custom_branding=True,
        report_one_time_links=True,
        api_requests_per_minute=6000,
        ingest_events_per_second=10000,
        live_feed=True,
        funnels=True,
    ),
}

ENTITLEMENT_NAMES = tuple(f.name for f in fields(Entitlements) if f.name != "plan")
PLAN_ORDER = (Plan.BASIC, Plan.PRO, Plan.ENTERPRISE)


def entitlements_for_plan(plan: str, overrides: dict[str, Any] | None = None) -> Entitlements:
    base = PLAN_ENTITLEMENTS.get(plan, PLAN_ENTITLEMENTS[Plan.BASIC])
    if not overrides:
        return base
    return _apply_overrides(base, overrides)


def entitlement_value_validate(name: str, value: Any) -> Any:
    """Check an operator override against the entitlement's type; returns the value in stored form.

    Raises ValueError with a message fit for the admin form."""
    if name not in ENTITLEMENT_NAMES:
        raise ValueError(f"unknown entitlement {name!r}; one of: {', '.join(ENTITLEMENT_NAMES)}")
    sample = getattr(PLAN_ENTITLEMENTS[Plan.BASIC], name)
    if isinstance(sample, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} takes true or false")
        return value
    if isinstance(sample, tuple):
        allowed = ALL_WINDOWS if name == "leaderboard_windows" else ("hourly", "daily")
        if not isinstance(value, list | tuple) or not all(v in allowed for v in value):
            raise ValueError(f"{name} takes a list drawn from {', '.join(allowed)}")
        return list(value)
    # Integers; reports_per_month also takes null (unlimited).
    if value is None and name == "reports_per_month":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} takes a non-negative integer" + (" or null" if "reports" in name else ""))
    return value


def _apply_overrides(base: Entitlements, overrides: dict[str, Any]) -> Entitlements:
    clean: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in ENTITLEMENT_NAMES:
            continue
        clean[name] = tuple(value) if isinstance(value, list) else value
    return replace(base, **clean) if clean else base


logger = logging.getLogger(__name__)
CACHE_ERRORS = (RedisError, ConnectionInterrupted)
CACHE_KEY = "billing:entitlements:{tenant_id}"
CACHE_SECONDS = 3600  # invalidated explicitly on every change; the TTL only bounds stale keys


def entitlements_invalidate(tenant_id: int) -> None:
    """Forget the cached entitlements of a tenant. Called (on commit) by every plan or override change."""
    try:
        cache.delete(CACHE_KEY.format(tenant_id=tenant_id))
    except CACHE_ERRORS:
        # Redis is down, so nothing can read the stale value now; its TTL bounds it after a restart
        # without a flush (operators: flush `billing:entitlements:*` if Redis came back with old data).
        logger.warning("entitlements cache unavailable; could not invalidate")


# One round trip on a cache miss: the plan in force, the billing account's plan inputs (for the deadline at
# which the plan lapses by itself) and the overrides. Tables are billing's own plus coliseum_tenant's plan.
_SNAPSHOT_SQL = """
SELECT t.plan,
       a.id IS NOT NULL,
       a.operator_plan, a.subscription_status, a.subscription_plan,
       a.current_period_end, a.cancel_at_period_end, a.past_due_since,
       COALESCE((SELECT jsonb_object_agg(o.name, o.value)
                   FROM billing_entitlementoverride o WHERE o.tenant_id = t.id), '{}'::jsonb)
  FROM coliseum_tenant t
  LEFT JOIN billing_billingaccount a ON a.tenant_id = t.id
 WHERE t.id = %s
"""


def _snapshot_load(tenant_id: int) -> dict[str, Any]:
    """The inputs of entitlements_for, read from the database in one query."""
    from .models import BillingAccount
    from .services import plan_deadline

    with connection.cursor() as cursor:
        cursor.execute(_SNAPSHOT_SQL, [tenant_id])
        row = cursor.fetchone()
    if row is None:
        return {"plan": str(Plan.BASIC), "overrides": {}, "review_at": None}
    (
        plan,
        has_account,
        operator_plan,
        status,
        sub_plan,
        period_end,
        cancel_at_end,
        past_due_since,
        overrides,
    ) = row
    review_at = None
    if has_account:
        account = BillingAccount(
            operator_plan=operator_plan,
            subscription_status=status,
            subscription_plan=sub_plan,
            current_period_end=period_end,
            cancel_at_period_end=cancel_at_end,
            past_due_since=past_due_since,
        )
        deadline = plan_deadline(account)
        review_at = deadline.timestamp() if deadline else None
    if isinstance(overrides, str):
        overrides = json.loads(overrides)
    return {"plan": str(plan), "overrides": overrides or {}, "review_at": review_at}


def entitlements_for(tenant: Tenant) -> Entitlements:
    """The entitlements in force for a tenant now: its plan's row, with operator overrides applied.

    One Redis GET when warm, one query when not. The plan is read from the database when the cache is filled
    (not from the passed instance, which may be stale: a long-lived WebSocket consumer sees a plan change at
    once). When a grace period or paid period has run out since, the plan is re-resolved (and `Tenant.plan`
    updated) here, lazily, as well as by the beat job."""
    return entitlements_for_tenant_id(tenant.pk)


def entitlements_for_tenant_id(tenant_id: int) -> Entitlements:
    key = CACHE_KEY.format(tenant_id=tenant_id)
    try:
        snapshot = cache.get(key)
    except CACHE_ERRORS:
        # Redis down: answer from the database (one query) rather than fail every gated request.
        logger.warning("entitlements cache unavailable; reading the database")
        snapshot = None
    if snapshot is None or (snapshot["review_at"] is not None and snapshot["review_at"] <= time.time()):
        if snapshot is not None:
            from .services import tenant_plan_refresh

            tenant_plan_refresh(tenant_id=tenant_id)
        snapshot = _snapshot_load(tenant_id)
        try:
            cache.set(key, snapshot, CACHE_SECONDS)
        except CACHE_ERRORS:
            pass
    return _apply_overrides(entitlements_for_plan(snapshot["plan"]), snapshot["overrides"])


def plan_required(what: str, predicate: Any, **details: Any) -> PlanRequiredError:
    """The refusal every gate raises: 403 `plan_required`, naming the cheapest plan that allows `what`
    (`details` adds context such as current_plan, used/limit)."""
    plan = cheapest_plan_allowing(predicate)
    needed = f"the {plan.title()} plan" if plan else "a custom plan"
    return PlanRequiredError(f"{what} needs {needed}.", details={"required_plan": plan, **details})


def cheapest_plan_allowing(predicate: Any) -> str | None:
    """The lowest plan whose entitlements satisfy `predicate` (for the `plan_required` error message)."""
    for plan in PLAN_ORDER:
        if predicate(PLAN_ENTITLEMENTS[plan]):
            return str(plan)
    return None
