"""Unmanaged ORM views of the raw-SQL tables, for the operator console only.

The tables are created and written by plain SQL (migrations/0002); these classes only let the Django admin
read them. `managed = False`: their migration creates no table. Nothing else should query through them."""

from __future__ import annotations

from django.db import models

from coliseum.models import Artist, Show, Tenant


class EventLogEntry(models.Model):
    """One row of the append-only, partitioned event log `ingestion_event`.

    The table's primary key is (id, occurred_at) (a partitioned table's key must include the partition
    column); `id` comes from one bigserial sequence shared by every partition, so it is unique in practice
    and serves as the admin's primary key."""

    id = models.BigIntegerField(primary_key=True)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_index=False
    )
    event_id = models.TextField()
    type = models.TextField()
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    user_id = models.TextField()
    session_id = models.TextField(null=True)
    device_id = models.TextField(null=True)
    artist = models.ForeignKey(
        Artist, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", null=True, db_index=False
    )
    show = models.ForeignKey(
        Show, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", null=True, db_index=False
    )
    city = models.TextField()
    genre = models.TextField()
    amount_minor = models.BigIntegerField(null=True)
    currency = models.TextField()
    properties = models.JSONField()
    context = models.JSONField()
    source = models.TextField()

    class Meta:
        managed = False
        db_table = "ingestion_event"
        verbose_name = "event"
        verbose_name_plural = "event log"

    def __str__(self) -> str:
        return f"event {self.pk}"


class RollupHourly(models.Model):
    """One row of `ingestion_rollup_hourly` (key: tenant, metric, bucket, artist, city, show, currency).

    The ORM needs a single primary-key column and the table has none; `bucket` stands in for it. It is NOT
    unique, so the admin lists these rows without detail pages (see RollupHourlyAdmin)."""

    tenant = models.ForeignKey(
        Tenant, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_index=False
    )
    metric = models.TextField()
    bucket = models.DateTimeField(primary_key=True)
    # 0 = no artist credited (the key cannot hold NULL): nullable here so the admin's join is an outer one.
    artist = models.ForeignKey(
        Artist, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", null=True, db_index=False
    )
    city = models.TextField()
    show_id = models.BigIntegerField()  # 0 = no show (the key cannot hold NULL)
    currency = models.TextField()
    value = models.BigIntegerField()

    class Meta:
        managed = False
        db_table = "ingestion_rollup_hourly"
        verbose_name = "hourly rollup"
        verbose_name_plural = "hourly rollups"

    def __str__(self) -> str:
        return f"{self.metric} {self.bucket:%Y-%m-%d %H:00}"
