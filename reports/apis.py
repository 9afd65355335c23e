"""Reports, uploads and report schedules over HTTP; `/r/<token>` serves share links."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from coliseum.errors import ApplicationError, PayloadTooLargeError
from coliseum.models import Role
from coliseum.pagination import PageNumberPagination
from coliseum.tenancy import TenantApi

from .models import (
    Frequency,
    Report,
    ReportFormat,
    ReportKind,
    ReportSchedule,
    ReportStatus,
    Upload,
    UploadPurpose,
)
from .schema import REPORT_JSON_SCHEMA
from .selectors import report_get, report_list, report_schedule_list, upload_get
from .services.links import download_url, report_download_record, share_link_use, share_url
from .services.reports import report_request
from .services.schedules import report_schedule_create, report_schedule_delete
from .services.uploads import upload_create
from .storage import private_storage

HEX_COLOR = r"^#[0-9a-fA-F]{6}$"
ERROR = OpenApiResponse(description='Error envelope {"error": {"code", "message", "details"}}')


class BrandingSerializer(serializers.Serializer):
    primary_color = serializers.RegexField(HEX_COLOR, required=False, help_text="#RRGGBB")
    logo_upload_id = serializers.IntegerField(required=False, min_value=1, allow_null=True)


class ShareSerializer(serializers.Serializer):
    expires_in = serializers.IntegerField(
        required=False,
        min_value=60,
        max_value=settings.REPORTS_SHARE_MAX_SECONDS,
        help_text="seconds, ≤ 30 days",
    )
    one_time = serializers.BooleanField(required=False, default=False)


class ReportParamsMixin(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ReportKind.choices)
    format = serializers.ChoiceField(choices=ReportFormat.choices)
    artist_id = serializers.IntegerField(required=False, min_value=1)
    show_id = serializers.IntegerField(required=False, min_value=1)
    title = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    branding = BrandingSerializer(required=False)
    share = ShareSerializer(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["kind"] == ReportKind.ARTIST and not attrs.get("artist_id"):
            raise serializers.ValidationError({"artist_id": "Required for an artist report."})
        if attrs["kind"] == ReportKind.SHOW and not attrs.get("show_id"):
            raise serializers.ValidationError({"show_id": "Required for a show report."})
        return attrs


class ReportOutputSerializer(serializers.ModelSerializer):
    artist_id = serializers.SerializerMethodField()
    show_id = serializers.SerializerMethodField()
    period = serializers.SerializerMethodField()
    title = serializers.SerializerMethodField()
    content_type = serializers.CharField(read_only=True)
    download_url = serializers.SerializerMethodField()
    share_url = serializers.SerializerMethodField()
    share_used = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = [
            "id", "kind", "format", "status", "reason", "title", "artist_id", "show_id", "period",
            "watermark",
            "attempts", "content_type", "file_size", "download_url", "share_url", "share_expires_at",
            "share_one_time", "share_used", "created_at", "started_at", "finished_at",
        ]  # fmt: skip

    def get_artist_id(self, obj: Report) -> int | None:
        return (obj.params or {}).get("artist_id")

    def get_show_id(self, obj: Report) -> int | None:
        return (obj.params or {}).get("show_id")

    def get_period(self, obj: Report) -> dict[str, str]:
        params = obj.params or {}
        return {"from": params.get("from", ""), "to": params.get("to", "")}

    def get_title(self, obj: Report) -> str:
        return str((obj.params or {}).get("title") or "")

    def get_download_url(self, obj: Report) -> str | None:
        return download_url(report=obj) if obj.status == ReportStatus.READY else None

    def get_share_url(self, obj: Report) -> str | None:
        return share_url(report=obj) if obj.status == ReportStatus.READY else None

    def get_share_used(self, obj: Report) -> bool:
        return obj.share_used_at is not None


def _paginated(name: str, item: type[serializers.Serializer]) -> serializers.Serializer:
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
        },
    )


def _file_response(report: Report, *, inline: bool = False) -> FileResponse:
    try:
        handle = private_storage().open(report.file_name, "rb")
    except OSError as exc:  # removed from storage (retention, operator): say so, never a 500
        raise ApplicationError(
            "The report file is no longer available.", code="report_file_gone", status_code=410
        ) from exc
    response = FileResponse(
        handle, content_type=report.content_type, as_attachment=not inline, filename=report.download_filename
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


class ReportsApi(TenantApi):
    """GET: the tenant's reports, newest first, paginated. POST: request a report (analyst or higher)."""

    class InputSerializer(ReportParamsMixin):
        def get_fields(self) -> dict[str, serializers.Field]:
            fields = super().get_fields()
            # "from" is a Python keyword: declared here rather than as a class attribute.
            fields["from"] = serializers.DateField(help_text="first day (YYYY-MM-DD), tenant's time zone")
            fields["to"] = serializers.DateField(help_text="last day, inclusive")
            return fields

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            attrs = super().validate(attrs)
            if attrs["from"] > attrs["to"]:
                raise serializers.ValidationError({"to": "Must not be before `from`."})
            if (attrs["to"] - attrs["from"]).days + 1 > settings.REPORTS_MAX_PERIOD_DAYS:
                raise serializers.ValidationError(
                    {"to": f"A report covers at most {settings.REPORTS_MAX_PERIOD_DAYS} days."}
                )
            return attrs

    class CreatedSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.CharField()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.min_role = Role.ANALYST if request.method == "POST" else Role.VIEWER
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="reports_list",
        responses={200: _paginated("PaginatedReports", ReportOutputSerializer), 401: ERROR, 404: ERROR},
        description="The tenant's reports, newest first (`?page=`, `?page_size=` ≤ 100).",
    )
    def get(self, request: Request) -> Response:
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(report_list(tenant=self.tenant), request, view=self)
        return paginator.get_paginated_response(ReportOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="reports_create",
        request=InputSerializer,
        responses={202: CreatedSerializer, 400: ERROR, 403: ERROR, 404: ERROR},
        description=(
            "Queue a report. Rendered by a worker; poll GET /api/v1/reports/{id}. Monthly quota, custom "
            "branding "
            "and one-time links depend on the plan (403 `plan_required` names the plan that allows it). JSON "
            "reports follow the schema at /api/v1/reports/schema.json."
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        report = report_request(
            tenant=self.tenant,
            actor=request.user,
            kind=data["kind"],
            format=data["format"],
            start_day=data["from"],
            end_day=data["to"],
            artist_id=data.get("artist_id"),
            show_id=data.get("show_id"),
            title=data.get("title") or "",
            branding=dict(data["branding"]) if data.get("branding") else None,
            share=dict(data["share"]) if "share" in data else None,
            request=request._request,
        )
        return Response({"id": report.pk, "status": report.status}, status=status.HTTP_202_ACCEPTED)


class ReportDetailApi(TenantApi):
    @extend_schema(operation_id="reports_retrieve", responses={200: ReportOutputSerializer, 404: ERROR})
    def get(self, request: Request, report_id: int) -> Response:
        report = report_get(tenant=self.tenant, report_id=report_id)
        return Response(ReportOutputSerializer(report).data)


class ReportDownloadApi(TenantApi):
    @extend_schema(
        operation_id="reports_download",
        responses={
            (200, "application/pdf"): OpenApiTypes.BINARY,
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "text/csv"): OpenApiTypes.STR,
            404: ERROR,
            409: ERROR,
        },
        description="The rendered file (members of the tenant only). Recorded in the audit log.",
    )
    def get(self, request: Request, report_id: int) -> FileResponse:
        report = report_get(tenant=self.tenant, report_id=report_id)
        if report.status != ReportStatus.READY:
            raise ApplicationError(
                f"The report is {report.status}, not ready.", code="report_not_ready", status_code=409
            )
        response = _file_response(report)
        report_download_record(report=report, actor=request.user, request=request._request)
        return response


class ReportSchemaApi(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="reports_json_schema",
        responses={200: OpenApiTypes.OBJECT},
        description="JSON Schema (2020-12) of a report in JSON format.",
    )
    def get(self, request: Request) -> Response:
        return Response(REPORT_JSON_SCHEMA)


class ReportShareApi(APIView):
    """A signed share link: no login. Expired → 410, tampered → 404, one-time link used → 410."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="report_share_download",
        auth=[],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, 404: ERROR, 410: ERROR},
    )
    def get(self, request: Request, token: str) -> FileResponse:
        claim = share_link_use(token=token, request=request._request)
        return _file_response(claim.report)


class UploadOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Upload
        fields = ["id", "purpose", "content_type", "size", "sha256", "scan_status", "created_at"]


class UploadCreateApi(TenantApi):
    min_role = Role.ANALYST
    parser_classes = [MultiPartParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField()
        purpose = serializers.ChoiceField(choices=UploadPurpose.choices, default=UploadPurpose.LOGO)

    @extend_schema(
        operation_id="uploads_create",
        request={"multipart/form-data": InputSerializer},
        responses={201: UploadOutputSerializer, 400: ERROR, 413: ERROR, 415: ERROR},
        description=(
            "Upload a file (multipart, field `file`). The type is detected from the content: logos PNG or "
            "JPEG "
            "(≤ UPLOAD_MAX_LOGO_BYTES, 1 MB), documents PDF/PNG/JPEG. Scanned by ClamAV when configured."
        ),
    )
    def post(self, request: Request) -> Response:
        # Refuse an oversized body before it is parsed (and spooled to disk); the exact check follows.
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        ceiling = max(settings.UPLOAD_MAX_LOGO_BYTES, settings.UPLOAD_MAX_DOCUMENT_BYTES) + 64 * 1024
        if declared > ceiling:
            raise PayloadTooLargeError(
                f"Uploads are limited to {ceiling // 1024} KB.", details={"max_bytes": ceiling}
            )
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = upload_create(
            tenant=self.tenant,
            actor=request.user,
            file=serializer.validated_data["file"],
            purpose=serializer.validated_data["purpose"],
            request=request._request,
        )
        return Response(UploadOutputSerializer(upload).data, status=status.HTTP_201_CREATED)


class UploadDetailApi(TenantApi):
    @extend_schema(operation_id="uploads_retrieve", responses={200: UploadOutputSerializer, 404: ERROR})
    def get(self, request: Request, upload_id: int) -> Response:
        return Response(UploadOutputSerializer(upload_get(tenant=self.tenant, upload_id=upload_id)).data)


class UploadOcrApi(TenantApi):
    min_role = Role.ANALYST

    @extend_schema(operation_id="uploads_ocr", request=None, responses={404: ERROR, 501: ERROR})
    def post(self, request: Request, upload_id: int) -> Response:
        upload_get(tenant=self.tenant, upload_id=upload_id)
        raise ApplicationError("OCR is not available yet.", code="not_implemented", status_code=501)


class ReportScheduleOutputSerializer(serializers.ModelSerializer):
    recipient_user_ids = serializers.SerializerMethodField()

    class Meta:
        model = ReportSchedule
        fields = [
            "id", "kind", "format", "frequency", "params", "recipient_user_ids", "next_run_at", "last_run_at",
            "last_error", "active", "created_at",
        ]  # fmt: skip

    def get_recipient_user_ids(self, obj: ReportSchedule) -> list[int]:
        return sorted(m.user_id for m in obj.recipients.all())


class ReportSchedulesApi(TenantApi):
    class InputSerializer(ReportParamsMixin):
        frequency = serializers.ChoiceField(choices=Frequency.choices)
        recipient_user_ids = serializers.ListField(
            child=serializers.IntegerField(min_value=1), max_length=50, allow_empty=False
        )

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.min_role = Role.ANALYST if request.method == "POST" else Role.VIEWER
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="report_schedules_list",
        responses={200: _paginated("PaginatedReportSchedules", ReportScheduleOutputSerializer)},
    )
    def get(self, request: Request) -> Response:
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(report_schedule_list(tenant=self.tenant), request, view=self)
        return paginator.get_paginated_response(ReportScheduleOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="report_schedules_create",
        request=InputSerializer,
        responses={201: ReportScheduleOutputSerializer, 400: ERROR, 404: ERROR},
        description=(
            "Render a report every week (the previous 7 days, Mondays 06:00 tenant time) or month (the "
            "previous "
            "calendar month, on the 1st) and email its share link to the chosen members."
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        params = {k: data[k] for k in ("artist_id", "show_id", "title") if data.get(k)}
        if data.get("branding"):
            params["branding"] = dict(data["branding"])
        if data.get("share"):
            params["share"] = dict(data["share"])
        schedule = report_schedule_create(
            tenant=self.tenant,
            actor=request.user,
            kind=data["kind"],
            format=data["format"],
            frequency=data["frequency"],
            params=params,
            recipient_user_ids=data["recipient_user_ids"],
            request=request._request,
        )
        return Response(ReportScheduleOutputSerializer(schedule).data, status=status.HTTP_201_CREATED)


class ReportScheduleDetailApi(TenantApi):
    min_role = Role.ANALYST

    @extend_schema(operation_id="report_schedules_delete", responses={204: None, 404: ERROR})
    def delete(self, request: Request, schedule_id: int) -> Response:
        report_schedule_delete(
            tenant=self.tenant, schedule_id=schedule_id, actor=request.user, request=request._request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
