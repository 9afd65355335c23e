"""django-csp's middleware, plus the WebSocket origins of the live feed in connect-src.

The origins come from settings read per response (PUBLIC_BASE_URL's ws/wss twin and WEBSOCKET_BASE_URL when
the WebSocket server lives elsewhere), so a deployment or a test that changes them is followed at once.
'self' alone does not cover a WebSocket server on another port or host."""

from __future__ import annotations

from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase


def websocket_origins() -> list[str]:
    origins: list[str] = []
    public = urlsplit(getattr(settings, "PUBLIC_BASE_URL", "") or "")
    if public.netloc:
        origins.append(f"{'wss' if public.scheme == 'https' else 'ws'}://{public.netloc}")
    ws = urlsplit(getattr(settings, "WEBSOCKET_BASE_URL", "") or "")
    if ws.netloc and ws.scheme in ("ws", "wss"):
        origins.append(f"{ws.scheme}://{ws.netloc}")
    return list(dict.fromkeys(origins))


class CSPMiddleware(BaseCSPMiddleware):
    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        origins = websocket_origins()
        if origins:
            update = dict(getattr(response, "_csp_update", None) or {})
            update["connect-src"] = [*update.get("connect-src", []), *origins]
            response._csp_update = update  # type: ignore[attr-defined]
        return super().process_response(request, response)
