"""Leaderboards keep no tables (boards live in Redis); one proxy model gives them a place in the admin."""

from __future__ import annotations

from coliseum.models import Tenant


class TenantBoards(Tenant):
    """A tenant seen as the owner of a set of Redis boards (the admin's rebuild action lives here)."""

    class Meta:
        proxy = True
        verbose_name = "leaderboard boards"
        verbose_name_plural = "leaderboard boards"
