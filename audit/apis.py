"""The audit-log APIs: operators see every tenant, a tenant's owners and admins see their own tenant.

Both are cursor-paginated (newest first, stable while entries keep arriving) and share the filters; the
CSV export streams the same filtered list (operators always; tenants on the Enterprise plan)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.entitlements import plan_required
from coliseum.models import Plan, Role, Tenant
from coliseum.pagination import CursorPagination
from coliseum.rls import scope_kept
from coliseum.tenancy import OperatorApi, TenantApi

from .models import AuditEntry
from .selectors import CSV_COLUMNS, audit_csv_rows, audit_entries_list, audit_export_allowed
from .services import audit_record


class AuditCursorPagination(CursorPagination):
    ordering = ("-at", "-id")  # type: ignore[assignment]  # DRF accepts a tuple


class FilterSerializer(serializers.Serializer):
    actor = serializers.CharField(required=False, max_length=150, help_text="Actor label or actor type.")
    action = serializers.CharField(required=False, max_length=100, help_text="Dotted action prefix.")
    target_type = serializers.CharField(required=False, max_length=100)
    target_id = serializers.CharField(required=False, max_length=100)
    since = serializers.DateTimeField(required=False, help_text="Inclusive lower bound (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Exclusive upper bound (ISO 8601).")
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=100)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": "must be after since"})
        return attrs


class AdminFilterSerializer(FilterSerializer):
    tenant = serializers.SlugField(required=False, max_length=63, help_text="Tenant slug.")


class AuditEntryOutputSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label")

    class Meta:
        model = AuditEntry
        fields = CSV_COLUMNS  # the API and the CSV export show the same columns


def _filters(data: dict[str, Any]) -> dict[str, Any]:
    keys = ("actor", "action", "target_type", "target_id", "since", "until")
    return {k: data.get(k) for k in keys}


def _page(request: Request, view: APIView, qs: QuerySet[AuditEntry]) -> Response:
    paginator = AuditCursorPagination()
    page = paginator.paginate_queryset(qs, request, view=view)
    return paginator.get_paginated_response(AuditEntryOutputSerializer(page, many=True).data)


def _csv_response(qs: QuerySet[AuditEntry], filename: str) -> StreamingHttpResponse:
    limit = int(getattr(settings, "AUDIT_EXPORT_MAX_ROWS", 100_000))

    class _Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        for row in audit_csv_rows(qs[:limit].iterator(chunk_size=2000)):
            yield writer.writerow(row)

    response = StreamingHttpResponse(scope_kept(lines()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


_LIST_RESPONSES = {200: AuditEntryOutputSerializer(many=True)}
_CSV_RESPONSES = {(200, "text/csv"): OpenApiTypes.STR}


class AdminAuditLogListApi(OperatorApi):
    """Operators (staff): every tenant's entries; `?tenant=<slug>` narrows to one."""

    def _queryset(self, request: Request) -> QuerySet[AuditEntry]:
        params = AdminFilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        qs = audit_entries_list(**_filters(params.validated_data))
        slug = params.validated_data.get("tenant")
        if slug:
            qs = qs.filter(tenant_id__in=Tenant.objects.filter(slug=slug).values("id"))
        return qs

    @extend_schema(parameters=[AdminFilterSerializer], responses=_LIST_RESPONSES, tags=["audit"])
    def get(self, request: Request) -> Response:
        return _page(request, self, self._queryset(request))


class AdminAuditLogExportApi(AdminAuditLogListApi):
    @extend_schema(parameters=[AdminFilterSerializer], responses=_CSV_RESPONSES, tags=["audit"])
    def get(self, request: Request) -> StreamingHttpResponse:  # type: ignore[override]
        qs = self._queryset(request)
        with transaction.atomic():
            audit_record(action="audit.exported", request=request, details={"scope": "all"})
        return _csv_response(qs, "audit-log.csv")


class TenantAuditLogListApi(TenantApi):
    """A tenant's owners and admins: their own tenant's entries only."""

    min_role = Role.ADMIN

    def _queryset(self, request: Request) -> QuerySet[AuditEntry]:
        params = FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        return audit_entries_list(tenant_id=self.tenant.pk, **_filters(params.validated_data))

    @extend_schema(parameters=[FilterSerializer], responses=_LIST_RESPONSES, tags=["audit"])
    def get(self, request: Request) -> Response:
        return _page(request, self, self._queryset(request))


class TenantAuditLogExportApi(TenantAuditLogListApi):
    @extend_schema(parameters=[FilterSerializer], responses=_CSV_RESPONSES, tags=["audit"])
    def get(self, request: Request) -> StreamingHttpResponse:  # type: ignore[override]
        if not audit_export_allowed(tenant=self.tenant):
            raise plan_required(
                "Exporting the audit log", lambda e: e.plan == Plan.ENTERPRISE, current_plan=self.tenant.plan
            )
        qs = self._queryset(request)
        with transaction.atomic():
            audit_record(
                action="audit.exported", request=request, tenant=self.tenant, details={"scope": "tenant"}
            )
        return _csv_response(qs, f"audit-log-{self.tenant.slug}.csv")
