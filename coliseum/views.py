"""Plain pages (HTML): the landing page."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def landing(request: HttpRequest) -> HttpResponse:
    links = [
        ("Admin", "/admin/", "Tenants, members, artists, shows, API keys, plans and the audit trail."),
        ("API docs", "/api/docs/", "Every endpoint, interactive (OpenAPI 3 at /api/schema/)."),
        ("Jumbotron", "/jumbotron/", "The live leaderboard for the big screen at a show."),
    ]
    return render(request, "coliseum/landing.html", {"links": links, "debug": settings.DEBUG})
