"""The jumbotron: a full-screen page for a venue screen, updated over the WebSocket feed.

Open to a logged-in member (session; `?tenant=` when several memberships) or to anyone holding a signed
share link (`?share=`, made by POST /api/v1/jumbotron/share, with an expiry). A share link fixes the board:
its query parameters are ignored. The page receives a short-lived WebSocket ticket, never a JWT."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from coliseum.errors import ApplicationError, NotFoundError
from coliseum.models import Membership, Show, Tenant
from coliseum.rls import request_tenant_set, system_scope

from .boards import METRICS, WINDOW_NAMES
from .consumers import ticket_issue
from .gates import board_access_check
from .selectors import board_for, board_ranking

SHARE_SALT = "leaderboards.jumbotron-share"


def share_link_sign(*, tenant: Tenant, board: dict[str, Any], expires_at: int) -> str:
    payload = {"t": tenant.pk, "b": {k: v for k, v in board.items() if v not in (None, "")}, "e": expires_at}
    return signing.dumps(payload, salt=SHARE_SALT, compress=True)


def _share_payload(raw: str) -> dict[str, Any] | None:
    try:
        payload = signing.loads(raw, salt=SHARE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or int(payload.get("e", 0)) < time.time():
        return None
    return payload


def _board_params(source: dict[str, Any]) -> dict[str, Any]:
    metric = source.get("metric") or "plays"
    window = source.get("window") or source.get("time_window") or "24h"
    if metric not in METRICS or window not in WINDOW_NAMES:
        raise ApplicationError("Unknown metric or window.", code="invalid")
    show_raw = source.get("show_id")
    try:
        show_id = int(str(show_raw)) if show_raw not in (None, "") else None
    except (TypeError, ValueError):
        raise ApplicationError("show_id must be an integer.", code="invalid") from None
    city, genre, currency = (str(source.get(k) or "")[:128] for k in ("city", "genre", "currency"))
    if currency and (len(currency) != 3 or not currency.isalpha()):
        raise ApplicationError("currency must be a 3-letter code.", code="invalid")
    return {
        "metric": metric,
        "window": window,
        "city": city,
        "genre": genre,
        "show_id": show_id,
        "currency": currency.upper(),
    }


def _page_error(request: HttpRequest, message: str, status: int) -> HttpResponse:
    return render(request, "leaderboards/jumbotron_error.html", {"message": message}, status=status)


@require_GET
def jumbotron(request: HttpRequest) -> HttpResponse:
    share = request.GET.get("share")
    user_id: int | None = None
    try:
        if share:
            payload = _share_payload(share)
            if payload is None:
                return _page_error(request, "This share link is invalid or has expired.", 403)
            tenant = Tenant.objects.filter(pk=payload["t"]).first()
            if tenant is None:
                return _page_error(request, "This share link is invalid or has expired.", 403)
            request_tenant_set(tenant.pk)  # the signed link names the tenant (row-level security)
            params = _board_params(payload["b"])
        else:
            if not request.user.is_authenticated:
                return redirect(f"/admin/login/?{urlencode({'next': request.get_full_path()})}")
            memberships = Membership.objects.select_related("tenant").filter(user_id=request.user.pk)
            slug = request.GET.get("tenant")
            if slug:
                memberships = memberships.filter(tenant__slug=slug)
            with system_scope("membership resolution"):
                found = list(memberships[:2])
            if len(found) != 1:
                message = "Name a tenant with ?tenant=<slug>." if found else "No such tenant among yours."
                return _page_error(request, message, 400 if found else 404)
            tenant = found[0].tenant
            request_tenant_set(tenant.pk)
            user_id = request.user.pk
            params = _board_params(dict(request.GET.items()))
        filtered = bool(params["city"] or params["genre"] or params["show_id"])
        board_access_check(tenant=tenant, window=params["window"], filtered=filtered, live=True)
        show = None
        if params["show_id"] is not None:
            show = Show.objects.filter(tenant=tenant, pk=params["show_id"]).first()
            if show is None:
                raise NotFoundError("No such show.")
        board = board_for(
            tenant=tenant,
            metric=params["metric"],
            window=params["window"],
            city=params["city"] or None,
            genre=params["genre"] or None,
            show_id=params["show_id"],
            currency=params["currency"] or None,
        )
        entries = board_ranking(board=board).entries[:10]
    except ApplicationError as exc:
        return _page_error(request, exc.message, exc.status_code)
    ticket = ticket_issue(tenant=tenant, user_id=user_id, board=board)
    ws_base = getattr(settings, "WEBSOCKET_BASE_URL", "")
    ws_url = (
        ws_base.rstrip("/") + "/ws/leaderboards/"
        if ws_base
        else f"{'wss' if request.is_secure() else 'ws'}://{request.get_host()}/ws/leaderboards/"
    )
    config = {
        "ws_url": ws_url,
        "ticket": ticket,
        "board": {k: v for k, v in params.items() if v not in (None, "")},
        "entries": entries,
        "standings_url": f"/jumbotron/standings?{urlencode({'ticket': ticket, 'show_id': show.pk})}"
        if show
        else None,
    }
    context = {"config": config, "board": board.describe(), "show": show, "tenant": tenant}
    response = render(request, "leaderboards/jumbotron.html", context)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the share token must not leak through Referer
    return response
