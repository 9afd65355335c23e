"""Subscription API: what the tenant has and uses, and the Stripe links to buy or manage a plan.
Owners and admins only."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponse
from djstripe.views import ProcessWebhookView
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from coliseum.errors import error_response
from coliseum.models import Plan, Role
from coliseum.rls import system_scope
from coliseum.tenancy import TenantApi

from . import selectors, services

logger = logging.getLogger(__name__)

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

    @extend_schema(
        operation_id="subscription_detail",
        summary="The tenant's plan, subscription status, entitlements and usage this month",
        parameters=[TENANT_HEADER],
        responses=OutputSerializer,
        tags=["billing"],
    )
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
        summary="A Stripe Checkout URL to subscribe to Pro or Enterprise",
        parameters=[TENANT_HEADER],
        tags=["billing"],
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


class StripeWebhookApi(APIView):
    """dj-stripe's signed webhook endpoint, wrapped so that it is in the OpenAPI schema and answers refusals
    in the error envelope. dj-stripe does the work: signature check (Stripe-Signature, the endpoint's
    secret, 5-minute tolerance), storing the Event once, syncing the objects, then billing's receivers."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(
        operation_id="stripe_webhook",
        summary="Stripe webhook deliveries (signed by Stripe; not for API clients)",
        request=OpenApiTypes.OBJECT,
        responses={
            200: OpenApiResponse(description="Accepted (also for a duplicate delivery)"),
            400: OpenApiResponse(description="Missing or bad signature, or not a Stripe event"),
            404: OpenApiResponse(description="No such endpoint"),
            413: OpenApiResponse(description="Body larger than DATA_UPLOAD_MAX_MEMORY_SIZE"),
            503: OpenApiResponse(description="Processing failed; Stripe retries later"),
        },
        tags=["billing"],
    )
    def post(self, request: Request, uuid: UUID) -> HttpResponse:
        try:
            request._request.body  # noqa: B018  (read once, within DATA_UPLOAD_MAX_MEMORY_SIZE; cached)
        except RequestDataTooBig:
            return error_response("payload_too_large", "The request body is too large.", 413)
        try:
            with system_scope("Stripe webhook: the event names the customer, hence the tenant"):
                response: HttpResponse = ProcessWebhookView.as_view()(request._request, uuid=uuid)
        except Http404:
            return error_response("not_found", "No such webhook endpoint.", 404)
        except Exception:
            # Rolled back by dj-stripe (the Event is not stored), so Stripe's retry processes it again.
            logger.exception("stripe webhook processing failed")
            return error_response("webhook_failed", "The event could not be processed; retry later.", 503)
        if response.status_code == 400:
            return error_response("invalid_signature", "Missing or invalid Stripe signature or event.", 400)
        return response
