"""Board writes. Placeholder until the leaderboards work lands: the ingestion processor already calls
`board_contributions_apply` after each committed batch, so the two can be built side by side."""

from __future__ import annotations

from collections.abc import Sequence

from ingestion.contracts import Contribution


def board_contributions_apply(*, tenant_id: int, contributions: Sequence[Contribution]) -> None:
    """Apply a committed batch's contributions to the Redis boards (replaced by the leaderboards issue)."""
    return None
