"""Reads on the core domain: credential lookups for ingestion's hot path, pickers for artists and shows."""

from __future__ import annotations

import threading
import time
from typing import Any

from django.contrib.auth.models import User
from django.contrib.postgres.search import TrigramSimilarity
from django.db.models import F, Q, QuerySet

from .crypto import decrypt_secret, digest_secret
from .models import ApiKey, ApiKeyKind, Artist, Membership, Show, Tenant
from .rls import system_scope

# How long a credential lookup is remembered in-process. A revoke is effective at once in the process that
# revoked it and within this many seconds everywhere else (documented in the README, core section).
API_KEY_CACHE_SECONDS = 5.0
_API_KEY_CACHE_MAX = 2048

_cache_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[float, Any]] = {}


def api_key_cache_clear() -> None:
    with _cache_lock:
        _cache.clear()


def _cached(kind: str, token: str, load: Any) -> Any:
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get((kind, token))
    if hit is not None and hit[0] > now:
        return hit[1]
    value = load()
    with _cache_lock:
        if len(_cache) >= _API_KEY_CACHE_MAX:  # bounded: random keys from an attacker cannot grow it
            _cache.clear()
        _cache[(kind, token)] = (now + API_KEY_CACHE_SECONDS, value)
    return value


def write_key_authenticate(raw: str) -> ApiKey | None:
    """The active write key whose secret is `raw`, with its tenant loaded; None otherwise.

    Looked up by SHA-256 digest (an index probe; comparing digests leaks nothing useful about the secret)."""
    if not raw or len(raw) > 256:
        return None
    digest = digest_secret(raw)

    def load() -> ApiKey | None:
        with system_scope("key lookup: the key names the tenant"):
            return (
                ApiKey.objects.select_related("tenant")
                .filter(kind=ApiKeyKind.WRITE, secret_digest=digest, revoked_at__isnull=True)
                .first()
            )

    result: ApiKey | None = _cached("write", digest, load)
    return result


def webhook_key_secret(key_id: str) -> tuple[ApiKey, str] | None:
    """The active webhook key `key_id` (its tenant loaded) and its decrypted signing secret; None otherwise.
    The caller compares HMACs with coliseum.crypto.constant_time_equals."""
    if not key_id or len(key_id) > 64:
        return None

    def load() -> tuple[ApiKey, str] | None:
        with system_scope("key lookup: the key names the tenant"):
            key = (
                ApiKey.objects.select_related("tenant")
                .filter(kind=ApiKeyKind.WEBHOOK, key_id=key_id, revoked_at__isnull=True)
                .first()
            )
        if key is None:
            return None
        secret = decrypt_secret(key.secret_encrypted)
        return (key, secret) if secret else None

    result: tuple[ApiKey, str] | None = _cached("webhook", key_id, load)
    return result


def api_key_list(*, tenant: Tenant) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(tenant=tenant).select_related("created_by").order_by("-created_at", "-id")


def api_key_get(*, tenant: Tenant, key_id: str) -> ApiKey | None:
    """Through the caller's tenant: another tenant's key is simply not found."""
    return ApiKey.objects.filter(tenant=tenant, key_id=key_id).select_related("tenant").first()


def memberships_for_user(*, user: User) -> list[Membership]:
    """Every tenant the user belongs to: across tenants by nature, so read in system scope (the user's own
    rows only)."""
    with system_scope("membership resolution"):
        return list(Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__slug"))


# Below this similarity a fuzzy match is noise (pg_trgm's own default threshold for `%` is 0.3).
ARTIST_SEARCH_MIN_SIMILARITY = 0.2


def artist_search(*, tenant: Tenant, search: str = "", genre: str = "", city: str = "") -> QuerySet[Artist]:
    """Artists of one tenant for pickers. With `search`: fuzzy (trigram similarity, the GIN index on name)
    or substring matches, best first; the external id matches exactly too."""
    qs = Artist.objects.filter(tenant=tenant)
    if genre:
        qs = qs.filter(genres__contains=[genre])
    if city:
        qs = qs.filter(home_city__iexact=city)
    search = search.strip()
    if not search:
        return qs.order_by("name", "id")
    return (
        qs.annotate(similarity=TrigramSimilarity("name", search))
        .filter(
            Q(name__trigram_similar=search)
            | Q(name__icontains=search)
            | Q(external_id=search)
            | Q(similarity__gte=ARTIST_SEARCH_MIN_SIMILARITY)
        )
        .order_by("-similarity", "name", "id")
    )


def show_list(
    *, tenant: Tenant, search: str = "", city: str = "", artist_id: int | None = None
) -> QuerySet[Show]:
    qs = Show.objects.filter(tenant=tenant)
    if search.strip():
        qs = qs.filter(Q(title__icontains=search.strip()) | Q(venue__icontains=search.strip()))
    if city:
        qs = qs.filter(city__iexact=city)
    if artist_id is not None:
        qs = qs.filter(lineup__id=artist_id)
    if artist_id is not None:
        qs = qs.distinct()
    return qs.prefetch_related("lineup").order_by(F("starts_at").desc(nulls_last=True), "title", "id")
