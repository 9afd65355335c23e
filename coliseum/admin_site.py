"""The admin site: Coliseum's own apps first, then the frameworks' (accounts, beat, tokens), and dj-stripe's
Stripe mirror (dozens of models an operator rarely opens) last, below ours."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest

# Top-level packages of Coliseum's own apps (coliseum.privacy and ingestion.funnels included).
OUR_PACKAGES = frozenset({"coliseum", "ingestion", "leaderboards", "reports", "billing", "audit"})
LAST_APPS = frozenset({"djstripe"})


def app_group(app_label: str) -> int:
    """0: ours, 1: frameworks', 2: dj-stripe's."""
    if app_label in LAST_APPS:
        return 2
    package = apps.get_app_config(app_label).name.split(".")[0]
    return 0 if package in OUR_PACKAGES else 1


class ColiseumAdminSite(AdminSite):
    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        app_list = super().get_app_list(request, app_label)
        # A stable sort: within a group the apps stay in Django's alphabetical order.
        return sorted(app_list, key=lambda app: app_group(app["app_label"]))


class ColiseumAdminConfig(AdminConfig):
    """django.contrib.admin with Coliseum's site (INSTALLED_APPS names this instead of the plain admin)."""

    default_site = "coliseum.admin_site.ColiseumAdminSite"
