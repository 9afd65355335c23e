"""Plain pages (HTML): the landing page, and /favicon.ico for clients that ask for it without a <link>."""

from __future__ import annotations

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe


def landing(request: HttpRequest) -> HttpResponse:
    links = [
        ("Admin", "/admin/", "Tenants, members, artists, shows, API keys, plans and the audit trail."),
        ("API docs", "/api/docs/", "Every endpoint, interactive (OpenAPI 3 at /api/schema/)."),
        ("Jumbotron", "/jumbotron/", "The live leaderboard for the big screen at a show."),
    ]
    return render(request, "coliseum/landing.html", {"links": links, "debug": settings.DEBUG})


@require_safe
@cache_control(public=True, max_age=86_400)
def favicon(request: HttpRequest) -> FileResponse:
    """The icon itself (not a redirect): pages link static/coliseum/favicon.svg; this is the fallback."""
    found = finders.find("coliseum/favicon.ico")
    if not isinstance(found, str):
        raise Http404("no favicon")
    return FileResponse(open(found, "rb"), content_type="image/x-icon")  # FileResponse closes the file
