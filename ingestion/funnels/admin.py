"""Operators set a tenant's attribution lookback here. Attributed conversions are shown read-only (they are
written by the processor only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import AttributedConversion, AttributionSettings
from .services import attribution_settings_update


@admin.register(AttributionSettings)
class AttributionSettingsAdmin(admin.ModelAdmin):
    list_display = ("tenant", "lookback_days", "updated_at")
    autocomplete_fields = ("tenant",)

    def save_model(self, request: HttpRequest, obj: AttributionSettings, form: Any, change: bool) -> None:
        # Through the service: the tenant's stored conversions are re-decided with the new lookback.
        row = attribution_settings_update(tenant_id=obj.tenant_id, lookback_days=obj.lookback_days)
        obj.pk, obj.updated_at = row.pk, row.updated_at


@admin.register(AttributedConversion)
class AttributedConversionAdmin(admin.ModelAdmin):
    # No user ids in the list (a fan id may be personal data); the detail page is read-only.
    list_display = ("conversion_type", "conversion_at", "tenant", "artist_id", "touch_type", "source")
    list_filter = ("conversion_type", "touch_type")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
