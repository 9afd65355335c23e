"""Core HTTP API: auth, API keys, artist and show pickers, health."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import User, update_last_login
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils.text import slugify
from django_redis import get_redis_connection
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from audit.services import audit_record

from . import mfa, selectors, services
from .clientaddr import client_address
from .errors import ApplicationError, AuthenticationError, NotFoundError
from .models import ApiKeyKind, Artist, Role, Tenant, validate_timezone
from .pagination import PageNumberPagination
from .rls import tenant_scope
from .tenancy import TenantApi
from .tokens import RefreshRefused, refresh_token_issue, refresh_token_rotate

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

    def get_ident(self, request: Request) -> str:
        # DRF's own get_ident believes X-Forwarded-For when NUM_PROXIES is unset: one header per guess.
        return client_address(request)

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
        refresh = refresh_token_issue(user=user)
        body = {
            "user": user,
            "tenant": membership,
            "access": str(refresh.access_token),
            "refresh": str(refresh),
        }
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)


class AuthTokenApi(APIView):
    """Exchange username and password (and, for accounts with two-factor sign-in, a code) for an access
    token (15 minutes) and a refresh token."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [BruteForceThrottle]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=128, trim_whitespace=False)
        otp = serializers.CharField(
            max_length=32,
            required=False,
            allow_blank=True,
            default="",
            help_text="Accounts with two-factor sign-in: the authenticator app's 6-digit code, or one of the "
            "recovery codes (each works once).",
        )

    class OutputSerializer(serializers.Serializer):
        access = serializers.CharField()
        refresh = serializers.CharField()

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            401: OpenApiResponse(
                description="`invalid_credentials`; `mfa_required` (the account has two-factor sign-in and "
                "no `otp` was sent: ask for it and send again); `mfa_invalid` (wrong, expired or replayed "
                "code, or a used recovery code)."
            ),
            429: OpenApiResponse(
                description="`rate_limited`: too many failed sign-ins for this username from this address "
                "(ADMIN_LOGIN_MAX_FAILURES within ADMIN_LOGIN_WINDOW_SECONDS), or 30 requests a minute "
                "from it; `mfa_throttled`: wrong codes lock the account's device for a growing delay. "
                "Retry-After says when to try again."
            ),
        },
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        username, otp = data.validated_data["username"], data.validated_data["otp"]
        client = client_address(request)  # the address as the per-IP throttle sees it
        mfa.login_attempts_check(username=username, client=client)
        user = authenticate(request._request, username=username, password=data.validated_data["password"])
        if user is None or not jwt_settings.USER_AUTHENTICATION_RULE(user):
            mfa.login_failure_record(username=username, client=client)
            _login_failed_audit(request, username, "invalid_credentials")
            raise AuthenticationError(
                "No active account found with the given credentials.", code="invalid_credentials"
            )
        if mfa.mfa_enabled(user=user):
            if not otp:
                raise AuthenticationError(
                    "This account uses two-factor sign-in: send `otp`, the authenticator app's code or a "
                    "recovery code.",
                    code="mfa_required",
                )
            if not mfa.mfa_verify(user=user, otp=otp, request=request):
                mfa.login_failure_record(username=username, client=client)
                _login_failed_audit(request, username, "mfa_invalid")
                raise AuthenticationError(
                    "The two-factor code is wrong, expired or already used.", code="mfa_invalid"
                )
        mfa.login_failures_clear(username=username, client=client)
        refresh = refresh_token_issue(user=user)
        if jwt_settings.UPDATE_LAST_LOGIN:
            update_last_login(type(user), user)
        audit_record(action="auth.login_succeeded", actor=user, target=user, request=request)
        return Response({"refresh": str(refresh), "access": str(refresh.access_token)})


def _login_failed_audit(request: Request, username: str, reason: str) -> None:
    # Name the account only by its internal id, and only when it exists (no personal data).
    user_pk = get_user_model().objects.filter(username=username).values_list("pk", flat=True).first()
    audit_record(
        action="auth.login_failed",
        actor=None,
        request=request,
        target_type="auth.user" if user_pk else "",
        target_id=user_pk or "",
        details={"reason": reason},
    )


def _code_checked(ok: int, body: Any, *, conflict: str) -> dict[int, Any]:
    """The answers of an endpoint that checks a two-factor code."""
    return {
        ok: body,
        400: OpenApiResponse(description="`mfa_invalid`: the code is wrong, expired or already used"),
        409: OpenApiResponse(description=f"`{conflict}`"),
        429: OpenApiResponse(description="`mfa_throttled`: wrong codes delay the device; see Retry-After"),
    }


