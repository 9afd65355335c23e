"""Core HTTP API: auth, API keys, artist and show pickers, health."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils.text import slugify
from django_redis import get_redis_connection
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.tokens import RefreshToken

from audit.services import audit_record

from . import selectors, services
from .errors import ApplicationError, AuthenticationError, NotFoundError
from .models import ApiKeyKind, Artist, Role, Tenant, validate_timezone
from .pagination import PageNumberPagination
from .rls import tenant_scope
from .tenancy import TenantApi

logger = logging.getLogger(__name__)

TENANT_HEADER = OpenApiParameter(
    "X-Tenant",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Tenant slug; needed only when the caller belongs to several tenants.",
)
PAGE_PARAMETERS = [
    OpenApiParameter("page", OpenApiTypes.INT, description="1-based page number."),
    OpenApiParameter("page_size", OpenApiTypes.INT, description="Items per page (default 50, at most 100)."),
]


def _paginated_schema(name: str, item: type[BaseSerializer]) -> Any:
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
        },
    )


def _paginate(request: Request, view: APIView, queryset: Any, output: type[BaseSerializer]) -> Response:
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(output(page, many=True).data)


class BruteForceThrottle(SimpleRateThrottle):
    """Per client address, on the unauthenticated auth endpoints. If Redis is down it lets requests through
    (login must not depend on the cache) rather than answer 500."""

    rate = "30/min"
    scope = "auth"

    def get_cache_key(self, request: Request, view: Any) -> str:
        return f"throttle:{self.scope}:{self.get_ident(request)}"

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:
            logger.warning("auth throttle skipped: cache unavailable")
            return True


class SignupThrottle(BruteForceThrottle):
    rate = "10/hour"
    scope = "signup"


# --- auth -----------------------------------------------------------------------------------------


class TenantMembershipSerializer(serializers.Serializer):
    slug = serializers.CharField(source="tenant.slug")
    name = serializers.CharField(source="tenant.name")
    plan = serializers.CharField(source="tenant.plan")
    reporting_currency = serializers.CharField(source="tenant.reporting_currency")
    timezone = serializers.CharField(source="tenant.timezone")
    role = serializers.CharField()


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()
    is_staff = serializers.BooleanField()


class AuthSignupApi(APIView):
    """Create an account and a new tenant owned by it; answers tokens so the client is signed in."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [SignupThrottle]

    class InputSerializer(serializers.Serializer):
        username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150)
        email = serializers.EmailField(required=False, allow_blank=True, default="")
        password = serializers.CharField(
            max_length=128, trim_whitespace=False, style={"input_type": "password"}
        )
        tenant_name = serializers.CharField(max_length=200)
        tenant_slug = serializers.SlugField(max_length=63, required=False)
        reporting_currency = serializers.RegexField(r"^[A-Z]{3}\Z", required=False, default="USD")
        timezone = serializers.CharField(max_length=64, required=False, default="UTC")

        def validate_timezone(self, value: str) -> str:
            try:
                validate_timezone(value)
            except DjangoValidationError as exc:
                raise serializers.ValidationError(exc.messages) from exc
            return value

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if get_user_model().objects.filter(username__iexact=attrs["username"]).exists():
                raise serializers.ValidationError({"username": ["That username is taken."]})
            slug = attrs.get("tenant_slug") or slugify(attrs["tenant_name"])[:63]
            if not slug:
                raise serializers.ValidationError(
                    {"tenant_slug": ["Give a slug (letters, digits, hyphens)."]}
                )
            if Tenant.objects.filter(slug=slug).exists():
                raise serializers.ValidationError({"tenant_slug": ["That tenant slug is taken."]})
            attrs["tenant_slug"] = slug
            candidate = User(username=attrs["username"], email=attrs["email"])
            try:
                validate_password(attrs["password"], user=candidate)
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"password": list(exc.messages)}) from exc
            return attrs

    class OutputSerializer(serializers.Serializer):
        user = UserSerializer()
        tenant = TenantMembershipSerializer()
        access = serializers.CharField()
        refresh = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            with transaction.atomic():
                user = get_user_model().objects.create_user(
                    username=v["username"], email=v["email"], password=v["password"]
                )
                tenant = services.tenant_create(
                    slug=v["tenant_slug"],
                    name=v["tenant_name"],
                    owner=user,
                    reporting_currency=v["reporting_currency"],
                    timezone=v["timezone"],
                    request=request,
                )
        except IntegrityError:  # a concurrent signup took the username or slug after validation
            raise ApplicationError(
                "That username or tenant slug was just taken; choose another.",
                code="conflict",
                status_code=409,
            ) from None
        with tenant_scope(tenant.pk):
            membership = tenant.memberships.get(user=user)
        refresh = RefreshToken.for_user(user)
        body = {
            "user": user,
            "tenant": membership,
            "access": str(refresh.access_token),
            "refresh": str(refresh),
        }
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)


