"""The jumbotron: a full-screen page for a venue screen, updated over the WebSocket feed.

Open to a signed-in member of the tenant, any role (session from /jumbotron/sign-in; `?tenant=` when several
memberships) or to anyone holding a signed share link (`?share=`, made by POST /api/v1/jumbotron/share, with
an expiry). A share link fixes the board: its query parameters are ignored. The page receives a short-lived
WebSocket ticket, never a JWT, and renews it at /jumbotron/ticket with the same credentials (no reload)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate, login
from django.core import signing
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods

from audit.services import audit_record
from coliseum import mfa
from coliseum.clientaddr import client_address
from coliseum.errors import (
    ApplicationError,
    AuthenticationError,
    ForbiddenError,
    NotFoundError,
    error_response,
)
from coliseum.models import Membership, Show, Tenant
from coliseum.rls import request_tenant_set, system_scope
from ingestion.catalog import METRIC_LABELS

from .boards import METRICS, MONEY_METRICS, WINDOW_NAMES, Board
from .consumers import ticket_issue, ticket_max_age
from .gates import board_access_check
from .selectors import board_for, board_ranking

SHARE_SALT = "leaderboards.jumbotron-share"
SIGN_IN_URL = "/jumbotron/sign-in"
WINDOW_LABELS = {
    "1h": "last hour",
    "24h": "last 24 hours",
    "7d": "last 7 days",
    "30d": "last 30 days",
    "90d": "last 90 days",
    "all": "all time",
}


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


@dataclass(frozen=True)
class Target:
    """What a jumbotron request may show: the tenant, the board and who asks."""

    tenant: Tenant
    user_id: int | None
    board: Board
    params: dict[str, Any]
    show: Show | None
    share_expires_at: int | None


def jumbotron_target(request: HttpRequest) -> Target:
    """The page's and the ticket endpoint's one permission check: a valid share link, or a signed-in member
    of the tenant (any role) whose plan has the live feed."""
    share = request.GET.get("share")
    user_id: int | None = None
    share_expires_at: int | None = None
    if share:
        payload = _share_payload(share)
        tenant = Tenant.objects.filter(pk=payload["t"]).first() if payload is not None else None
        if payload is None or tenant is None:
            raise ForbiddenError("This share link is invalid or has expired.", code="share_expired")
        request_tenant_set(tenant.pk)  # the signed link names the tenant (row-level security)
        params = _board_params(payload["b"])
        share_expires_at = int(payload["e"])
    else:
        if not request.user.is_authenticated:
            raise AuthenticationError("Sign in to open the jumbotron.")
        memberships = Membership.objects.select_related("tenant").filter(
            user_id=request.user.pk, user__is_active=True
        )
        slug = request.GET.get("tenant")
        if slug:
            memberships = memberships.filter(tenant__slug=slug)
        with system_scope("membership resolution"):
            found = list(memberships[:2])
        if len(found) != 1:
            if found:
                raise ApplicationError("Name a tenant with ?tenant=<slug>.", code="tenant_required")
            raise NotFoundError("No such tenant among yours.")
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
    return Target(tenant, user_id, board, params, show, share_expires_at)


def _ticket(target: Target) -> str:
    return ticket_issue(
        tenant=target.tenant,
        user_id=target.user_id,
        board=target.board,
        share_expires_at=target.share_expires_at,
    )


@require_GET
def jumbotron(request: HttpRequest) -> HttpResponse:
    if not request.GET.get("share") and not request.user.is_authenticated:
        return redirect(f"{SIGN_IN_URL}?{urlencode({'next': request.get_full_path()})}")
    try:
        target = jumbotron_target(request)
        ranking = board_ranking(board=target.board)
    except ApplicationError as exc:
        return _page_error(request, exc.message, exc.status_code)
    board, show, params = target.board, target.show, target.params
    ws_base = getattr(settings, "WEBSOCKET_BASE_URL", "")
    ws_url = (
        ws_base.rstrip("/") + "/ws/leaderboards/"
        if ws_base
        else f"{'wss' if request.is_secure() else 'ws'}://{request.get_host()}/ws/leaderboards/"
    )
    # The same credentials as this page (share link, or the session and ?tenant=) renew the ticket.
    renew = {k: v for k, v in request.GET.items() if k in ("share", "tenant")}
    if not request.GET.get("share"):
        renew.update({k: str(v) for k, v in params.items() if v not in (None, "")})
    metric = board.family.metric
    config = {
        "ws_url": ws_url,
        "ticket": _ticket(target),
        "ticket_seconds": ticket_max_age(),
        "ticket_url": f"/jumbotron/ticket?{urlencode(renew)}",
        "sign_in_url": f"{SIGN_IN_URL}?{urlencode({'next': request.get_full_path()})}",
        "board": {k: v for k, v in params.items() if v not in (None, "")},
        "metric": metric,
        "currency": board.family.currency or None,
        "entries": ranking.entries[:10],
        "generated_at": ranking.generated_at,
        "standings_url": f"/jumbotron/standings?{urlencode({'show_id': show.pk})}" if show else None,
    }
    context = {
        "config": config,
        "board": board.describe(),
        "show": show,
        "tenant": target.tenant,
        "title": f"{METRIC_LABELS[metric]}, {WINDOW_LABELS[board.window]}",
        "currency": board.family.currency if metric in MONEY_METRICS else "",
    }
    response = render(request, "leaderboards/jumbotron.html", context)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the share token must not leak through Referer
    return response


@require_GET
def jumbotron_ticket(request: HttpRequest) -> HttpResponse:
    """A fresh WebSocket ticket for an open jumbotron page, on the page's own credentials: the page renews
    its ticket here before it reconnects, so a screen never reloads. 401 signed out, 403 share link expired
    or plan without the live feed, in the error envelope."""
    try:
        target = jumbotron_target(request)
    except ApplicationError as exc:
        return error_response(exc.code, exc.message, exc.status_code, exc.details)
    response = JsonResponse({"ticket": _ticket(target), "expires_in": ticket_max_age()})
    response["Cache-Control"] = "no-store"
    return response


class SignInForm(forms.Form):
    username = forms.CharField(max_length=150)
    password = forms.CharField(max_length=128, strip=False, widget=forms.PasswordInput)
    otp = forms.CharField(max_length=32, required=False, label="Two-factor code (if your account uses one)")


@require_http_methods(["GET", "POST"])
def jumbotron_sign_in(request: HttpRequest) -> HttpResponse:
    """A tenant member's own sign-in for the jumbotron (the admin's form admits staff only). The same checks
    as POST /api/v1/auth/token: the failed-sign-in throttle, two-factor codes, the audit trail."""
    next_url = request.POST.get("next") or request.GET.get("next") or "/jumbotron/"
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = "/jumbotron/"
    form = SignInForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST" and form.is_valid():
        username, otp = form.cleaned_data["username"], form.cleaned_data["otp"]
        client = client_address(request)
        try:
            mfa.login_attempts_check(username=username, client=client)
            user = authenticate(request, username=username, password=form.cleaned_data["password"])
            if user is None or not user.is_active:
                reason = "invalid_credentials"
            elif mfa.mfa_enabled(user=user) and not mfa.mfa_verify(user=user, otp=otp, request=request):
                reason = "mfa_invalid" if otp else "mfa_required"
            else:
                mfa.login_failures_clear(username=username, client=client)
                login(request, user)
                audit_record(action="auth.login_succeeded", actor=user, target=user, request=request)
                return redirect(next_url)
            if reason != "mfa_required":
                mfa.login_failure_record(username=username, client=client)
                audit_record(
                    action="auth.login_failed",
                    actor=None,
                    request=request,
                    target_type="auth.user" if user else "",
                    target_id=user.pk if user else "",
                    details={"reason": reason},
                )
            messages = {
                "invalid_credentials": "Wrong username or password.",
                "mfa_required": "This account uses two-factor sign-in: enter the code from your app.",
                "mfa_invalid": "The two-factor code is wrong, expired or already used.",
            }
            form.add_error(None, messages[reason])
            status = 401
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            status = exc.status_code
    return render(request, "leaderboards/sign_in.html", {"form": form, "next": next_url}, status=status)
