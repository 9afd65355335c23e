"""Funnel and attribution endpoints (Pro and Enterprise: the `funnels` entitlement)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.entitlements import entitlements_for, plan_required
from coliseum.errors import ApplicationError, NotFoundError
from coliseum.models import Artist, Tenant
from coliseum.tenancy import TenantApi
from ingestion.apis import moment_parse
from ingestion.catalog import CATALOG
from ingestion.funnels.selectors import FunnelStep, attribution_summary, funnel_compute

_ERROR = inline_serializer(
    "FunnelErrorEnvelope",
    {
        "error": inline_serializer(
            "FunnelErrorBody",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.JSONField(),
            },
        )
    },
)
_ERRORS = {400: _ERROR, 401: _ERROR, 403: _ERROR, 404: _ERROR}

MAX_RANGE = timedelta(days=366)
DEFAULT_RANGE = timedelta(days=30)
DEFAULT_WITHIN = "7d"
MAX_WITHIN = timedelta(days=90)
_WITHIN = re.compile(r"^(\d{1,6})(m|h|d)$")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_STEP = re.compile(
    r"^(?P<type>[a-z][a-z0-9_]*\.[a-z0-9_.]+)(?::(?P<prop>[a-z_][a-z0-9_]*)=(?P<value>.{1,200}))?$"
)


def _invalid(message: str, **details: object) -> ApplicationError:
    return ApplicationError(message, code="invalid", details=details)


def funnels_gate(tenant: Tenant) -> None:
    ent = entitlements_for(tenant)
    if not ent.funnels:
        raise plan_required(
            "Funnels and attribution", lambda e: e.funnels, feature="funnels", current_plan=ent.plan
        )


def range_parse(request: Request, tenant: Tenant) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tenant.timezone)
    end = moment_parse(request.query_params.get("to"), "to", zone) or datetime.now(UTC)
    start = moment_parse(request.query_params.get("from"), "from", zone) or end - DEFAULT_RANGE
    if start >= end:
        raise _invalid("`from` must be before `to`.")
    if end - start > MAX_RANGE:
        raise ApplicationError(
            "At most 366 days a request.", code="range_too_large", details={"max_days": 366}
        )
    return start, end


def within_parse(value: str) -> timedelta:
    match = _WITHIN.match(value)
    if not match:
        raise _invalid("`within` must look like 30m, 2h or 7d.", within=value[:100])
    within = int(match.group(1)) * _UNITS[match.group(2)]
    if not timedelta(minutes=1) <= within <= MAX_WITHIN:
        raise _invalid("`within` must be between 1 minute and 90 days.", within=value)
    return within


def steps_parse(value: str) -> list[FunnelStep]:
    raw = [s.strip() for s in value.split(",") if s.strip()]
    if not 2 <= len(raw) <= 6:
        raise _invalid("A funnel has 2 to 6 steps.", steps=len(raw))
    steps = []
    for index, text in enumerate(raw):
        match = _STEP.match(text)
        if not match or match.group("type") not in CATALOG:
            raise _invalid(
                "Each step is a catalog event type, optionally `:<property>=<value>`.",
                step=index + 1,
                value=text[:200],
            )
        event_type, prop = match.group("type"), match.group("prop")
        if prop is not None and prop not in CATALOG[event_type].schema.__struct_fields__:
            raise _invalid(
                f"`{prop}` is not a property of {event_type}.",
                step=index + 1,
                allowed=list(CATALOG[event_type].schema.__struct_fields__),
            )
        steps.append(FunnelStep(type=event_type, prop=prop, value=match.group("value") if prop else None))
    return steps


def artist_lookup(tenant: Tenant, external_id: str) -> Artist:
    artist = Artist.objects.filter(tenant=tenant, external_id=external_id).first()
    if artist is None:
        raise NotFoundError("No such artist.", code="artist_not_found")
    return artist


class FunnelReportApi(TenantApi):
    class InputSerializer(serializers.Serializer):
        steps = serializers.CharField(max_length=2000)
        within = serializers.CharField(required=False, default=DEFAULT_WITHIN, max_length=20)
        artist_id = serializers.CharField(required=False, max_length=128)
        city = serializers.CharField(required=False, max_length=128)
        genre = serializers.CharField(required=False, max_length=64)
        # `from` / `to` are read directly (reserved word).

    @extend_schema(
        operation_id="funnels",
        summary="Ordered conversion funnel: fans reaching each step within `within` of their first step",
        description=(
            "Steps are catalog event types, each optionally filtered on one property "
            "(`type:prop=value`), 2 to 6, comma-separated. A step-1 event in [from, to) starts a fan's path; "
            "each next step is the earliest matching event after the previous one, within `within` of the "
            "start. `artist_id` / `genre` restrict the steps whose type carries an artist, `city` the steps "
            "whose type carries a city. Pro and Enterprise."
        ),
        parameters=[
            OpenApiParameter(
                "steps", str, required=True, description="e.g. player.track_played,social.artist_followed"
            ),
            OpenApiParameter("from", str, description="Date or RFC 3339 (default: 30 days before `to`)"),
            OpenApiParameter("to", str, description="Date or RFC 3339, exclusive (default: now)"),
            OpenApiParameter("within", str, description="30m, 2h, 7d ... up to 90d (default 7d)"),
            OpenApiParameter("artist_id", str, description="An artist's external id"),
            OpenApiParameter("city", str),
            OpenApiParameter("genre", str),
        ],
        responses={200: OpenApiTypes.OBJECT, **_ERRORS},
        tags=["funnels"],
    )
    def get(self, request: Request) -> Response:
        funnels_gate(self.tenant)
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        steps = steps_parse(params["steps"])
        within = within_parse(params["within"])
        start, end = range_parse(request, self.tenant)
        artist_ids: list[int] | None = None
        artist_body = None
        if params.get("artist_id"):
            artist = artist_lookup(self.tenant, params["artist_id"])
            artist_ids = [artist.pk]
            artist_body = {"id": artist.external_id, "name": artist.name}
        if params.get("genre"):
            in_genre = set(
                Artist.objects.filter(tenant=self.tenant, genres__contains=[params["genre"]]).values_list(
                    "pk", flat=True
                )
            )
            artist_ids = sorted(in_genre if artist_ids is None else in_genre.intersection(artist_ids))
        body = funnel_compute(
            tenant_id=self.tenant.pk,
            steps=steps,
            start=start,
            end=end,
            within=within,
            artist_ids=artist_ids,
            city=params.get("city"),
        )
        body.update(
            {
                "from": start.isoformat(),
                "to": end.isoformat(),
                "within": params["within"],
                "within_seconds": int(within.total_seconds()),
                "artist": artist_body,
                "city": params.get("city"),
                "genre": params.get("genre"),
            }
        )
        return Response(body)


class AttributionReportApi(TenantApi):
    class InputSerializer(serializers.Serializer):
        artist_id = serializers.CharField(required=False, max_length=128)
        group_by = serializers.ChoiceField(choices=["touch_type", "source"], default="touch_type")

    @extend_schema(
        operation_id="attribution",
        summary="Conversions and attributed revenue per touch type or source",
        description=(
            "Conversions (money spent, attendance, votes concerning an artist) in [from, to), grouped by the "
            "type or the campaign source of the fan's last touch of the artist within the tenant's lookback "
            "window (30 days by default). `key: null` holds the unattributed conversions. Revenue is money "
            "spent, in minor units per currency. Pro and Enterprise."
        ),
        parameters=[
            OpenApiParameter("artist_id", str, description="An artist's external id"),
            OpenApiParameter("from", str, description="Date or RFC 3339 (default: 30 days before `to`)"),
            OpenApiParameter("to", str, description="Date or RFC 3339, exclusive (default: now)"),
            OpenApiParameter("group_by", str, enum=["touch_type", "source"]),
        ],
        responses={200: OpenApiTypes.OBJECT, **_ERRORS},
        tags=["funnels"],
    )
    def get(self, request: Request) -> Response:
        funnels_gate(self.tenant)
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        start, end = range_parse(request, self.tenant)
        artist_body = None
        artist_pk = None
        if params.get("artist_id"):
            artist = artist_lookup(self.tenant, params["artist_id"])
            artist_pk = artist.pk
            artist_body = {"id": artist.external_id, "name": artist.name}
        groups = attribution_summary(
            tenant_id=self.tenant.pk, start=start, end=end, group_by=params["group_by"], artist_id=artist_pk
        )
        return Response(
            {
                "from": start.isoformat(),
                "to": end.isoformat(),
                "group_by": params["group_by"],
                "artist": artist_body,
                "groups": groups,
            }
        )
