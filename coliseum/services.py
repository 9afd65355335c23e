"""Writes on the core domain."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Collection
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils.timezone import now as timezone_now
from django_redis import get_redis_connection

from audit.services import Actor, audit_record

from .crypto import digest_secret, encrypt_secret, new_token
from .errors import ApplicationError
from .models import ApiKey, ApiKeyKind, Membership, Role, Tenant
from .rls import tenant_scope

logger = logging.getLogger(__name__)


def artists_resolve(*, tenant_id: int, external_ids: Collection[str]) -> dict[str, int]:
    """Map artists' external ids to primary keys, creating the unknown ones on first sight (named after their
    external id until an operator edits them). One INSERT ... ON CONFLICT and one SELECT, whatever the count,
    and safe under concurrent callers: the unique (tenant, external_id) constraint decides."""
    return _resolve("coliseum_artist", "name", tenant_id, external_ids)


def shows_resolve(*, tenant_id: int, external_ids: Collection[str]) -> dict[str, int]:
    """As artists_resolve, for shows (title defaults to the external id)."""
    return _resolve("coliseum_show", "title", tenant_id, external_ids)


def _resolve(table: str, label_column: str, tenant_id: int, external_ids: Collection[str]) -> dict[str, int]:
    ids = sorted({e for e in external_ids if e})
    if not ids:
        return {}
    extra = ", genres, home_city" if table == "coliseum_artist" else ", venue, city"
    extra_values = ", '{}'::varchar[], ''" if table == "coliseum_artist" else ", '', ''"
    with connection.cursor() as cursor:
        # Sorted input keeps lock order stable between concurrent inserts of overlapping sets (no deadlocks).
        cursor.execute(
            f"INSERT INTO {table} (tenant_id, external_id, {label_column}{extra}, created_at) "  # noqa: S608
            f"SELECT %s, x, left(x, 200){extra_values}, now() FROM unnest(%s::text[]) AS x "
            "ON CONFLICT (tenant_id, external_id) DO NOTHING",
            [tenant_id, ids],
        )
        cursor.execute(
            f"SELECT external_id, id FROM {table} WHERE tenant_id = %s AND external_id = ANY(%s)",  # noqa: S608
            [tenant_id, ids],
        )
        return {external_id: pk for external_id, pk in cursor.fetchall()}


# --- Tenants, members and API keys ----------------------------------------------------------------

# Touch at most once a minute per key: ingestion calls api_key_touch on every request, the UPDATE runs rarely.
API_KEY_TOUCH_INTERVAL_SECONDS = 60


@dataclass(frozen=True)
class IssuedKey:
    """An API key as created: `secret` is the one and only time the clear secret leaves the server."""

    key: ApiKey
    secret: str


def tenant_create(
    *,
    slug: str,
    name: str,
    owner: User,
    reporting_currency: str = "USD",
    timezone: str = "UTC",
    actor: Actor = None,
    request: HttpRequest | None = None,
) -> Tenant:
    """A new tenant with `owner` as its owner (signup, create_tenant)."""
    if Tenant.objects.filter(slug=slug).exists():
        raise ApplicationError("That tenant slug is taken.", code="slug_taken", details={"slug": [slug]})
    with transaction.atomic():
        tenant = Tenant(slug=slug, name=name, reporting_currency=reporting_currency, timezone=timezone)
        tenant.full_clean()
        tenant.save()
        with tenant_scope(tenant.pk):  # its first rows are the new tenant's (row-level security)
            audit_record(
                action="tenant.created",
                actor=actor if actor is not None else owner,
                tenant=tenant,
                target=tenant,
                request=request,
            )
            membership_create(
                tenant=tenant, user=owner, role=Role.OWNER, actor=actor or owner, request=request
            )
    return tenant


def membership_create(
    *,
    tenant: Tenant,
    user: User,
    role: str,
    actor: Actor = None,
    request: HttpRequest | None = None,
) -> Membership:
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}.", code="invalid_role")
    with transaction.atomic():
        membership = Membership.objects.create(tenant=tenant, user=user, role=role)
        audit_record(
            action="membership.created",
            actor=actor,
            tenant=tenant,
            target=membership,
            request=request,
            details={"user_id": user.pk, "role": role},
        )
    return membership


def membership_role_change(
    *, membership: Membership, role: str, actor: Actor = None, request: HttpRequest | None = None
) -> Membership:
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}.", code="invalid_role")
    with transaction.atomic():
        previous = (
            Membership.objects.filter(pk=membership.pk).values_list("role", flat=True).first()
            or membership.role
        )
        membership.role = role
        membership.save(update_fields=["role"])
        if previous != role:
            audit_record(
                action="membership.role_changed",
                actor=actor,
                tenant=membership.tenant,
                target=membership,
                request=request,
                details={"user_id": membership.user_id, "from": previous, "to": role},
            )
    return membership


def membership_remove(
    *, membership: Membership, actor: Actor = None, request: HttpRequest | None = None
) -> None:
    with transaction.atomic():
        audit_record(
            action="membership.removed",
            actor=actor,
            tenant=membership.tenant,
            target_type="coliseum.membership",
            target_id=membership.pk,
            request=request,
            details={"user_id": membership.user_id, "role": membership.role},
        )
        membership.delete()


def api_key_create(
    *,
    tenant: Tenant,
    kind: str,
    name: str = "",
    actor: Actor = None,
    request: HttpRequest | None = None,
    key_id: str | None = None,
    secret: str | None = None,
) -> IssuedKey:
    """Issue a write key (stored as a SHA-256 digest) or a webhook signing secret (stored encrypted).

    `key_id`/`secret` are for seed_demo's deterministic demo keys only; everyone else gets random ones."""
    if kind == ApiKeyKind.WRITE:
        key_id = key_id or new_token("wk_", 6)
        secret = secret or f"{key_id}.{secrets.token_urlsafe(32)}"
        key = ApiKey(tenant=tenant, kind=kind, name=name, key_id=key_id, secret_digest=digest_secret(secret))
    elif kind == ApiKeyKind.WEBHOOK:
        key_id = key_id or new_token("whk_", 9)
        secret = secret or new_token("whsec_", 32)
        key = ApiKey(
            tenant=tenant, kind=kind, name=name, key_id=key_id, secret_encrypted=encrypt_secret(secret)
        )
    else:
        raise ApplicationError(f"Unknown key kind {kind!r}.", code="invalid_kind")
    user = actor if isinstance(actor, AbstractBaseUser) and actor.is_authenticated else None
    key.created_by = user  # type: ignore[assignment]
    with transaction.atomic():
        key.save()
        audit_record(
            action="api_key.created",
            actor=actor,
            tenant=tenant,
            target=key,
            request=request,
            details={"kind": kind, "key_id": key.key_id},
        )
    return IssuedKey(key=key, secret=secret)


