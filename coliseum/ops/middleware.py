"""RequestMetricsMiddleware: duration and status of every request, per endpoint group, into Redis."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
from django.http import HttpRequest, HttpResponse

from .requests import group_for_path, request_record

logger = logging.getLogger(__name__)


class RequestMetricsMiddleware:
    """Placed right after RequestIdMiddleware so it times everything below it, including 500 pages.

    A Redis failure costs the figure for that request, never the request itself."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/static/"):
            return self.get_response(request)
        started = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            return response
        finally:
            elapsed = time.perf_counter() - started
            try:
                request_record(group=group_for_path(request.path), status=status, seconds=elapsed)
            except (redis.RedisError, OSError):
                logger.warning("request metrics not recorded: Redis unavailable")
