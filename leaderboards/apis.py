"""Leaderboard, show standings and realtime-discovery endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.entitlements import Entitlements
from coliseum.errors import ApplicationError, AuthenticationError, NotFoundError
from coliseum.models import Artist, Role, Show, Tenant
from coliseum.rls import request_tenant_set
from coliseum.tenancy import TenantApi

from .boards import METRICS, WINDOW_NAMES, Board, filter_value_problem
from .consumers import ticket_read
from .gates import board_access_check, board_entitlements, live_feed_allowed
from .selectors import BoardQuery, board_page, show_standings
from .views import share_link_sign


def _validated(serializer: serializers.Serializer[Any]) -> dict[str, Any]:
    if not serializer.is_valid():
        raise ApplicationError("The request is invalid.", code="invalid", details=serializer.errors)
    return dict(serializer.validated_data)


def _filter(field: str) -> Callable[[str], None]:
    """A serializer validator: what a board's city, genre or currency may be (leaderboards.boards)."""

    def check(value: str) -> None:
        if value and (problem := filter_value_problem(field, value)):
            raise serializers.ValidationError(problem)

    return check


class EntrySerializer(serializers.Serializer[Any]):
    rank = serializers.IntegerField()
    artist_id = serializers.IntegerField()
    artist_name = serializers.CharField()
    score = serializers.IntegerField()
    previous_rank = serializers.IntegerField(allow_null=True)


class LeaderboardGetApi(TenantApi):
    class InputSerializer(serializers.Serializer[Any]):
        metric = serializers.ChoiceField(choices=METRICS, default="plays")
        window = serializers.ChoiceField(choices=WINDOW_NAMES, required=False)
        time_window = serializers.ChoiceField(choices=WINDOW_NAMES, required=False)
        city = serializers.CharField(
            required=False, max_length=128, allow_blank=True, validators=[_filter("city")]
        )
        genre = serializers.CharField(
            required=False, max_length=64, allow_blank=True, validators=[_filter("genre")]
        )
        show_id = serializers.IntegerField(required=False, min_value=1, max_value=2**62)
        currency = serializers.CharField(required=False, validators=[_filter("currency")])
        page = serializers.IntegerField(default=1, min_value=1, max_value=10_000)
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=100)
        artist_id = serializers.IntegerField(required=False, min_value=1, max_value=2**62)

    class OutputSerializer(serializers.Serializer[Any]):
        class ArtistBlock(serializers.Serializer[Any]):
            artist_id = serializers.IntegerField()
            rank = serializers.IntegerField(allow_null=True)
            score = serializers.IntegerField()
            neighbors = EntrySerializer(many=True)

        metric = serializers.CharField()
        window = serializers.CharField()
        filters = serializers.DictField()
        generated_at = serializers.DateTimeField()
        total_artists = serializers.IntegerField()
        page = serializers.IntegerField()
        page_size = serializers.IntegerField()
        entries = EntrySerializer(many=True)
        artist = ArtistBlock(required=False)

    @extend_schema(
        operation_id="leaderboard_get",
        parameters=[InputSerializer],
        responses=OutputSerializer,
        description="A ranked board (1224 ranking, ties by artist name). `time_window` is an alias of "
        "`window`. Plan gates: window, filters and depth (page*page_size).",
    )
    def get(self, request: Request) -> Response:
        data = _validated(self.InputSerializer(data=request.query_params))
        args = leaderboard_args(tenant=self.tenant, data=data, entitlements=board_entitlements(self.tenant))
        leaderboard_subjects_check(tenant=self.tenant, args=args)
        return Response(board_page(tenant=self.tenant, **args))


# The view's steps after validation, shared with the hot path (leaderboards/fast.py), which answers a repeated
# read of this endpoint outside DRF with the same bytes; this view is the reference for it.


def leaderboard_args(*, tenant: Tenant, data: dict[str, Any], entitlements: Entitlements) -> BoardQuery:
    """board_page's arguments for validated parameters, once the plan allows them (PlanRequiredError).
    No query: the entitlements are read once by the caller and shared by every gate."""
    window = data.get("window") or data.get("time_window") or "24h"
    filtered = bool(data.get("city") or data.get("genre") or data.get("show_id"))
    page = data["page"]
    page_size = data.get("page_size") or min(50, entitlements.leaderboard_depth)
    board_access_check(
        tenant=tenant, window=window, filtered=filtered, depth=page * page_size, entitlements=entitlements
    )
    return {
        "metric": data["metric"],
        "window": window,
        "city": data.get("city") or None,
        "genre": data.get("genre") or None,
        "show_id": data.get("show_id"),
        "page": page,
        "page_size": page_size,
        "artist_id": data.get("artist_id"),
        "currency": data.get("currency"),
    }


def leaderboard_subjects_check(*, tenant: Tenant, args: BoardQuery) -> None:
    """404 unless the show and the artist a board names are the tenant's."""
    show_id, artist_id = args.get("show_id"), args.get("artist_id")
    if show_id is not None and not Show.objects.filter(tenant=tenant, pk=show_id).exists():
        raise NotFoundError("No such show.")
    if artist_id is not None and not Artist.objects.filter(tenant=tenant, pk=artist_id).exists():
        raise NotFoundError("No such artist.")


