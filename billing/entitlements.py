"""What each plan allows: one declarative table. Every gate (API permissions and throttles, the WebSocket
consumer, report rendering, ingestion rate limits) reads it through `entitlements_for(tenant)`.

Operators can override single entitlements per tenant (billing.models.EntitlementOverride, via the admin)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

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
    return replace(base, **{k: v for k, v in overrides.items() if k in ENTITLEMENT_NAMES})


def entitlements_for(tenant: Tenant) -> Entitlements:
    """The entitlements in force for a tenant now: its plan's row, with operator overrides applied.

    The billing issue wires overrides and the Stripe-derived plan into `tenant.plan`; this stays the one
    entry point every gate calls."""
    return entitlements_for_plan(tenant.plan)


def cheapest_plan_allowing(predicate: Any) -> str | None:
    """The lowest plan whose entitlements satisfy `predicate` (for the `plan_required` error message)."""
    for plan in PLAN_ORDER:
        if predicate(PLAN_ENTITLEMENTS[plan]):
            return str(plan)
    return None