class AuthTokenApi(APIView):
    """Exchange username and password for an access token (15 minutes) and a refresh token."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [BruteForceThrottle]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=128, trim_whitespace=False)

    class OutputSerializer(serializers.Serializer):
        access = serializers.CharField()
        refresh = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        serializer = TokenObtainPairSerializer(data=data.validated_data, context={"request": request})
        try:
            serializer.is_valid(raise_exception=True)
        except (drf_exceptions.AuthenticationFailed, TokenError):
            # Name the account only by its internal id, and only when it exists (no personal data).
            user_pk = (
                get_user_model()
                .objects.filter(username=data.validated_data["username"])
                .values_list("pk", flat=True)
                .first()
            )
            audit_record(
                action="auth.login_failed",
                actor=None,
                request=request,
                target_type="auth.user" if user_pk else "",
                target_id=user_pk or "",
                details={"reason": "invalid_credentials"},
            )
            raise AuthenticationError(
                "No active account found with the given credentials.", code="invalid_credentials"
            ) from None
        user = serializer.user
        audit_record(action="auth.login_succeeded", actor=user, target=user, request=request)
        return Response(serializer.validated_data)


class AuthTokenRefreshApi(APIView):
    """Exchange a refresh token for a new access token AND a new refresh token; the old one stops working."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [BruteForceThrottle]

    class InputSerializer(serializers.Serializer):
        refresh = serializers.CharField(max_length=2000)

    class OutputSerializer(serializers.Serializer):
        access = serializers.CharField()
        refresh = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        serializer = TokenRefreshSerializer(data=data.validated_data, context={"request": request})
        try:
            serializer.is_valid(raise_exception=True)
        except (TokenError, InvalidToken, get_user_model().DoesNotExist, serializers.ValidationError) as exc:
            reason = "user_gone" if isinstance(exc, get_user_model().DoesNotExist) else "invalid_token"
            audit_record(
                action="auth.refresh_failed", actor=None, request=request, details={"reason": reason}
            )
            raise AuthenticationError(
                "The refresh token is invalid, expired or already used.", code="token_not_valid"
            ) from None
        except Exception:
            audit_record(
                action="auth.refresh_failed",
                actor=None,
                request=request,
                details={"reason": "inactive_account"},
            )
            raise
        return Response(serializer.validated_data)


class AuthMeApi(APIView):
    """Who the caller is, and their tenants with the role in each."""

    class OutputSerializer(serializers.Serializer):
        user = UserSerializer()
        tenants = TenantMembershipSerializer(many=True)

    @extend_schema(responses={200: OutputSerializer}, tags=["auth"])
    def get(self, request: Request) -> Response:
        memberships = list(selectors.memberships_for_user(user=request.user))  # type: ignore[arg-type]
        return Response(self.OutputSerializer({"user": request.user, "tenants": memberships}).data)


# --- API keys -------------------------------------------------------------------------------------


class ApiKeySerializer(serializers.Serializer):
    key_id = serializers.CharField()
    kind = serializers.CharField()
    name = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    active = serializers.BooleanField(source="is_active")


