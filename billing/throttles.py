"""The per-tenant API rate limit: `api_requests_per_minute` of the tenant's entitlements, counted in Redis in
fixed one-minute windows shared by every process. Also counts the tenant's API calls this month.

A no-op for unauthenticated requests and for requests that do not name one tenant (the view answers those)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AbstractBaseUser
from django_redis import get_redis_connection
from rest_framework.throttling import BaseThrottle

if TYPE_CHECKING:
    from rest_framework.request import Request

# Imported lazily below: DRF imports this module while `rest_framework.views` (and so coliseum.errors and
# coliseum.tenancy) is still initialising (DEFAULT_THROTTLE_CLASSES is read in APIView's class body).

THROTTLE_KEY = "throttle:api:{tenant_id}:{minute}"
# Which tenant a (user, X-Tenant) pair acts for, remembered briefly so that counting costs no query; a
# membership change shows within this many seconds (it only decides whose budget a request is counted in).
MEMBER_KEY = "billing:throttle-member:{user_id}:{slug}"
MEMBER_SECONDS = 60


def _tenant_id_for(request: Request) -> int | None:
    from django.core.cache import cache

    from coliseum.errors import ApplicationError
    from coliseum.models import Tenant

    from .permissions import request_tenant

    tenant = getattr(request, "tenant", None)
    if isinstance(tenant, Tenant):
        return int(tenant.pk)
    slug = request.headers.get("X-Tenant") or request.query_params.get("tenant") or ""
    key = MEMBER_KEY.format(user_id=request.user.pk, slug=slug[:64])
    from .entitlements import CACHE_ERRORS

    try:
        cached = cache.get(key)
    except CACHE_ERRORS:
        cached = None
    if cached is None:
        try:
            cached = int(request_tenant(request).pk)
        except ApplicationError:
            cached = 0  # no tenant, several, or not a member: the view answers that
        try:
            cache.set(key, cached, MEMBER_SECONDS)
        except CACHE_ERRORS:
            pass
    return int(cached) or None


class TenantPlanThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        from .entitlements import entitlements_for_tenant_id

        user = getattr(request, "user", None)
        if not isinstance(user, AbstractBaseUser) or not user.is_authenticated:
            return True
        tenant_id = _tenant_id_for(request)
        if tenant_id is None:
            return True
        limit = entitlements_for_tenant_id(tenant_id).api_requests_per_minute
        api_call_count(tenant_id=tenant_id, limit=limit)
        return True

    def wait(self) -> float | None:
        return None


def api_call_count(*, tenant_id: int, limit: int) -> None:
    """Count one API call of a tenant (rate limit window and monthly usage, one Redis round trip); raises
    RateLimitedError (429) past `limit` calls this minute. Also used by the leaderboard API's hot path
    (leaderboards/fast.py), which answers outside DRF."""
    from coliseum.errors import RateLimitedError

    from .entitlements import CACHE_ERRORS
    from .services import USAGE_KEY, USAGE_TTL_SECONDS, usage_period

    now = time.time()
    minute = int(now // 60)
    key = THROTTLE_KEY.format(tenant_id=tenant_id, minute=minute)
    usage_key = USAGE_KEY.format(tenant_id=tenant_id, period=usage_period(), kind="api_calls")
    try:
        pipe = get_redis_connection("default").pipeline()
        pipe.incr(key)
        pipe.expire(key, 120)
        pipe.incr(usage_key)
        pipe.expire(usage_key, USAGE_TTL_SECONDS)
        count = int(pipe.execute()[0])
    except CACHE_ERRORS:
        return  # Redis down: serve rather than refuse (the limit protects, it must not break)
    if count > limit:
        reset_at = (minute + 1) * 60
        raise RateLimitedError(
            f"Rate limit of {limit} requests per minute reached for this tenant's plan.",
            retry_after=max(1, int(reset_at - now + 0.999)),
            reset_at=reset_at,
            details={"limit_per_minute": limit},
        )
