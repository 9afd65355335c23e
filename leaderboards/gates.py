"""Plan gates for boards and the live feed, in one place (billing may move them to billing/permissions.py).

Every refusal raises PlanRequiredError (403, code plan_required) naming the cheapest plan that allows it."""

from __future__ import annotations

from collections.abc import Callable

from billing.entitlements import Entitlements, entitlements_for, plan_required
from coliseum.errors import PlanRequiredError
from coliseum.models import Tenant


def _refuse(what: str, predicate: Callable[[Entitlements], bool], current: str) -> PlanRequiredError:
    return plan_required(what, predicate, current_plan=current)


def board_access_check(
    *,
    tenant: Tenant,
    window: str,
    filtered: bool,
    depth: int | None = None,
    live: bool = False,
    entitlements: Entitlements | None = None,
) -> int:
    """Refuse what the tenant's plan does not allow; returns the plan's board depth."""
    ent = entitlements or entitlements_for(tenant)
    if live and not ent.live_feed:
        raise _refuse("The live feed", lambda e: e.live_feed, ent.plan)
    if window not in ent.leaderboard_windows:
        raise _refuse(f"The {window} window", lambda e: window in e.leaderboard_windows, ent.plan)
    if filtered and not ent.leaderboard_filters:
        raise _refuse("City, genre and show filters", lambda e: e.leaderboard_filters, ent.plan)
    if depth is not None and depth > ent.leaderboard_depth:
        raise _refuse(f"Reading {depth} places deep", lambda e: e.leaderboard_depth >= depth, ent.plan)
    return ent.leaderboard_depth


def board_entitlements(tenant: Tenant) -> Entitlements:
    return entitlements_for(tenant)


def live_feed_allowed(tenant: Tenant) -> bool:
    return entitlements_for(tenant).live_feed
