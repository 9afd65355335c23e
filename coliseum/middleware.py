"""Request id: taken from X-Request-ID when it looks sane, else generated;
echoed back and put on every log line."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
_SANE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _SANE.match(incoming) else uuid.uuid4().hex
        request.request_id = rid  # type: ignore[attr-defined]
        token = request_id_var.set(rid)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = rid
        return response


class RlsMiddleware:
    """Row-level security (coliseum/rls.py): every request starts with no tenant and no bypass (fail closed);
    TenantApi and the other tenant-scoped views set the tenant once they know it. Staff signed in to the admin
    act for every tenant there (the admin is the operators' console). The connection is left as it was found.
    Placed after AuthenticationMiddleware (it reads request.user for /admin/ only)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from .rls import request_scope, system_scope

        with request_scope():
            if request.path.startswith("/admin/") and _staff(request):
                with system_scope("staff in the admin"):
                    return self.get_response(request)
            return self.get_response(request)


def _staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)