class AuthMfaTotpApi(APIView):
    """Optional two-factor sign-in (TOTP) for the signed-in user: state, enrolment, removal."""

    class StateSerializer(serializers.Serializer):
        enabled = serializers.BooleanField()
        pending = serializers.BooleanField(help_text="Enrolment started and not yet confirmed.")
        recovery_codes_left = serializers.IntegerField()

    class StartSerializer(serializers.Serializer):
        password = serializers.CharField(max_length=128, trim_whitespace=False)

    class EnrolmentSerializer(serializers.Serializer):
        config_url = serializers.CharField(help_text="otpauth://totp/... URL: show it as a QR code.")
        secret = serializers.CharField(help_text="The same key in base32, to type in by hand.")

    class DisableSerializer(serializers.Serializer):
        otp = serializers.CharField(max_length=32, help_text="A current code, or a recovery code.")

    @extend_schema(responses={200: StateSerializer}, tags=["auth"])
    def get(self, request: Request) -> Response:
        state = mfa.mfa_state(user=request.user)  # type: ignore[arg-type]
        return Response(self.StateSerializer(state).data)

    @extend_schema(
        request=StartSerializer,
        responses={
            201: EnrolmentSerializer,
            400: OpenApiResponse(description="`password_invalid` (counted as a failed sign-in)"),
            409: OpenApiResponse(description="`mfa_already_enabled`"),
            429: OpenApiResponse(description="too many failed sign-ins: Retry-After"),
        },
        description="Start enrolment (the password again, so that a stolen access token cannot enrol the "
        "thief's device): a new unconfirmed TOTP device, replacing an unconfirmed one. Its key is shown only "
        "in this response. Then POST a code from the app to /api/v1/auth/mfa/totp/confirm.",
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        data = self.StartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        enrolment = mfa.mfa_totp_start(
            user=request.user,  # type: ignore[arg-type]
            password=data.validated_data["password"],
            client=client_address(request),
        )
        body = self.EnrolmentSerializer(enrolment).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})

    @extend_schema(
        request=DisableSerializer,
        responses=_code_checked(204, None, conflict="mfa_not_enabled"),
        description="Turn two-factor sign-in off (removes the TOTP devices and the recovery codes); the body "
        '`{"otp": ...}` carries a current code or a recovery code. Audited `auth.mfa_disabled`.',
        tags=["auth"],
    )
    def delete(self, request: Request) -> Response:
        data = self.DisableSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        mfa.mfa_disable(user=request.user, otp=data.validated_data["otp"], request=request)  # type: ignore[arg-type]
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuthMfaTotpConfirmApi(APIView):
    class InputSerializer(serializers.Serializer):
        token = serializers.CharField(max_length=16, help_text="The app's current 6-digit code.")

    class OutputSerializer(serializers.Serializer):
        recovery_codes = serializers.ListField(
            child=serializers.CharField(),
            help_text="10 one-time codes for when the phone is lost. Shown only in this response; stored "
            "as digests.",
        )
        access = serializers.CharField()
        refresh = serializers.CharField(help_text="Refresh tokens issued before this one no longer work.")

    @extend_schema(
        request=InputSerializer,
        responses=_code_checked(200, OutputSerializer, conflict="mfa_not_started"),
        description="Confirm enrolment with a first code: from then on POST /api/v1/auth/token needs `otp`. "
        "Signs other sessions out (earlier refresh tokens stop working) and answers a new token pair. "
        "Audited `auth.mfa_enabled`.",
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        codes = mfa.mfa_totp_confirm(
            user=request.user,  # type: ignore[arg-type]
            token=data.validated_data["token"],
            request=request,
        )
        # Every earlier refresh token was just revoked: this client goes on with a new pair.
        refresh = refresh_token_issue(user=request.user)
        body = {"recovery_codes": codes, "access": str(refresh.access_token), "refresh": str(refresh)}
        return Response(self.OutputSerializer(body).data, headers={"Cache-Control": "no-store"})


class AuthTokenRefreshApi(APIView):
    """Exchange a refresh token for a new access token AND a new refresh token; the old one stops
    working, and presenting it again revokes every refresh token of the same sign-in (coliseum/tokens.py)."""

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
        try:
            rotation = refresh_token_rotate(raw=data.validated_data["refresh"])
        except RefreshRefused as refused:
            audit_record(
                action="auth.refresh_failed",
                actor=None,
                target_type="user" if refused.user_id is not None else "",
                target_id=str(refused.user_id or ""),
                request=request,
                details={"reason": refused.reason},
            )
            raise AuthenticationError(
                "The refresh token is invalid, expired or already used.", code="token_not_valid"
            ) from None
        body = {"access": rotation.access, "refresh": rotation.refresh}
        return Response(self.OutputSerializer(body).data, headers={"Cache-Control": "no-store"})


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
