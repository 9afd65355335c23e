"""The leaderboard API's hot path: a repeated GET /api/v1/leaderboards answered from per-process memory.

Screens and dashboards poll boards, so this endpoint's p99 under load is a product figure (README, speed table
row f). The DRF view (apis.LeaderboardGetApi) is the reference. This module answers only the common case, with
the same bytes:
- a bearer JWT whose user is a member of the tenant the request names (X-Tenant / ?tenant=, or the only one);
- parameters that the view's InputSerializer accepts and the plan allows, naming (if any) a show and an artist
  of that tenant;
- no `Accept` header, or `*/*` or `application/json`, and no `?format=`.
It declines everything else (session callers, every error but 429), and the request then takes the full
middleware stack to the DRF view, which answers as it always has. It counts nothing before deciding, so a call
is counted once (rate limit and monthly api_calls: billing.throttles.api_call_count) whichever path answers.

RequestMetricsMiddleware sends a GET of the path here before the rest of the middleware, as it does for raw
ingestion POSTs: `leaderboard_fast_route` decides without side effects; the callable it returns counts the
call and answers behind SecurityMiddleware and CORS only (no session, CSRF, CSP or X-Frame-Options: a JSON
API answer needs none of them).

Remembered per process, in bounded tables (a full table is emptied):
- (Authorization, tenant slug) -> the member's tenant and its plan's entitlements, for
  LEADERBOARD_AUTH_CACHE_SECONDS and never past the token's expiry. A deactivated user, a removed membership,
  or a plan change reaches this endpoint within that many seconds (the other endpoints see it at once);
  0 checks every request.
- query string -> the InputSerializer's validated data (a pure function of it).
- (tenant, board_page arguments) -> the rendered answer, for as long as the ranking it pages is fresh
  (LEADERBOARD_CACHE_SECONDS, the selector's bound; `generated_at` is when that ranking was computed). A show
  or artist deleted meanwhile answers 404 once that copy has expired. When a page expires, one thread
  recomputes it while the process's other reads of it get the previous copy (stale by the milliseconds the
  recompute takes): every thread recomputing at once was the largest part of the p99 in bench (f)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication

from billing.entitlements import Entitlements
from billing.throttles import api_call_count
from coliseum.errors import ApplicationError, RateLimitedError, error_body
from coliseum.models import ROLE_RANK, Tenant
from coliseum.rls import request_scope, request_tenant_set
from coliseum.tenancy import membership_for_request

from .apis import LeaderboardGetApi, leaderboard_args, leaderboard_subjects_check
from .gates import board_entitlements
from .selectors import BoardQuery, board_page_timed

PATH = "/api/v1/leaderboards"
_ACCEPT = frozenset(("", "*/*", "application/json"))  # what DRF's negotiation answers with plain JSON
_TABLE_MAX = 1024
_renderer = JSONRenderer()  # DRF's own: the same bytes as the view's answers
# The view's own first authenticator, so a project-wide JWT class (checks of its own) is used here as well;
# the hot path is off if the view does not try a JWT first.
_jwt = next(iter(LeaderboardGetApi().get_authenticators()), None)
_allow = "GET, HEAD, OPTIONS"  # LeaderboardGetApi's `Allow` header


@dataclass(frozen=True, slots=True)
class _Caller:
    tenant: Tenant
    entitlements: Entitlements
    until: float  # time.monotonic()


@dataclass(frozen=True, slots=True)
class _Query:
    data: dict[str, Any] | None  # the validated parameters; None: the view answers (400, ?format=)
    tenant: str  # ?tenant=


_callers: dict[tuple[str, str], _Caller] = {}
_queries: dict[str, _Query] = {}
_answers: dict[tuple[Any, ...], tuple[float, bytes]] = {}
_refreshing: dict[tuple[Any, ...], float] = {}  # page key -> until when one thread is recomputing it
_REFRESH_CLAIM_SECONDS = 0.5
V = TypeVar("V")


def _keep(table: dict[Any, V], key: Any, value: V) -> V:
    if len(table) >= _TABLE_MAX:
        table.clear()
    table[key] = value
    return value


def leaderboard_fast_route(request: HttpRequest) -> Callable[[HttpRequest], HttpResponse] | None:
    """How to answer this GET outside DRF, or None when the DRF view must (see the module docstring).
    Deciding has no side effect beyond filling the tables above: the callable counts the call and answers."""
    meta = request.META
    if request.path != PATH or meta.get("HTTP_ACCEPT", "") not in _ACCEPT:
        return None
    jwt = _jwt
    if not getattr(settings, "LEADERBOARD_FAST_PATH", True) or not isinstance(jwt, JWTAuthentication):
        return None
    authorization = meta.get("HTTP_AUTHORIZATION", "")
    if not authorization.startswith("Bearer "):
        return None
    query = _query(request)
    if query.data is None:
        return None
    with request_scope():
        caller = _caller(request, jwt, authorization, meta.get("HTTP_X_TENANT") or query.tenant)
        if caller is None:
            return None
        tenant = caller.tenant
        request_tenant_set(tenant.pk)  # as TenantApi does once it knows the member's tenant
        try:
            args = leaderboard_args(tenant=tenant, data=query.data, entitlements=caller.entitlements)
        except ApplicationError:
            return None  # a plan refusal
        key = (tenant.pk, *args.values())
        cached = _answers.get(key)
        now = time.monotonic()
        ready = cached[1] if cached is not None and cached[0] > now else None
        if ready is None and cached is not None and not _refresh_claim(key, now):
            # Another thread of this process is recomputing this page: answer its previous copy meanwhile
            # (stale by milliseconds; `generated_at` says when it was computed) rather than all recomputing.
            ready = cached[1]
        if ready is None:
            try:
                leaderboard_subjects_check(tenant=tenant, args=args)
            except ApplicationError:
                return None  # another tenant's (or no) show or artist: 404

    def answer(request: HttpRequest) -> HttpResponse:
        with request_scope():
            request_tenant_set(tenant.pk)
            try:
                api_call_count(tenant_id=tenant.pk, limit=caller.entitlements.api_requests_per_minute)
            except RateLimitedError as exc:
                return _rate_limited(exc)
            body = ready if ready is not None else _answer(key, tenant, args)
        return _json(body, 200)

    return answer


def _query(request: HttpRequest) -> _Query:
    raw = request.META.get("QUERY_STRING", "")
    query = _queries.get(raw)
    if query is None:
        params = request.GET
        serializer = LeaderboardGetApi.InputSerializer(data=params)
        valid = "format" not in params and serializer.is_valid()
        data = dict(serializer.validated_data) if valid else None
        query = _keep(_queries, raw, _Query(data, params.get("tenant") or ""))
    return query


def _caller(request: HttpRequest, jwt: JWTAuthentication, authorization: str, slug: str) -> _Caller | None:
    """The member behind a token in the tenant it names, as TenantApi resolves it (None: the view answers)."""
    now = time.monotonic()
    key = (authorization, slug)
    caller = _callers.get(key)
    if caller is not None and caller.until > now:
        return caller
    drf_request = Request(request)
    try:
        found = jwt.authenticate(drf_request)
    except APIException:
        return None  # 401
    if found is None:
        return None
    user, token = found
    drf_request.user = user  # type: ignore[assignment]  # the JWT backend's user is the project's User
    try:
        membership = membership_for_request(drf_request)
    except ApplicationError:
        return None  # not a member, several tenants, ...
    if ROLE_RANK[membership.role] < ROLE_RANK[LeaderboardGetApi.min_role]:
        return None
    request_tenant_set(membership.tenant_id)  # the entitlements' billing rows are the tenant's
    entitlements = board_entitlements(membership.tenant)
    seconds = float(getattr(settings, "LEADERBOARD_AUTH_CACHE_SECONDS", 5.0))
    until = now + min(seconds, float(token.get("exp", 0)) - time.time())
    caller = _Caller(membership.tenant, entitlements, until)
    return _keep(_callers, key, caller) if until > now else caller


def _refresh_claim(key: tuple[Any, ...], now: float) -> bool:
    """True for the one thread that recomputes an expired page (others answer its previous copy). The claim
    lapses by itself after _REFRESH_CLAIM_SECONDS, so a request that ends early cannot hold it."""
    if _refreshing.get(key, 0.0) > now:
        return False
    _keep(_refreshing, key, now + _REFRESH_CLAIM_SECONDS)
    return True


def _answer(key: tuple[Any, ...], tenant: Tenant, args: BoardQuery) -> bytes:
    try:
        page = board_page_timed(tenant=tenant, **args)
        body: bytes = _renderer.render(page.body)
        if page.fresh_until > time.monotonic():
            _keep(_answers, key, (page.fresh_until, body))
        return body
    finally:
        _refreshing.pop(key, None)


def _json(body: bytes, status: int) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type="application/json")
    # What DRF adds to every answer (one renderer: no `Vary: Accept`), and what CommonMiddleware would.
    response["Allow"] = _allow
    response["Content-Length"] = str(len(body))
    return response


def _rate_limited(exc: RateLimitedError) -> HttpResponse:
    """The 429 that coliseum.errors.api_exception_handler makes of it."""
    response = _json(_renderer.render(error_body(exc.code, exc.message, exc.details)), exc.status_code)
    response["Retry-After"] = str(exc.retry_after)
    if exc.reset_at is not None:
        response["X-RateLimit-Reset"] = str(exc.reset_at)
    return response
