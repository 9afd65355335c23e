"""Ingestion's tables.

The hot tables (the partitioned event log, the dedupe keys, the processing queue, rollups, listener and vote
tables) are created by plain SQL in migrations/0001 and read and written by plain SQL in services/ and
selectors.py: they need DDL the ORM cannot express (range partitions or a hypertable, an append-only trigger)
and statements it cannot write (multi-row INSERT ... ON CONFLICT ... RETURNING in one round trip).
Only `Person` (identify traits) is an ordinary ORM model."""

from __future__ import annotations

from django.db import models

from coliseum.models import Tenant


class Person(models.Model):
    """A fan's traits as last sent by a Segment `identify` call (kept for export and erasure)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    user_id = models.CharField(max_length=200)
    traits = models.JSONField(default=dict)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user_id"], name="ingestion_person_unique")]

    def __str__(self) -> str:
        return f"person {self.pk}"


# The operator console's read-only views of the raw-SQL tables (unmanaged: they create no table).
from .admin_models import EventLogEntry, RollupHourly  # noqa: E402,F401
