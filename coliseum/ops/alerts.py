"""Alerts: four rules over the health figures, evaluated by the beat job each minute.

A rule that starts firing is announced ONCE (log, Sentry when configured, ALERT_WEBHOOK_URL when set) and
once more when it recovers. The state is one Redis hash, `ops:alerts:firing` (rule -> JSON); HSETNX/HDEL
make the transition atomic, so two evaluators running at once still announce each change once."""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from .conf import ops_setting
from .redis import ops_redis

logger = logging.getLogger(__name__)
STATE_KEY = "ops:alerts:firing"


@dataclass(frozen=True)
class Reading:
    rule: str
    value: float | None
    threshold: float
    firing: bool
    message: str
    # False when the figure could not be measured (Redis, the broker or ingest stats unavailable): an
    # unknown figure neither fires nor recovers, so a monitoring hiccup never reads as "all clear".
    known: bool = True


@dataclass(frozen=True)
class Transition:
    rule: str
    state: str  # "firing" | "recovered"
    text: str


def alerts_thresholds() -> dict[str, float]:
    return {
        "api_error_rate": float(ops_setting("OPS_ALERT_ERROR_RATE")),
        "celery_queue_depth": float(ops_setting("OPS_ALERT_QUEUE_DEPTH")),
        "api_p95_seconds": float(ops_setting("OPS_ALERT_P95_SECONDS")),
        "ingest_lag_seconds": float(ops_setting("OPS_ALERT_INGEST_LAG_SECONDS")),
    }


def alerts_read(snapshot: dict[str, Any]) -> list[Reading]:
    """What each rule says about a health snapshot."""
    from .health import ingest_lag_seconds

    t = alerts_thresholds()
    readings: list[Reading] = []
    api_known = snapshot.get("api") is not None
    api = snapshot.get("api") or {}
    requests = int(api.get("requests") or 0)
    rate = float(api.get("error_rate") or 0.0)
    enough = requests >= int(ops_setting("OPS_ALERT_MIN_REQUESTS"))
    readings.append(
        Reading(
            "api_error_rate",
            rate if requests else None,
            t["api_error_rate"],
            enough and rate > t["api_error_rate"],
            f"API 5xx rate {rate:.1%} over 5 min ({requests} requests), threshold {t['api_error_rate']:.1%}",
            api_known,
        )
    )
    depths = {q: d for q, d in (snapshot.get("celery") or {}).get("queues", {}).items() if d is not None}
    worst_queue = max(depths, key=lambda q: depths[q]) if depths else None
    depth = float(depths[worst_queue]) if worst_queue else None
    readings.append(
        Reading(
            "celery_queue_depth",
            depth,
            t["celery_queue_depth"],
            depth is not None and depth > t["celery_queue_depth"],
            f"Celery queue {worst_queue!r} holds {depth:.0f} messages, "
            f"threshold {t['celery_queue_depth']:.0f}"
            if worst_queue
            else "Celery queue depth unknown",
            depth is not None,
        )
    )
    groups = api.get("groups") or {}
    p95s = {g: s["p95_seconds"] for g, s in groups.items() if s.get("p95_seconds") is not None}
    worst_group = max(p95s, key=lambda g: p95s[g]) if p95s else None
    p95 = float(p95s[worst_group]) if worst_group else None
    readings.append(
        Reading(
            "api_p95_seconds",
            p95,
            t["api_p95_seconds"],
            p95 is not None and p95 > t["api_p95_seconds"],
            f"p95 latency of {worst_group!r} is {p95:.2f} s over 5 min, "
            f"threshold {t['api_p95_seconds']:.0f} s"
            if worst_group
            else "no requests",
            api_known,
        )
    )
    lag = ingest_lag_seconds(snapshot.get("ingest"))
    readings.append(
        Reading(
            "ingest_lag_seconds",
            lag,
            t["ingest_lag_seconds"],
            lag is not None and lag > t["ingest_lag_seconds"],
            f"Ingest lag {lag:.0f} s, threshold {t['ingest_lag_seconds']:.0f} s"
            if lag is not None
            else "ingest lag unknown",
            lag is not None,
        )
    )
    return readings


def alerts_firing() -> list[dict[str, Any]]:
    try:
        raw = ops_redis().hgetall(STATE_KEY)
    except Exception:
        return []
    return sorted((json.loads(v) for v in raw.values()), key=lambda a: a["rule"])


def _notify(transition: Transition) -> None:
    log = logger.warning if transition.state == "firing" else logger.info
    log("alert %s: %s", transition.state, transition.rule, extra={"alert": transition.text})
    if getattr(settings, "SENTRY_DSN", ""):
        import sentry_sdk

        sentry_sdk.capture_message(
            transition.text, level="warning" if transition.state == "firing" else "info"
        )
    url = str(ops_setting("ALERT_WEBHOOK_URL") or "")
    if url.startswith(("http://", "https://")):
        body = json.dumps({"text": transition.text}).encode()
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                response.read()
        except OSError:
            logger.warning("alert webhook failed", extra={"alert_rule": transition.rule})


def alerts_evaluate(*, snapshot: dict[str, Any] | None = None) -> list[Transition]:
    """Compare the figures with the thresholds; announce what started firing or recovered."""
    if snapshot is None:
        from .health import health_snapshot

        snapshot = health_snapshot()
    r = ops_redis()
    transitions: list[Transition] = []
    for reading in alerts_read(snapshot):
        if not reading.known:
            continue
        if reading.firing:
            state = {
                "rule": reading.rule,
                "since": timezone.now().isoformat(),
                "value": reading.value,
                "threshold": reading.threshold,
                "message": reading.message,
            }
            if r.hsetnx(STATE_KEY, reading.rule, json.dumps(state)):
                transitions.append(
                    Transition(reading.rule, "firing", f":rotating_light: FIRING {reading.message}")
                )
        elif r.hdel(STATE_KEY, reading.rule):
            transitions.append(
                Transition(reading.rule, "recovered", f":white_check_mark: RECOVERED {reading.message}")
            )
    for transition in transitions:
        _notify(transition)
    return transitions