class ShowStandingsApi(TenantApi):
    class InputSerializer(serializers.Serializer[Any]):
        round = serializers.IntegerField(required=False, min_value=0, max_value=10_000)

    class OutputSerializer(serializers.Serializer[Any]):
        class RoundSerializer(serializers.Serializer[Any]):
            class StandingSerializer(serializers.Serializer[Any]):
                rank = serializers.IntegerField()
                artist_id = serializers.IntegerField()
                artist_name = serializers.CharField()
                votes = serializers.IntegerField()

            round = serializers.IntegerField()
            total_votes = serializers.IntegerField()
            entries = StandingSerializer(many=True)

        show_id = serializers.IntegerField()
        show_title = serializers.CharField()
        round = serializers.IntegerField(allow_null=True)
        generated_at = serializers.DateTimeField()
        rounds = RoundSerializer(many=True)

    @extend_schema(
        operation_id="show_standings",
        parameters=[InputSerializer, OpenApiParameter("show_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses=OutputSerializer,
        description="Counted votes per artist per round: a fan's first vote per show and round counts.",
    )
    def get(self, request: Request, show_id: int) -> Response:
        data = _validated(self.InputSerializer(data=request.query_params))
        show = Show.objects.filter(tenant=self.tenant, pk=show_id).first()
        if show is None:
            raise NotFoundError("No such show.")
        return Response(show_standings(tenant=self.tenant, show=show, round=data.get("round")))


def websocket_url(request: Request | Any) -> str:
    base = getattr(settings, "WEBSOCKET_BASE_URL", "")
    if base:
        return base.rstrip("/") + "/ws/leaderboards/"
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}/ws/leaderboards/"


class RealtimeGetApi(TenantApi):
    @extend_schema(
        operation_id="realtime_get",
        responses=inline_serializer(
            "RealtimeOutput",
            {"leaderboards_ws": serializers.CharField(), "live_feed": serializers.BooleanField()},
        ),
        description="Where the WebSocket feed is served (HTTP and WebSockets may be different processes). "
        "`live_feed` says whether the tenant's plan allows it (Enterprise).",
    )
    def get(self, request: Request) -> Response:
        return Response(
            {"leaderboards_ws": websocket_url(request), "live_feed": live_feed_allowed(self.tenant)}
        )


class JumbotronStandingsApi(APIView):
    """A show's round standings for the jumbotron page, authorised by the page's WebSocket ticket."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer[Any]):
        ticket = serializers.CharField(max_length=2000)
        show_id = serializers.IntegerField(min_value=1, max_value=2**62)

    @extend_schema(
        operation_id="jumbotron_standings",
        parameters=[InputSerializer],
        responses=ShowStandingsApi.OutputSerializer,
    )
    def get(self, request: Request) -> Response:
        data = _validated(self.InputSerializer(data=request.query_params))
        found = ticket_read(data["ticket"])
        if found is None:
            raise AuthenticationError("The ticket is invalid or has expired.")
        tenant, only_board = found.tenant, found.only_board
        request_tenant_set(tenant.pk)  # the signed ticket names the tenant (row-level security)
        show = Show.objects.filter(tenant=tenant, pk=data["show_id"]).first()
        if show is None or (
            only_board is not None and Board.from_token(only_board).family.show_id != show.pk
        ):
            raise NotFoundError("No such show.")
        return Response(show_standings(tenant=tenant, show=show))


class JumbotronShareApi(TenantApi):
    """Make a signed, expiring jumbotron link for a venue screen (no login needed to open it)."""

    min_role = Role.ANALYST

    class InputSerializer(serializers.Serializer[Any]):
        metric = serializers.ChoiceField(choices=METRICS, default="plays")
        window = serializers.ChoiceField(choices=WINDOW_NAMES, default="24h")
        city = serializers.CharField(
            required=False, max_length=128, allow_blank=True, validators=[_filter("city")]
        )
        genre = serializers.CharField(
            required=False, max_length=64, allow_blank=True, validators=[_filter("genre")]
        )
        show_id = serializers.IntegerField(required=False, min_value=1, max_value=2**62)
        currency = serializers.CharField(required=False, validators=[_filter("currency")])
        expires_in = serializers.IntegerField(default=86400, min_value=60, max_value=30 * 86400)

    class OutputSerializer(serializers.Serializer[Any]):
        url = serializers.CharField()
        expires_at = serializers.DateTimeField()

    @extend_schema(operation_id="jumbotron_share", request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = _validated(self.InputSerializer(data=request.data))
        filtered = bool(data.get("city") or data.get("genre") or data.get("show_id"))
        board_access_check(tenant=self.tenant, window=data["window"], filtered=filtered, live=True)
        if data.get("show_id") and not Show.objects.filter(tenant=self.tenant, pk=data["show_id"]).exists():
            raise NotFoundError("No such show.")
        expires_at = int(time.time()) + data.pop("expires_in")
        token = share_link_sign(tenant=self.tenant, board=data, expires_at=expires_at)
        base = request.build_absolute_uri("/jumbotron/")
        return Response(
            {
                "url": f"{base}?{urlencode({'share': token})}",
                "expires_at": datetime.fromtimestamp(expires_at, UTC).isoformat().replace("+00:00", "Z"),
            },
            status=201,
        )
