"""The documented JSON Schema of a report in JSON format (served at /api/v1/reports/schema.json and
referenced from the OpenAPI description). Money is in minor units of `currency`; dates are ISO 8601 days
in the tenant's `timezone`; every count is an integer."""

from __future__ import annotations

from typing import Any

_INT = {"type": "integer"}
_DAY = {"type": "string", "format": "date"}
_METRIC_MAP = {"type": "object", "additionalProperties": _INT}
_CHANGE = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "properties": {
            "absolute": _INT,
            "percent": {"type": ["number", "null"]},
            "enough_history": {
                "type": "boolean",
                "description": "false: the previous period starts before the tenant's data; percent is null.",
            },
        },
        "required": ["absolute", "percent"],
    },
}
_PERIOD = {
    "type": "object",
    "properties": {"from": _DAY, "to": _DAY, "days": _INT},
    "required": ["from", "to", "days"],
}
_RANK = {"type": ["object", "null"], "properties": {"rank": _INT, "score": _INT}}
_DAILY = {
    "type": "array",
    "description": (
        "One row per day of the period: `date` plus one integer per metric (the CSV has the same columns)."
    ),
    "items": {
        "type": "object",
        "properties": {"date": _DAY},
        "required": ["date"],
        "additionalProperties": _INT,
    },
}
_ATTRIBUTION_GROUP = {
    "type": "object",
    "properties": {
        "key": {"type": ["string", "null"]},
        "attributed": {"type": "boolean"},
        "conversions": _INT,
        "by_type": _METRIC_MAP,
        "revenue": _METRIC_MAP,
    },
    "required": ["key", "attributed", "conversions", "by_type", "revenue"],
}

REPORT_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "coliseum.report/1",
    "title": "Coliseum report",
    "type": "object",
    "required": [
        "schema",
        "kind",
        "title",
        "tenant",
        "currency",
        "timezone",
        "period",
        "previous_period",
        "totals",
        "daily",
    ],
    "properties": {
        "schema": {"const": "coliseum.report/1"},
        "report_id": _INT,
        "kind": {"enum": ["artist", "show", "tenant"]},
        "title": {"type": "string"},
        "tenant": {"type": "object", "properties": {"slug": {"type": "string"}, "name": {"type": "string"}}},
        "currency": {"type": "string", "description": "ISO 4217; money metrics are minor units of it."},
        "timezone": {"type": "string"},
        "period": _PERIOD,
        "previous_period": {
            **_PERIOD,
            "properties": {
                **_PERIOD["properties"],  # type: ignore[dict-item]
                "enough_history": {
                    "type": "boolean",
                    "description": "kind=artist/tenant: the tenant's data covers this whole period.",
                },
            },
        },
        "generated_at": {"type": "string", "format": "date-time"},
        "totals": {**_METRIC_MAP, "description": "Metric -> total over the period (rollup_totals)."},
        "previous_totals": _METRIC_MAP,
        "change": _CHANGE,
        "daily": _DAILY,
        "artist": {
            "type": "object",
            "description": "kind=artist",
            "properties": {
                "id": _INT,
                "external_id": {"type": "string"},
                "name": {"type": "string"},
                "genres": {"type": "array", "items": {"type": "string"}},
                "home_city": {"type": "string"},
            },
        },
        "ranks": {
            "type": "object",
            "description": (
                "kind=artist: live leaderboard ranks in `window` (what GET /api/v1/leaderboards says)."
            ),
            "properties": {
                "window": {"type": "string"},
                "overall": {"type": "object", "additionalProperties": _RANK},
                "cities": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"city": {"type": "string"}, "plays": _RANK}},
                },
                "genres": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"genre": {"type": "string"}, "plays": _RANK}},
                },
            },
        },
        "attribution": {
            "type": ["object", "null"],
            "description": (
                "kind=artist, plans with funnels (else null): the artist's conversions in the period (money "
                "spent, attendance, votes) grouped by the fan's last touch type and by its source, as "
                "GET /api/v1/attribution answers (`key: null` is the unattributed group; `revenue` is money "
                "spent in minor units per currency), and `attributed_revenue` per currency."
            ),
            "properties": {
                "conversions": _INT,
                "attributed": _INT,
                "attributed_revenue": _METRIC_MAP,
                "by_touch_type": {"type": "array", "items": _ATTRIBUTION_GROUP},
                "by_source": {"type": "array", "items": _ATTRIBUTION_GROUP},
            },
        },
        "top_cities": {
            "type": "array",
            "items": {"type": "object", "properties": {"city": {"type": "string"}, "plays": _INT}},
        },
        "top_shows": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "show_id": _INT,
                    "title": {"type": "string"},
                    "city": {"type": "string"},
                    "attendance": _INT,
                    "votes": _INT,
                },
            },
        },
        "votes_per_show": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"show_id": _INT, "title": {"type": "string"}, "votes": _INT},
            },
        },
        "show": {"type": "object", "description": "kind=show: the show and its lineup."},
        "rounds": {
            "type": "array",
            "description": (
                "kind=show: counted weighted votes per artist per round over the whole show (the show "
                "standings API's figures), and the round's winner (null on a tie). totals.votes is the "
                "period's."
            ),
            "items": {
                "type": "object",
                "properties": {
                    "round": _INT,
                    "votes": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"artist_id": _INT, "artist": {"type": "string"}, "votes": _INT},
                        },
                    },
                    "winner": {"type": ["object", "null"]},
                },
            },
        },
        "attendance_by_artist": {"type": "array", "items": {"type": "object"}},
        "city_board": {
            "type": ["object", "null"],
            "description": "kind=show: the show city's votes board page.",
        },
        "top_artists": {
            "type": "object",
            "description": "kind=tenant: metric -> up to 10 {artist_id, artist, value}.",
            "additionalProperties": {"type": "array", "items": {"type": "object"}},
        },
        "top_movers": {
            "type": "array",
            "description": "kind=tenant: largest change in plays against the previous period.",
            "items": {
                "type": "object",
                "properties": {
                    "artist_id": _INT,
                    "artist": {"type": "string"},
                    "plays": _INT,
                    "absolute": _INT,
                    "percent": {"type": ["number", "null"]},
                },
            },
        },
    },
}
