"""Data-subject request endpoints (owner/admin only) and the signed export download."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from coliseum.errors import NotFoundError
from coliseum.models import Role
from coliseum.tenancy import TenantApi

from .models import PrivacyRequest, RequestKind
from .selectors import privacy_request_get
from .services import (
    export_link_resolve,
    export_link_token,
    privacy_erasure_request,
    privacy_export_request,
    private_storage,
)

ERROR = OpenApiResponse(description='Error envelope {"error": {"code", "message", "details"}}')


class SubjectInputSerializer(serializers.Serializer):
    user_id = serializers.CharField(min_length=1, max_length=200, trim_whitespace=False)


class PrivacyRequestOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    result = serializers.DictField(child=serializers.IntegerField())
    reason = serializers.CharField(allow_null=True, help_text="Why the job failed (status `failed`).")
    download_url = serializers.CharField(allow_null=True, required=False)
    link_expires_at = serializers.DateTimeField(allow_null=True, required=False)


def _out(privacy_request: PrivacyRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": privacy_request.pk,
        "kind": privacy_request.kind,
        "status": privacy_request.status,
        "created_at": privacy_request.created_at,
        "started_at": privacy_request.started_at,
        "finished_at": privacy_request.finished_at,
        "result": privacy_request.result,
        "reason": privacy_request.error or None,
    }
    if privacy_request.kind == RequestKind.EXPORT:
        token = export_link_token(privacy_request=privacy_request)
        body["download_url"] = (
            settings.PUBLIC_BASE_URL.rstrip("/") + reverse("privacy-export-file", kwargs={"token": token})
            if token
            else None
        )
        body["link_expires_at"] = privacy_request.link_expires_at if token else None
    return PrivacyRequestOutputSerializer(body).data


_SUBJECT_NOTE = (
    " Only this tenant's data is searched: a user id with no data here (including another tenant's fan) is "
    "accepted and finds nothing, so the answer never reveals whether a person is known."
)


class PrivacyExportCreateApi(TenantApi):
    min_role = Role.ADMIN

    @extend_schema(
        operation_id="privacy_exports_create",
        request=SubjectInputSerializer,
        responses={202: PrivacyRequestOutputSerializer, 400: ERROR, 403: ERROR},
        description="Gather everything held about one fan into a JSON file behind a signed, expiring link."
        + _SUBJECT_NOTE,
    )
    def post(self, request: Request) -> Response:
        serializer = SubjectInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = privacy_export_request(
            tenant=self.tenant,
            user_id=serializer.validated_data["user_id"],
            actor=request.user,
            request=request._request,
        )
        return Response(_out(created), status=status.HTTP_202_ACCEPTED)


class PrivacyExportDetailApi(TenantApi):
    min_role = Role.ADMIN

    @extend_schema(
        operation_id="privacy_exports_retrieve",
        responses={200: PrivacyRequestOutputSerializer, 404: ERROR},
    )
    def get(self, request: Request, request_id: uuid.UUID) -> Response:
        found = privacy_request_get(tenant=self.tenant, request_id=request_id, kind=RequestKind.EXPORT)
        return Response(_out(found))


class PrivacyErasureCreateApi(TenantApi):
    min_role = Role.ADMIN

    @extend_schema(
        operation_id="privacy_erasures_create",
        request=SubjectInputSerializer,
        responses={202: PrivacyRequestOutputSerializer, 400: ERROR, 403: ERROR},
        description="Erase one fan's raw events, traits, dedupe keys and per-user rows, and recompute the "
        "rollups and boards derived from them. The answer's id is the receipt." + _SUBJECT_NOTE,
    )
    def post(self, request: Request) -> Response:
        serializer = SubjectInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = privacy_erasure_request(
            tenant=self.tenant,
            user_id=serializer.validated_data["user_id"],
            actor=request.user,
            request=request._request,
        )
        return Response(_out(created), status=status.HTTP_202_ACCEPTED)


class PrivacyErasureDetailApi(TenantApi):
    min_role = Role.ADMIN

    @extend_schema(
        operation_id="privacy_erasures_retrieve",
        responses={200: PrivacyRequestOutputSerializer, 404: ERROR},
    )
    def get(self, request: Request, request_id: uuid.UUID) -> Response:
        found = privacy_request_get(tenant=self.tenant, request_id=request_id, kind=RequestKind.ERASURE)
        return Response(_out(found))


class PrivacyExportFileApi(APIView):
    """The signed export link: no login. Tampered → 404, expired → 410."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="privacy_export_file",
        auth=[],
        responses={(200, "application/json"): OpenApiTypes.BINARY, 404: ERROR, 410: ERROR},
    )
    def get(self, request: Request, token: str) -> FileResponse:
        privacy_request = export_link_resolve(token=token)
        try:
            handle = private_storage().open(privacy_request.file_name, "rb")
        except FileNotFoundError as exc:  # an erasure of the same fan is moving it away right now
            raise NotFoundError("No such link.") from exc
        response = FileResponse(
            handle,
            content_type="application/json",
            as_attachment=True,
            filename=f"export-{privacy_request.pk}.json",
        )
        response["Cache-Control"] = "private, no-store"
        return response
