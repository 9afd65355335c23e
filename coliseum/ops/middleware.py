"""RequestMetricsMiddleware: duration and status of every request, per endpoint group, into Redis."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

from .requests import group_for_path, request_record

logger = logging.getLogger(__name__)


class RequestMetricsMiddleware:
    """Placed right after RequestIdMiddleware so it times everything below it, including 500 pages.

    A Redis failure costs the figure for that request, never the request itself."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.lean_response = _lean_chain()
        self.fast_get = _fast_get_route()

    def _respond(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and _raw_route(request.path) is not None:
            if not _host_allowed(request):
                return self.get_response(request)  # the full stack answers its usual 400
            return self.lean_response(request)
        if request.method == "GET" and request.path == self.fast_get[0] and _host_allowed(request):
            answer = self.fast_get[1](request)  # None: the full stack answers
            if answer is not None:
                request.lean_answer = answer  # type: ignore[attr-defined]
                return self.lean_response(request)
        return self.get_response(request)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/static/"):
            return self.get_response(request)
        started = time.perf_counter()
        status = 500
        try:
            response = self._respond(request)
            status = response.status_code
            return response
        finally:
            elapsed = time.perf_counter() - started
            try:
                request_record(group=group_for_path(request.path), status=status, seconds=elapsed)
            except (redis.RedisError, OSError):
                logger.warning("request metrics not recorded: Redis unavailable")


def _host_allowed(request: HttpRequest) -> bool:
    try:
        request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware would check it
    except DisallowedHost:
        return False
    return True


# The raw ingestion endpoints (Passport webhook, Segment API) authenticate by key or signature and answer
# JSON: sessions, CSRF (their views are exempt), user auth, OTP, messages, CSP and X-Frame-Options do nothing
# for them but cost ~1 ms of a single-event request. Their POSTs go straight to the handler behind these
# middleware only (HTTPS redirect/HSTS/nosniff, and CORS for browser Segment clients); every other request,
# and every other method on those paths, takes the full MIDDLEWARE stack. Leaderboard reads by a member's JWT
# take the same lean chain (leaderboards/fast.py decides which reads, and answers them).
LEAN_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
)


def _raw_route(path: str) -> Callable[[HttpRequest], HttpResponse] | None:
    from ingestion.http import raw_ingest_route

    route: Callable[[HttpRequest], HttpResponse] | None = raw_ingest_route(path)
    return route


def _fast_get_route() -> tuple[str, Callable[[HttpRequest], Callable[[HttpRequest], HttpResponse] | None]]:
    from leaderboards.fast import PATH, leaderboard_fast_route

    return PATH, leaderboard_fast_route


def _raw_dispatch(request: HttpRequest) -> HttpResponse:
    answer: Callable[[HttpRequest], HttpResponse] | None = getattr(request, "lean_answer", None)
    if answer is not None:
        return answer(request)
    route = _raw_route(request.path)
    if route is None:  # unreachable: _respond checked the path
        return HttpResponse(status=404)
    return route(request)


def _lean_chain() -> Callable[[HttpRequest], HttpResponse]:
    handler: Any = convert_exception_to_response(_raw_dispatch)
    for path in reversed([m for m in LEAN_MIDDLEWARE if m in settings.MIDDLEWARE]):
        handler = convert_exception_to_response(import_string(path)(handler))
    lean: Callable[[HttpRequest], HttpResponse] = handler
    return lean
