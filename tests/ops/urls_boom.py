"""The real URLconf plus endpoints that fail or succeed on demand, to inject errors into the figures."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from coliseum.urls import urlpatterns as root_patterns


def boom(request: HttpRequest) -> JsonResponse:
    raise RuntimeError("injected failure")


def fine(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [
    path("api/v1/kpis/boom", boom),
    path("api/v1/kpis/fine", fine),
    path("webhooks/fine", fine),
    *root_patterns,
]
