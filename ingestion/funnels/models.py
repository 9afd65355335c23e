"""Attribution's tables: one row per conversion (and artist) with the touch it is credited to, and a small
per-tenant settings row (the lookback window). Funnels need no table: they are pure reads of the event log."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from coliseum.models import Tenant

DEFAULT_LOOKBACK_DAYS = 30


class AttributionSettings(models.Model):
    """Per-tenant attribution settings. No row means the defaults."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="+")
    lookback_days = models.PositiveSmallIntegerField(
        default=DEFAULT_LOOKBACK_DAYS, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"attribution settings of tenant {self.tenant_id}"


class AttributedConversion(models.Model):
    """A conversion (money spent, attendance, vote) concerning an artist, and the same fan's last touch of
    that artist within the lookback window (touch_* empty: unattributed). Written only by
    ingestion.funnels.services (plain SQL upserts from the processor's batch transaction)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    artist_id = models.BigIntegerField()  # coliseum_artist pk (no FK: the log keeps ids of deleted artists)
    user_id = models.CharField(max_length=200)
    conversion_pk = models.BigIntegerField()  # ingestion_event.id
    conversion_event_id = models.CharField(max_length=200)
    conversion_type = models.CharField(max_length=100)
    conversion_at = models.DateTimeField()
    amount_minor = models.BigIntegerField(null=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    touch_pk = models.BigIntegerField(null=True)
    touch_event_id = models.CharField(max_length=200, null=True)
    touch_type = models.CharField(max_length=100, null=True)
    touch_at = models.DateTimeField(null=True)
    source = models.CharField(max_length=200, null=True)  # the touch's campaign source, "direct" without one
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "conversion_event_id", "artist_id"], name="funnels_conversion_unique"
            )
        ]
        indexes = [
            # Late touches look up the conversions they may take over (same fan, same artist, later time)
            # through `funnels_conv_fan` on the generated column `fan_key`, both created in migration 0005
            # (plain SQL).
            models.Index(fields=["tenant", "conversion_at"], name="funnels_conv_time"),
        ]

    def __str__(self) -> str:
        return f"conversion {self.conversion_pk}"
