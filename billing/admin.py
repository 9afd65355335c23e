"""Operators assign plans and override entitlements here; every change goes through billing.services
(audited, cache invalidated)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from .entitlements import ENTITLEMENT_NAMES, entitlement_value_validate
from .models import BillingAccount, EntitlementOverride
from .services import (
    entitlement_override_clear,
    entitlement_override_set,
    tenant_plan_assign,
    tenant_plan_unassign,
)


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    list_display = (
        "tenant",
        "operator_plan",
        "subscription_plan",
        "subscription_status",
        "current_period_end",
    )
    list_filter = ("operator_plan", "subscription_status")
    search_fields = ("tenant__slug", "stripe_customer_id")
    autocomplete_fields = ("tenant",)
    fields = (
        "tenant",
        "operator_plan",
        "stripe_customer_id",
        "stripe_subscription_id",
        "subscription_status",
        "subscription_plan",
        "current_period_end",
        "cancel_at_period_end",
        "past_due_since",
    )
    # Only the operator assignment is edited here; the Stripe snapshot comes from webhooks.
    readonly_fields = fields[2:]

    def has_delete_permission(self, request: HttpRequest, obj: BillingAccount | None = None) -> bool:
        return False  # clearing the operator plan (audited) is the way back to Stripe / Basic

    def get_readonly_fields(self, request: HttpRequest, obj: BillingAccount | None = None) -> Any:
        return (*self.readonly_fields, "tenant") if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: BillingAccount, form: Any, change: bool) -> None:
        plan = obj.operator_plan
        if not change:
            obj.operator_plan = ""
            obj.save()
        if plan:
            tenant_plan_assign(tenant=obj.tenant, plan=plan, actor=request.user, request=request)
        else:
            tenant_plan_unassign(tenant=obj.tenant, actor=request.user, request=request)
        obj.refresh_from_db()


class EntitlementOverrideForm(forms.ModelForm):  # type: ignore[type-arg]
    name = forms.ChoiceField(choices=[(n, n) for n in ENTITLEMENT_NAMES])

    class Meta:
        model = EntitlementOverride
        fields = ("tenant", "name", "value", "reason")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "name" in data and "value" in data:
            try:
                data["value"] = entitlement_value_validate(data["name"], data["value"])
            except ValueError as exc:
                self.add_error("value", str(exc))
        return data


@admin.register(EntitlementOverride)
class EntitlementOverrideAdmin(admin.ModelAdmin):
    form = EntitlementOverrideForm
    list_display = ("tenant", "name", "value_json", "reason", "updated_at")
    list_filter = ("name",)
    search_fields = ("tenant__slug",)
    autocomplete_fields = ("tenant",)

    @admin.display(description="value")
    def value_json(self, obj: EntitlementOverride) -> str:
        return json.dumps(obj.value)

    def save_model(self, request: HttpRequest, obj: EntitlementOverride, form: Any, change: bool) -> None:
        saved = entitlement_override_set(
            tenant=obj.tenant,
            name=obj.name,
            value=obj.value,
            reason=obj.reason,
            actor=request.user,
            request=request,
        )
        obj.pk = saved.pk
        if change and "name" in form.changed_data:
            entitlement_override_clear(
                tenant=obj.tenant, name=form.initial["name"], actor=request.user, request=request
            )

    def delete_model(self, request: HttpRequest, obj: EntitlementOverride) -> None:
        entitlement_override_clear(tenant=obj.tenant, name=obj.name, actor=request.user, request=request)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            self.delete_model(request, obj)
