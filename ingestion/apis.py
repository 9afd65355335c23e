"""Ingestion's HTTP API: the event catalog, KPIs, and schema-visible wrappers of the raw ingest endpoints."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.entitlements import entitlements_for, plan_required
from coliseum.errors import ApplicationError, NotFoundError
from coliseum.models import Artist
from coliseum.tenancy import TenantApi
from ingestion import http
from ingestion.catalog import METRICS, catalog_describe
from ingestion.selectors import ATTRIBUTION_METRICS, KPI_METRICS, kpi_series, kpi_summary

_ERROR = inline_serializer(
    "ErrorEnvelope",
    {
        "error": inline_serializer(
            "ErrorBody",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.JSONField(),
            },
        )
    },
)
_REJECTED = inline_serializer(
    "RejectedEvent",
    {
        "index": serializers.IntegerField(),
        "event_id": serializers.CharField(allow_null=True),
        "errors": serializers.ListField(child=serializers.CharField()),
    },
)
_ERRORS = {400: _ERROR, 401: _ERROR, 413: _ERROR, 415: _ERROR, 429: _ERROR}


class _RawIngestApi(APIView):
    """Schema-visible wrapper of a plain Django handler (no DRF parsing, auth or negotiation on the hot path:
    the handler authenticates by key / signature and reads the body itself)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        return JSONRenderer(), "application/json"


class PassportEventsIngestApi(_RawIngestApi):
    @extend_schema(
        operation_id="passport_events_ingest",
        summary="Passport webhook: one event or {events: [...]} (<= 1000 events, <= 1 MB)",
        description=(
            "Headers: `X-Passport-Key: <key id>`, `X-Passport-Signature: t=<unix>,v1=<hex "
            'HMAC-SHA256(secret, "<t>.<raw body>")>` (several v1= allowed for rotation; timestamp within '
            "300 s). One bad event does not sink the batch: it is listed in `rejected`. A 202 means the "
            "accepted events are committed."
        ),
        request=OpenApiTypes.OBJECT,
        responses={
            202: inline_serializer(
                "PassportIngestResult",
                {
                    "accepted": serializers.IntegerField(),
                    "duplicates": serializers.IntegerField(),
                    "rejected": _REJECTED,
                },
            ),
            **_ERRORS,
        },
        auth=[],
        tags=["ingestion"],
    )
    def post(self, request: Request) -> HttpResponse:
        return http.passport_webhook(request._request)


_SEGMENT_RESULT = inline_serializer(
    "SegmentIngestResult",
    {
        "success": serializers.BooleanField(),
        "accepted": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(),
        "rejected": serializers.ListField(child=serializers.JSONField()),
    },
)


def _segment_api(call: str | None, label: str | None = None) -> type[APIView]:
    label = label or call or "batch"

    class SegmentApi(_RawIngestApi):
        @extend_schema(
            operation_id=f"segment_{label}",
            summary=f"Segment-compatible /v1/{label}",
            description=(
                "Write key by HTTP Basic (`<writeKey>:`) or a `writeKey` body field. The body is JSON "
                "whatever the declared Content-Type (application/json, text/plain as `navigator.sendBeacon` "
                "sends it, or form-urlencoded as RudderStack's Node SDK declares it), optionally "
                "`Content-Encoding: gzip`. 32 KB a call, 500 KB and 2500 events a batch. `messageId` is the "
                "idempotency key; a call without one gets a stable id derived from its content (so a retry "
                "still dedupes). Answers CORS for any origin."
            ),
            request=OpenApiTypes.OBJECT,
            responses={200: _SEGMENT_RESULT, **_ERRORS},
            auth=[],
            tags=["ingestion"],
        )
        def post(self, request: Request) -> HttpResponse:
            return http.segment_call(request._request, call)

    SegmentApi.__name__ = f"Segment{label.title()}Api"
    return SegmentApi


SEGMENT_APIS: dict[str, type[APIView]] = {c: _segment_api(c) for c in http.SEGMENT_CALLS}
SEGMENT_APIS["batch"] = _segment_api(None)
# /v1/import is Segment's bulk alias of /v1/batch: same handler, its own name in the schema.
SEGMENT_IMPORT_API = _segment_api(None, label="import")


class EventCatalogListApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="events_catalog",
        summary="Every Passport event type with its JSON Schema and the metrics it feeds",
        responses={200: OpenApiTypes.OBJECT},
        tags=["ingestion"],
    )
    def get(self, request: Request) -> Response:
        return Response({"metrics": list(METRICS), "types": catalog_describe(), "custom_prefix": "custom."})


