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


class TenantPlanThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        from coliseum.errors import ApplicationError, RateLimitedError

        from .entitlements import entitlements_for
        from .permissions import request_tenant
        from .services import USAGE_KEY, USAGE_TTL_SECONDS, usage_period

        user = getattr(request, "user", None)
        if not isinstance(user, AbstractBaseUser) or not user.is_authenticated:
            return True
        try:
            tenant = request_tenant(request)
        except ApplicationError:
            return True
        limit = entitlements_for(tenant).api_requests_per_minute
        now = time.time()
        minute = int(now // 60)
        key = THROTTLE_KEY.format(tenant_id=tenant.pk, minute=minute)
        usage_key = USAGE_KEY.format(tenant_id=tenant.pk, period=usage_period(), kind="api_calls")
        pipe = get_redis_connection("default").pipeline()
        pipe.incr(key)
        pipe.expire(key, 120)
        pipe.incr(usage_key)
        pipe.expire(usage_key, USAGE_TTL_SECONDS)
        count = int(pipe.execute()[0])
        if count > limit:
            reset_at = (minute + 1) * 60
            raise RateLimitedError(
                f"Rate limit of {limit} requests per minute reached for this tenant's plan.",
                retry_after=max(1, int(reset_at - now + 0.999)),
                reset_at=reset_at,
                details={"limit_per_minute": limit},
            )
        return True

    def wait(self) -> float | None:
        return None
