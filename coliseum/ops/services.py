"""ops_tick: the once-a-minute job (audit.tasks.ops_tick runs it from beat)."""

from __future__ import annotations

from typing import Any

from .alerts import Transition, alerts_evaluate
from .health import health_snapshot
from .history import history_point, history_record


def ops_tick() -> dict[str, Any]:
    """Take a health snapshot, add the history point, evaluate alerts (announcing transitions)."""
    snapshot = health_snapshot()
    point = history_point(snapshot=snapshot)
    history_record(point=point)
    transitions: list[Transition] = alerts_evaluate(snapshot=snapshot)
    return {"point": point, "transitions": [t.rule + ":" + t.state for t in transitions]}
