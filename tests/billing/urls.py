"""Test-only routes: a probe view gated by PlanAllows, beside the real URLconf."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from billing.permissions import PlanAllows
from coliseum.tenancy import TenantApi


class LiveFeedProbeApi(TenantApi):
    permission_classes = [IsAuthenticated, PlanAllows("live_feed")]

    def get(self, request: Request) -> Response:
        return Response({"tenant": self.tenant.slug})


urlpatterns: list[URLPattern | URLResolver] = [
    path("test/live-feed", LiveFeedProbeApi.as_view()),
    path("", include("coliseum.urls")),
]
