"""One error family for domain code and the one DRF exception handler that turns every API error into
{"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_default_handler

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """Base of every error the domain raises on purpose. Subclasses set status and code."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code: str = "invalid"

    def __init__(
        self, message: str, *, code: str | None = None, details: Any = None, status_code: int | None = None
    ):
        super().__init__(message)
        self.message = message
        self.details = details if details is not None else {}
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code


class NotFoundError(ApplicationError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class ForbiddenError(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "forbidden"


class AuthenticationError(ApplicationError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "not_authenticated"


class PayloadTooLargeError(ApplicationError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"


class RateLimitedError(ApplicationError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, reset_at: int | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = max(1, int(retry_after))
        self.reset_at = reset_at


class PlanRequiredError(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "plan_required"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def error_response(code: str, message: str, status_code: int, details: Any = None) -> JsonResponse:
    """For plain Django views (webhooks, Segment API, share links) that live outside DRF."""
    response = JsonResponse(error_body(code, message, details), status=status_code)
    return response


def application_error_response(exc: ApplicationError) -> JsonResponse:
    response = error_response(exc.code, exc.message, exc.status_code, exc.details)
    if isinstance(exc, RateLimitedError):
        response["Retry-After"] = str(exc.retry_after)
        if exc.reset_at is not None:
            response["X-RateLimit-Reset"] = str(exc.reset_at)
    return response


_DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ValidationError: "invalid",
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        response = Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
        if isinstance(exc, RateLimitedError):
            response["Retry-After"] = str(exc.retry_after)
            if exc.reset_at is not None:
                response["X-RateLimit-Reset"] = str(exc.reset_at)
        return response
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("payload_too_large", "The request body is too large."), status=413)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    default_response = drf_default_handler(exc, context)
    if default_response is None:
        # Unexpected: log it (no request body, no personal data) and answer the envelope, never a traceback.
        logger.exception("unhandled API error", extra={"view": type(context.get("view")).__name__})
        return Response(error_body("server_error", "An unexpected error occurred."), status=500)

    assert isinstance(exc, exceptions.APIException)
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        message = "The request is invalid."
        details: Any = exc.detail
    else:
        message = str(exc.detail) if not isinstance(exc.detail, (dict, list)) else "Request failed."
        details = {}
    headers = {k: v for k, v in default_response.items() if k in ("Retry-After", "WWW-Authenticate", "Allow")}
    new = Response(error_body(code, message, details), status=default_response.status_code)
    for key, value in headers.items():
        new[key] = value
    return new


API_PREFIXES = ("/api/", "/webhooks/", "/v1/", "/stripe/", "/metrics")


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES)


_STATUS_CODES = {
    400: ("bad_request", "Bad request."),
    401: ("not_authenticated", "Authentication required."),
    403: ("forbidden", "Forbidden."),
    404: ("not_found", "No such resource."),
    405: ("method_not_allowed", "Method not allowed."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Unsupported media type."),
    429: ("rate_limited", "Too many requests."),
}
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "X-RateLimit-Reset")


class ApiErrorEnvelopeMiddleware:
    """Every error under API_PREFIXES answers the envelope, DEBUG or not. The handlers below cover DEBUG off;
    with DEBUG on Django answers a 404 with its technical page (listing the URL patterns) whatever handler404
    says and a 500 with the traceback page, and plain Django views (dj-stripe's, a wrong method on a View)
    answer bare text. This replaces any such non-JSON error answer on an API path; it sits inside
    CorsMiddleware so the envelope keeps its CORS headers. The raw ingestion routes never reach it (they
    answer the envelope themselves, coliseum.ops.middleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if response.status_code < 400 or not _is_api(request):
            return response
        if (response.get("Content-Type") or "").startswith("application/json"):
            return response
        status_code = response.status_code
        code, message = _STATUS_CODES.get(status_code, ("server_error", "An unexpected error occurred."))
        if status_code < 500 and status_code not in _STATUS_CODES:
            code, message = "error", response.reason_phrase or "Request failed."
        envelope = error_response(code, message, status_code)
        for header in _KEPT_HEADERS:
            if header in response:
                envelope[header] = response[header]
        # Not response.close(): it sends request_finished, which closes the database connection and resets
        # state in the middle of this request. Error answers hold no file or stream that needs closing.
        return envelope


def handler404(request: HttpRequest, exception: Exception | None = None) -> Any:
    if _is_api(request):
        return error_response("not_found", "No such resource.", 404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception or Http404())


def handler500(request: HttpRequest) -> Any:
    if _is_api(request):
        return error_response("server_error", "An unexpected error occurred.", 500)
    from django.views.defaults import server_error

    return server_error(request)


def handler400(request: HttpRequest, exception: Exception | None = None) -> Any:
    if _is_api(request):
        return error_response("bad_request", "Bad request.", 400)
    from django.views.defaults import bad_request

    return bad_request(request, exception or Exception())


def handler403(request: HttpRequest, exception: Exception | None = None) -> Any:
    if _is_api(request):
        return error_response("forbidden", "Forbidden.", 403)
    from django.views.defaults import permission_denied

    return permission_denied(request, exception or DjangoPermissionDenied())
