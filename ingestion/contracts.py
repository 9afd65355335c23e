"""What ingestion hands to its readers after each committed processing batch.

Processing calls `leaderboards.services.board_contributions_apply(tenant_id=..., contributions=[...])` right
after a batch's rollup transaction commits. Redis boards are a cache: a failure there is logged and
repaired by the leaderboards reconcile job, never re-applied from here (that would double count)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Contribution:
    metric: str  # one of ingestion.catalog.METRICS except unique_listeners (derived from plays' user_id)
    occurred_at: datetime  # UTC
    artist_id: int  # coliseum.Artist pk
    city: str  # "" when unknown
    show_id: int | None  # coliseum.Show pk
    currency: str  # ISO 4217 for money metrics, "" otherwise
    value: int  # may be negative for corrections (a displaced vote, an erasure)
    user_id: str  # the fan's id (for unique listeners); never logged
