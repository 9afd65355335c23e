"""The core domain every app shares: tenants, their members, artists, shows and API keys."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.core.exceptions import ValidationError
from django.db import models


class Plan(models.TextChoices):
    BASIC = "basic", "Basic"
    PRO = "pro", "Pro"
    ENTERPRISE = "enterprise", "Enterprise"


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone.")


class Tenant(models.Model):
    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    # The plan in force. billing keeps it in step with Stripe and operator assignments (see billing.services).
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.BASIC)
    reporting_currency = models.CharField(max_length=3, default="USD")
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    ANALYST = "analyst", "Analyst"
    VIEWER = "viewer", "Viewer"


# Higher number, more power. Permission classes compare against these.
ROLE_RANK: dict[str, int] = {Role.VIEWER: 1, Role.ANALYST: 2, Role.ADMIN: 3, Role.OWNER: 4}


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_user_tenant_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"


class Artist(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="artists")
    external_id = models.CharField(max_length=128)
    name = models.CharField(max_length=200)
    genres = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    home_city = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "external_id"], name="artist_tenant_external_unique")
        ]
        indexes = [GinIndex(name="artist_name_trgm", fields=["name"], opclasses=["gin_trgm_ops"])]

    def __str__(self) -> str:
        return self.name


class Show(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="shows")
    external_id = models.CharField(max_length=128)
    title = models.CharField(max_length=200)
    venue = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=128, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    lineup = models.ManyToManyField(Artist, related_name="shows", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "title"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "external_id"], name="show_tenant_external_unique")
        ]

    def __str__(self) -> str:
        return self.title


class ApiKeyKind(models.TextChoices):
    WRITE = "write", "Write key (Segment-compatible ingestion)"
    WEBHOOK = "webhook", "Webhook signing secret (Passport HMAC)"


class ApiKey(models.Model):
    """A tenant's credential. Write keys are stored as a SHA-256 digest (long random tokens, looked up
    by digest); webhook secrets must be read back to verify HMACs, so they are stored encrypted (Fernet, key
    derived from FIELD_ENCRYPTION_KEY). Neither is ever stored or logged in the clear."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    kind = models.CharField(max_length=10, choices=ApiKeyKind.choices)
    name = models.CharField(max_length=100, blank=True)
    # Public identifier: the webhook's X-Passport-Key, or a write key's visible prefix.
    key_id = models.CharField(max_length=64, unique=True)
    secret_digest = models.CharField(max_length=64, blank=True, db_index=True)
    secret_encrypted = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind}:{self.key_id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