class ApiKeyListCreateApi(TenantApi):
    """A tenant's write keys and webhook signing secrets (owner/admin). Secrets are shown once."""

    min_role = Role.ADMIN

    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=ApiKeyKind.choices)
        name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    class CreatedSerializer(ApiKeySerializer):
        secret = serializers.CharField(
            help_text="Shown only in this response. Write keys: the Segment write key. Webhook keys: the "
            "HMAC signing secret (send key_id as X-Passport-Key)."
        )

    @extend_schema(
        parameters=[TENANT_HEADER, *PAGE_PARAMETERS],
        responses={200: _paginated_schema("PaginatedApiKeyList", ApiKeySerializer)},
        tags=["keys"],
    )
    def get(self, request: Request) -> Response:
        return _paginate(request, self, selectors.api_key_list(tenant=self.tenant), ApiKeySerializer)

    @extend_schema(
        parameters=[TENANT_HEADER], request=InputSerializer, responses={201: CreatedSerializer}, tags=["keys"]
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = services.api_key_create(
            tenant=self.tenant,
            kind=data.validated_data["kind"],
            name=data.validated_data["name"],
            actor=request.user,  # type: ignore[arg-type]
            request=request,
        )
        body = {**ApiKeySerializer(issued.key).data, "secret": issued.secret}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyRevokeApi(TenantApi):
    min_role = Role.ADMIN

    @extend_schema(parameters=[TENANT_HEADER], responses={204: None}, tags=["keys"])
    def delete(self, request: Request, key_id: str) -> Response:
        key = selectors.api_key_get(tenant=self.tenant, key_id=key_id)
        if key is None:
            raise NotFoundError("No such API key.")
        services.api_key_revoke(key=key, actor=request.user, request=request)  # type: ignore[arg-type]
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- artists and shows ----------------------------------------------------------------------------


class ArtistListApi(TenantApi):
    """Artists for pickers. `search` is fuzzy: "metalica" finds "Metallica" (trigram similarity)."""

    class FilterSerializer(serializers.Serializer):
        search = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        genre = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
        city = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        external_id = serializers.CharField()
        name = serializers.CharField()
        genres = serializers.ListField(child=serializers.CharField())
        home_city = serializers.CharField()

    @extend_schema(
        parameters=[TENANT_HEADER, FilterSerializer, *PAGE_PARAMETERS],
        responses={200: _paginated_schema("PaginatedArtistList", OutputSerializer)},
        tags=["catalog"],
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        artists = selectors.artist_search(tenant=self.tenant, **filters.validated_data)
        return _paginate(request, self, artists, self.OutputSerializer)


class ShowListApi(TenantApi):
    """Shows for pickers, newest first; filter by text, city or an artist in the lineup."""

    class FilterSerializer(serializers.Serializer):
        search = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        city = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
        artist_id = serializers.IntegerField(required=False, min_value=1, allow_null=True, default=None)

    class LineupSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        external_id = serializers.CharField()
        name = serializers.CharField()

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        external_id = serializers.CharField()
        title = serializers.CharField()
        venue = serializers.CharField()
        city = serializers.CharField()
        starts_at = serializers.DateTimeField(allow_null=True)
        lineup = serializers.SerializerMethodField()

        def get_lineup(self, show: Any) -> list[dict[str, Any]]:
            return [{"id": a.pk, "external_id": a.external_id, "name": a.name} for a in show.lineup.all()]

    @extend_schema(
        parameters=[TENANT_HEADER, FilterSerializer, *PAGE_PARAMETERS],
        responses={200: _paginated_schema("PaginatedShowList", OutputSerializer)},
        tags=["catalog"],
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        artist_id = filters.validated_data["artist_id"]
        if artist_id is not None and not Artist.objects.filter(tenant=self.tenant, pk=artist_id).exists():
            # As the leaderboard and KPI filters: an id that is not this tenant's is unknown, not an empty
            # list (the same answer whether it belongs to another tenant or to nobody).
            raise NotFoundError("No such artist.", code="artist_not_found")
        shows = selectors.show_list(tenant=self.tenant, **filters.validated_data)
        return _paginate(request, self, shows, self.OutputSerializer)


# --- health ---------------------------------------------------------------------------------------

_migrations_clean = False


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        logger.warning("readyz: database unreachable")
        return False


def _redis_ok() -> bool:
    try:
        return bool(get_redis_connection("default").ping())
    except Exception:
        logger.warning("readyz: redis unreachable")
        return False


def _migrations_ok() -> bool:
    """No unapplied migrations. Once clean, remembered for the process: migrations do not un-apply, and
    loading the graph on every probe would cost more than the probe itself."""
    global _migrations_clean
    if _migrations_clean:
        return True
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception:
        logger.warning("readyz: migration state unreadable")
        return False
    _migrations_clean = not plan
    return _migrations_clean


class HealthzApi(APIView):
    """Liveness: the process answers. Touches nothing else."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses={200: inline_serializer("Healthz", {"status": serializers.CharField()})}, tags=["health"]
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadyzApi(APIView):
    """Readiness: the database and Redis answer and every migration is applied; 503 names what failed."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses={
            200: inline_serializer("Readyz", {"status": serializers.CharField()}),
            503: inline_serializer(
                "ReadyzFailed",
                {
                    "status": serializers.CharField(),
                    "failed": serializers.ListField(child=serializers.CharField()),
                },
            ),
        },
        tags=["health"],
    )
    def get(self, request: Request) -> Response:
        failed = []
        database = _database_ok()
        if not database:
            failed.append("database")
        if not _redis_ok():
            failed.append("redis")
        if database and not _migrations_ok():
            failed.append("migrations")
        if failed:
            return Response(
                {"status": "unavailable", "failed": failed},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Cache-Control": "no-store"},
            )
        return Response({"status": "ok"}, headers={"Cache-Control": "no-store"})