def api_key_revoke(*, key: ApiKey, actor: Actor = None, request: HttpRequest | None = None) -> ApiKey:
    """Revoke a key. Idempotent: revoking a revoked key changes nothing and records nothing."""
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone_now())
        key.refresh_from_db(fields=["revoked_at"])
        if updated:
            audit_record(
                action="api_key.revoked",
                actor=actor,
                tenant=key.tenant,
                target=key,
                request=request,
                details={"kind": key.kind, "key_id": key.key_id},
            )
    # This process forgets it at once (and again after commit, in case a lookup re-cached it meanwhile);
    # other processes within API_KEY_CACHE_SECONDS (see selectors).
    from .selectors import api_key_cache_clear

    api_key_cache_clear()
    transaction.on_commit(api_key_cache_clear)
    return key


def api_key_touch(*, key_id: str | int) -> bool:
    """Record that a key was used. Cheap enough for every request: a Redis SET NX EX guards the UPDATE so it
    runs at most once a minute per key (and across processes). Best effort: never raises. `key_id` is the
    public key id (str) or the primary key (int). Returns whether the row was written."""
    try:
        client = get_redis_connection("default")
        if not client.set(f"coliseum:apikey:touch:{key_id}", 1, nx=True, ex=API_KEY_TOUCH_INTERVAL_SECONDS):
            return False
    except Exception:  # Redis down: skip the touch rather than fail an ingest
        logger.warning("api key touch skipped: redis unavailable")
        return False
    lookup: dict[str, str | int] = {"pk": key_id} if isinstance(key_id, int) else {"key_id": key_id}
    return ApiKey.objects.filter(**lookup).update(last_used_at=timezone_now()) > 0
