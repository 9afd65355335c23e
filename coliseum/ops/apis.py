"""Staff endpoints: health, the console's data, and the Prometheus scrape."""

from __future__ import annotations

from typing import Any

import redis
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from coliseum.errors import ApplicationError, ForbiddenError
from coliseum.tenancy import OperatorApi

from .health import health_snapshot
from .history import history_read
from .prometheus import metrics_allowed, metrics_text


class HealthGetApi(OperatorApi):
    """Queue depths, live workers, ingest lag and rates, API error rate and latency per endpoint group,
    database and Redis status, and the alerts now firing."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, tags=["ops"])
    def get(self, request: Request) -> Response:
        snapshot = health_snapshot()
        return Response(snapshot, status=200)


class DashboardGetApi(OperatorApi):
    """What the admin index's dashboard polls: the current figures (live workers included) and the last 24
    hours, a point a minute (events/s, ingest lag, 5xx share, worst p95, deepest queue, live workers)."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, tags=["ops"])
    def get(self, request: Request) -> Response:
        # The worker ping waits for replies: consoles share one ping every few seconds (cached_workers).
        body: dict[str, Any] = {
            "health": health_snapshot(cached_workers=True),
            "history": history_read(),
        }
        return Response(body)


class MetricsGetApi(APIView):
    """Prometheus text format. Bearer METRICS_TOKEN or a client address in METRICS_ALLOWED_IPS."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR}, auth=[], tags=["ops"])
    def get(self, request: Request) -> HttpResponse:
        if not metrics_allowed(request._request):
            raise ForbiddenError(
                "Metrics need the bearer token or an allowed address.", code="metrics_forbidden"
            )
        try:
            body = metrics_text()
        except (redis.RedisError, OSError) as exc:
            # Request counters live in Redis: without it there is no honest answer; say so, not 500.
            raise ApplicationError(
                "Metrics are unavailable: Redis does not answer.", code="metrics_unavailable", status_code=503
            ) from exc
        return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