def moment_parse(value: str | None, name: str, zone: ZoneInfo) -> datetime | None:
    """A `from`/`to` query value: a date (midnight in `zone`) or an RFC 3339 time (`zone` when it has no
    offset), in UTC; None when absent. Shared by the KPI, funnel and attribution endpoints."""
    if not value:
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=zone).astimezone(UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApplicationError(
            f"`{name}` must be a date (YYYY-MM-DD) or an RFC 3339 time.",
            code="invalid",
            details={name: value[:100]},
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)


MAX_BUCKETS = {"hourly": 24 * 93, "daily": 731}


class KpiSeriesApi(TenantApi):
    class InputSerializer(serializers.Serializer):
        artist_id = serializers.CharField(required=False, max_length=128)
        period = serializers.ChoiceField(choices=["hourly", "daily"], default="daily")
        metrics = serializers.CharField(required=False, max_length=500)
        tz = serializers.CharField(required=False, max_length=64)
        currency = serializers.RegexField(r"^[A-Z]{3}$", required=False)
        # `from` / `to` are read directly (reserved word).

    @extend_schema(
        operation_id="kpis",
        summary="A gap-filled KPI series and totals for the tenant or one artist",
        parameters=[
            OpenApiParameter("artist_id", str, description="The artist's external id; omit for the tenant"),
            OpenApiParameter("period", str, enum=["hourly", "daily"]),
            OpenApiParameter("from", str, description="Date or RFC 3339 (default: 7 days / 24 hours ago)"),
            OpenApiParameter("to", str, description="Date or RFC 3339, exclusive (default: now)"),
            OpenApiParameter(
                "metrics",
                str,
                description=(
                    f"Comma-separated, of: {', '.join(KPI_METRICS)}. Default: every rollup metric; "
                    "`attributed_revenue` (money spent credited to a touch; Pro and up: `funnels`) "
                    "when asked for. Money metrics are minor units of `currency`."
                ),
            ),
            OpenApiParameter("tz", str, description="IANA zone for daily buckets (default: tenant's)"),
            OpenApiParameter("currency", str, description="ISO 4217 for money metrics (default: tenant's)"),
        ],
        responses={200: OpenApiTypes.OBJECT, 400: _ERROR, 403: _ERROR, 404: _ERROR},
        tags=["kpis"],
    )
    def get(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        period = params["period"]
        ent = entitlements_for(self.tenant)
        if period not in ent.kpi_periods:
            raise plan_required(
                f"{period.title()} KPIs",
                lambda e: period in e.kpi_periods,
                period=period,
                current_plan=ent.plan,
            )
        tz = params.get("tz") or self.tenant.timezone
        if tz not in available_timezones():
            raise ApplicationError("`tz` must be an IANA time zone.", code="invalid", details={"tz": tz})
        zone = ZoneInfo(tz)
        # attributed_revenue is opt-in: the default answer keeps its shape for existing clients.
        metrics = [m.strip() for m in (params.get("metrics") or ",".join(METRICS)).split(",") if m.strip()]
        unknown = [m for m in metrics if m not in KPI_METRICS]
        if unknown or not metrics:
            raise ApplicationError(
                "Unknown metrics.", code="invalid", details={"metrics": unknown, "allowed": list(KPI_METRICS)}
            )
        if not ent.funnels and any(m in ATTRIBUTION_METRICS for m in metrics):
            raise plan_required(
                "Attributed revenue", lambda e: e.funnels, feature="funnels", current_plan=ent.plan
            )
        now = datetime.now(UTC)
        end = moment_parse(request.query_params.get("to"), "to", zone) or now
        default_span = timedelta(hours=24) if period == "hourly" else timedelta(days=7)
        start = moment_parse(request.query_params.get("from"), "from", zone) or end - default_span
        if start >= end:
            raise ApplicationError("`from` must be before `to`.", code="invalid")
        span_units = (end - start) / (timedelta(hours=1) if period == "hourly" else timedelta(days=1))
        if span_units > MAX_BUCKETS[period]:
            raise ApplicationError(
                f"At most {MAX_BUCKETS[period]} {period} buckets a request.",
                code="range_too_large",
                details={"max_buckets": MAX_BUCKETS[period]},
            )
        artist_pk = None
        artist_body = None
        if params.get("artist_id"):
            artist = Artist.objects.filter(tenant=self.tenant, external_id=params["artist_id"]).first()
            if artist is None:
                raise NotFoundError("No such artist.", code="artist_not_found")
            artist_pk = artist.pk
            artist_body = {"id": artist.external_id, "name": artist.name}
        body = kpi_series(
            tenant_id=self.tenant.pk,
            metrics=metrics,
            period=period,
            start=start,
            end=end,
            tz=tz,
            artist_id=artist_pk,
            currency=params.get("currency"),
        )
        body["artist"] = artist_body
        body["from"] = start.isoformat()
        body["to"] = end.isoformat()
        return Response(body)


class KpiSummaryApi(TenantApi):
    @extend_schema(
        operation_id="kpis_summary",
        summary="Tenant totals over a range and the top movers against the previous range of equal length",
        description=(
            "Totals of every rollup metric, plus `attributed_revenue` on plans with `funnels` (Pro and up). "
            "Movers rank one rollup metric (`metric`). Money is in minor units of the reporting currency."
        ),
        parameters=[
            OpenApiParameter("from", str, description="Date or RFC 3339 (default: 7 days ago)"),
            OpenApiParameter("to", str, description="Date or RFC 3339, exclusive (default: now)"),
            OpenApiParameter("metric", str, description="Metric ranking the movers (default plays)"),
        ],
        responses={200: OpenApiTypes.OBJECT, 400: _ERROR},
        tags=["kpis"],
    )
    def get(self, request: Request) -> Response:
        zone = ZoneInfo(self.tenant.timezone)
        end = moment_parse(request.query_params.get("to"), "to", zone) or datetime.now(UTC)
        start = moment_parse(request.query_params.get("from"), "from", zone) or end - timedelta(days=7)
        if start >= end or end - start > timedelta(days=3660):
            raise ApplicationError("`from` must be before `to` (at most 10 years).", code="invalid")
        metric = request.query_params.get("metric", "plays")
        if metric not in METRICS:
            raise ApplicationError("Unknown metric.", code="invalid", details={"allowed": list(METRICS)})
        attribution = entitlements_for(self.tenant).funnels
        return Response(
            kpi_summary(
                tenant=self.tenant, start=start, end=end, mover_metric=metric, attribution=attribution
            )
        )
