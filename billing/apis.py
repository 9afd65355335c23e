"""Subscription API: what the tenant has and uses, and the Stripe links to buy or manage a plan.
Owners and admins only."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from coliseum.models import Plan, Role
from coliseum.tenancy import TenantApi

from . import selectors, services

TENANT_HEADER = OpenApiParameter(
    "X-Tenant",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Tenant slug; needed only when the caller belongs to several tenants.",
)


class SubscriptionDetailApi(TenantApi):
    min_role = Role.ADMIN

    class UsageSerializer(serializers.Serializer):
        period = serializers.CharField(help_text="YYYY-MM (UTC calendar month)")
        api_calls = serializers.IntegerField()
        events = serializers.IntegerField()
        reports = serializers.IntegerField()

    class OutputSerializer(serializers.Serializer):
        plan = serializers.ChoiceField(choices=Plan.choices)
        source = serializers.ChoiceField(choices=["operator", "stripe", "default"])  # type: ignore[assignment]
        status = serializers.CharField(allow_null=True, help_text="Stripe subscription status")
        current_period_end = serializers.DateTimeField(allow_null=True)
        cancel_at_period_end = serializers.BooleanField()
        grace_period_ends_at = serializers.DateTimeField(allow_null=True)
        entitlements = serializers.DictField(child=serializers.JSONField())
        usage = serializers.DictField(child=serializers.JSONField())

    @extend_schema(operation_id="subscription_detail", parameters=[TENANT_HEADER], responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        summary = selectors.subscription_summary(tenant=self.tenant)
        return Response(self.OutputSerializer(summary).data)


class SubscriptionUpgradeApi(TenantApi):
    min_role = Role.ADMIN

    class InputSerializer(serializers.Serializer):
        plan = serializers.ChoiceField(choices=[Plan.PRO, Plan.ENTERPRISE])

    class OutputSerializer(serializers.Serializer):
        url = serializers.URLField(help_text="Stripe Checkout page: send the user's browser there")

    @extend_schema(
        operation_id="subscription_upgrade",
        parameters=[TENANT_HEADER],
        request=InputSerializer,
        responses=OutputSerializer,
    )
    def post(self, request: Request) -> Response:
        data = self._valid(request.data)
        url = services.checkout_session_create(
            tenant=self.tenant, plan=data["plan"], actor=request.user, request=request
        )
        return Response(self.OutputSerializer({"url": url}).data)

    def _valid(self, raw: Any) -> dict[str, Any]:
        serializer = self.InputSerializer(data=raw if isinstance(raw, dict) else {})
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


class SubscriptionPortalApi(TenantApi):
    min_role = Role.ADMIN

    class OutputSerializer(serializers.Serializer):
        url = serializers.URLField(help_text="Stripe billing portal session")

    @extend_schema(
        operation_id="subscription_portal",
        parameters=[TENANT_HEADER],
        request=None,
        responses=OutputSerializer,
    )
    def post(self, request: Request) -> Response:
        url = services.billing_portal_session_create(tenant=self.tenant)
        return Response(self.OutputSerializer({"url": url}).data)
