"""The Passport event catalog: every known event type, its strict properties schema and the metrics it feeds.

Schemas are msgspec Structs built from one declarative table (fast to validate, and
`msgspec.json.schema` gives the JSON Schema that `GET /api/v1/events/catalog` serves). Unknown properties
are refused (`forbid_unknown_fields`): a typo must not silently drop a number. Types namespaced `custom.*`
are accepted with free-form properties and feed no metric."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

METRICS = (
    "plays",
    "listen_seconds",
    "unique_listeners",
    "votes",
    "attendance",
    "money_spent",
    "money_earned",
    "follows",
    "shares",
)
MONEY_METRICS = ("money_spent", "money_earned")
# Each metric in words, as people read it on a page, a screen or a report ("Plays, last 24 hours").
METRIC_LABELS: dict[str, str] = {
    "plays": "Plays",
    "listen_seconds": "Listen time",
    "unique_listeners": "Unique listeners",
    "votes": "Votes",
    "attendance": "Attendance",
    "money_spent": "Money spent",
    "money_earned": "Money earned",
    "follows": "Follows",
    "shares": "Shares",
}

ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Seconds = Annotated[int, msgspec.Meta(ge=0, le=86_400)]
AmountMinor = Annotated[int, msgspec.Meta(ge=0, le=10**12)]
Currency = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
Round = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Weight = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Count = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
Text = Annotated[str, msgspec.Meta(max_length=500)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Channel = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
TagList = Annotated[list[Name], msgspec.Meta(max_length=50)]

# Optional fields commonly carried by many types.
_OPT_CITY = ("city", Name | None, None)
_OPT_GENRE = ("genre", Name | None, None)
_OPT_ARTIST = ("artist_id", ExternalId | None, None)
_OPT_SHOW = ("show_id", ExternalId | None, None)

FieldSpec = tuple[str, Any] | tuple[str, Any, Any]


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    schema: type[msgspec.Struct]
    metrics: tuple[str, ...]
    example: dict[str, Any] = field(default_factory=dict)

    @property
    def domain(self) -> str:
        return self.name.split(".", 1)[0]


def _struct(name: str, fields: list[FieldSpec]) -> type[msgspec.Struct]:
    cls_name = "".join(part.title() for part in re.split(r"[._]", name)) + "Properties"
    return msgspec.defstruct(cls_name, fields, forbid_unknown_fields=True, kw_only=True)


_TABLE: list[tuple[str, str, list[FieldSpec], tuple[str, ...], dict[str, Any]]] = [
    # --- player ---
    (
        "player.track_played",
        "A fan played a track (counts a play, its listening time and the listener).",
        [
            ("track_id", ExternalId),
            ("artist_id", ExternalId),
            ("duration_seconds", Seconds),
            _OPT_CITY,
            _OPT_GENRE,
            _OPT_SHOW,
        ],
        ("plays", "listen_seconds", "unique_listeners"),
        {"track_id": "t1", "artist_id": "a1", "duration_seconds": 180},
    ),
    (
        "player.track_completed",
        "A track was played to its end.",
        [("track_id", ExternalId), ("artist_id", ExternalId), ("duration_seconds", Seconds)],
        (),
        {"track_id": "t1", "artist_id": "a1", "duration_seconds": 200},
    ),
    (
        "player.track_skipped",
        "A fan skipped a track.",
        [("track_id", ExternalId), ("artist_id", ExternalId), ("position_seconds", Seconds)],
        (),
        {"track_id": "t1", "artist_id": "a1", "position_seconds": 12},
    ),
    (
        "player.track_liked",
        "A fan liked a track.",
        [("track_id", ExternalId), ("artist_id", ExternalId)],
        (),
        {"track_id": "t1", "artist_id": "a1"},
    ),
    (
        "player.track_unliked",
        "A fan removed a like.",
        [("track_id", ExternalId), ("artist_id", ExternalId)],
        (),
        {"track_id": "t1", "artist_id": "a1"},
    ),
    (
        "player.track_downloaded",
        "A track was saved for offline listening.",
        [("track_id", ExternalId), ("artist_id", ExternalId)],
        (),
        {"track_id": "t1", "artist_id": "a1"},
    ),
    (
        "player.album_played",
        "A fan started an album.",
        [("album_id", ExternalId), ("artist_id", ExternalId)],
        (),
        {"album_id": "al1", "artist_id": "a1"},
    ),
    (
        "player.playlist_created",
        "A fan created a playlist.",
        [("playlist_id", ExternalId), ("name", Text, "")],
        (),
        {"playlist_id": "p1", "name": "Road trip"},
    ),
    (
        "player.playlist_track_added",
        "A track was added to a playlist.",
        [("playlist_id", ExternalId), ("track_id", ExternalId), _OPT_ARTIST],
        (),
        {"playlist_id": "p1", "track_id": "t1"},
    ),
    (
        "player.radio_started",
        "A fan started a radio station.",
        [("station_id", ExternalId), _OPT_ARTIST],
        (),
        {"station_id": "r1"},
    ),
    (
        "player.lyrics_viewed",
        "A fan opened a track's lyrics.",
        [("track_id", ExternalId), _OPT_ARTIST],
        (),
        {"track_id": "t1"},
    ),
    (
        "player.video_played",
        "A fan played a music video.",
        [("video_id", ExternalId), ("artist_id", ExternalId), ("duration_seconds", Seconds)],
        (),
        {"video_id": "v1", "artist_id": "a1", "duration_seconds": 240},
    ),
    # --- concierto ---
    (
        "concierto.event_attended",
        "A fan attended a show: credited to artist_id when given, else to every artist on the show's lineup.",
        [("show_id", ExternalId), ("city", Name), _OPT_ARTIST],
        ("attendance",),
        {"show_id": "s1", "city": "Lisbon"},
    ),
    (
        "concierto.ticket_viewed",
        "A fan looked at a show's tickets.",
        [("show_id", ExternalId)],
        (),
        {"show_id": "s1"},
    ),
    (
        "concierto.ticket_purchased",
        "A fan bought tickets (the money itself arrives as treasury.money_spent).",
        [("show_id", ExternalId), ("ticket_id", ExternalId), ("quantity", Count, 1)],
        (),
        {"show_id": "s1", "ticket_id": "tk1", "quantity": 2},
    ),
    (
        "concierto.checked_in",
        "A ticket was scanned at the door.",
        [("show_id", ExternalId), ("ticket_id", ExternalId)],
        (),
        {"show_id": "s1", "ticket_id": "tk1"},
    ),
    (
        "concierto.stream_joined",
        "A fan joined a show's live stream.",
        [("show_id", ExternalId), _OPT_ARTIST],
        (),
        {"show_id": "s1"},
    ),
    (
        "concierto.stream_left",
        "A fan left a show's live stream.",
        [("show_id", ExternalId), ("watch_seconds", Seconds)],
        (),
        {"show_id": "s1", "watch_seconds": 600},
    ),
    (
        "concierto.setlist_viewed",
        "A fan opened a show's setlist.",
        [("show_id", ExternalId)],
        (),
        {"show_id": "s1"},
    ),
    (
        "concierto.merch_viewed",
        "A fan looked at an artist's merchandise.",
        [("artist_id", ExternalId), _OPT_SHOW],
        (),
        {"artist_id": "a1"},
    ),
    # --- treasury ---
    (
        "treasury.money_spent",
        "A fan spent money (minor units, per currency).",
        [
            ("amount_minor", AmountMinor),
            ("currency", Currency),
            ("reason", Name),
            _OPT_SHOW,
            _OPT_ARTIST,
            ("stripe_payment_intent_id", ExternalId | None, None),
            _OPT_CITY,
        ],
        ("money_spent",),
        {"amount_minor": 1500, "currency": "EUR", "reason": "ticket", "artist_id": "a1"},
    ),
    (
        "treasury.money_earned",
        "An artist earned money (minor units, per currency).",
        [
            ("amount_minor", AmountMinor),
            ("currency", Currency),
            ("reason", Name),
            ("artist_id", ExternalId),
            _OPT_SHOW,
            ("stripe_payment_intent_id", ExternalId | None, None),
            _OPT_CITY,
        ],
        ("money_earned",),
        {"amount_minor": 1200, "currency": "EUR", "reason": "ticket_share", "artist_id": "a1"},
    ),
    (
        "treasury.tip_sent",
        "A fan tipped an artist (the money arrives as treasury.money_spent / money_earned).",
        [("artist_id", ExternalId), ("amount_minor", AmountMinor), ("currency", Currency), _OPT_SHOW],
        (),
        {"artist_id": "a1", "amount_minor": 300, "currency": "USD"},
    ),
    (
        "treasury.refund_issued",
        "A payment was refunded.",
        [
            ("amount_minor", AmountMinor),
            ("currency", Currency),
            ("reason", Name),
            ("stripe_payment_intent_id", ExternalId | None, None),
        ],
        (),
        {"amount_minor": 1500, "currency": "EUR", "reason": "show_cancelled"},
    ),
    (
        "treasury.wallet_topped_up",
        "A fan added funds to their wallet.",
        [("amount_minor", AmountMinor), ("currency", Currency)],
        (),
        {"amount_minor": 5000, "currency": "USD"},
    ),
    (
        "treasury.payout_requested",
        "An artist asked for a payout.",
        [("artist_id", ExternalId), ("amount_minor", AmountMinor), ("currency", Currency)],
        (),
        {"artist_id": "a1", "amount_minor": 100000, "currency": "USD"},
    ),
    (
        "treasury.subscription_started",
        "A fan started a paid subscription.",
        [("plan", Name), ("amount_minor", AmountMinor), ("currency", Currency)],
        (),
        {"plan": "premium", "amount_minor": 999, "currency": "USD"},
    ),
    (
        "treasury.subscription_cancelled",
        "A fan cancelled a subscription.",
        [("plan", Name), ("reason", Text, "")],
        (),
        {"plan": "premium"},
    ),
    # --- coliseum (live battles) ---
    (
        "coliseum.vote_cast",
        "A fan voted in a live battle: counted once per show and round (the earliest vote wins).",
        [
            ("artist_id", ExternalId),
            ("show_id", ExternalId),
            ("round", Round),
            ("weight", Weight, 1),
            ("channel", Channel, "app"),
            _OPT_CITY,
        ],
        ("votes",),
        {"artist_id": "a1", "show_id": "s1", "round": 1, "weight": 1, "channel": "app"},
    ),
    (
        "coliseum.battle_started",
        "A battle began at a show.",
        [("show_id", ExternalId), ("artist_ids", Annotated[list[ExternalId], msgspec.Meta(max_length=64)])],
        (),
        {"show_id": "s1", "artist_ids": ["a1", "a2"]},
    ),
    (
        "coliseum.battle_ended",
        "A battle ended.",
        [("show_id", ExternalId), ("winner_artist_id", ExternalId | None, None)],
        (),
        {"show_id": "s1", "winner_artist_id": "a1"},
    ),
    (
        "coliseum.round_started",
        "A voting round opened.",
        [("show_id", ExternalId), ("round", Round)],
        (),
        {"show_id": "s1", "round": 1},
    ),
    (
        "coliseum.round_ended",
        "A voting round closed.",
        [("show_id", ExternalId), ("round", Round)],
        (),
        {"show_id": "s1", "round": 1},
    ),
    (
        "coliseum.cheer_sent",
        "A fan cheered for an artist on stage.",
        [("artist_id", ExternalId), _OPT_SHOW, ("intensity", Annotated[int, msgspec.Meta(ge=1, le=10)], 1)],
        (),
        {"artist_id": "a1", "intensity": 5},
    ),
    (
        "coliseum.prediction_made",
        "A fan predicted a round's winner.",
        [("show_id", ExternalId), ("round", Round), ("artist_id", ExternalId)],
        (),
        {"show_id": "s1", "round": 1, "artist_id": "a1"},
    ),
    # --- social ---
    (
        "social.artist_followed",
        "A fan followed an artist.",
        [("artist_id", ExternalId), _OPT_CITY],
        ("follows",),
        {"artist_id": "a1"},
    ),
    (
        "social.artist_unfollowed",
        "A fan unfollowed an artist (follows counts new follows; unfollows are kept for churn analysis).",
        [("artist_id", ExternalId)],
        (),
        {"artist_id": "a1"},
    ),
    (
        "social.track_shared",
        "A fan shared a track.",
        [("track_id", ExternalId), ("artist_id", ExternalId), ("channel", Channel), _OPT_CITY],
        ("shares",),
        {"track_id": "t1", "artist_id": "a1", "channel": "whatsapp"},
    ),
    (
        "social.show_shared",
        "A fan shared a show.",
        [("show_id", ExternalId), ("channel", Channel)],
        (),
        {"show_id": "s1", "channel": "instagram"},
    ),
    (
        "social.comment_posted",
        "A fan commented (text is never stored).",
        [("target_type", Name), ("target_id", ExternalId)],
        (),
        {"target_type": "track", "target_id": "t1"},
    ),
    (
        "social.reaction_added",
        "A fan reacted to something.",
        [("target_type", Name), ("target_id", ExternalId), ("reaction", Name)],
        (),
        {"target_type": "show", "target_id": "s1", "reaction": "fire"},
    ),
    (
        "social.friend_invited",
        "A fan invited a friend.",
        [("channel", Channel)],
        (),
        {"channel": "sms"},
    ),
    (
        "social.artist_profile_viewed",
        "A fan opened an artist's profile.",
        [("artist_id", ExternalId)],
        (),
        {"artist_id": "a1"},
    ),
    # --- session ---
    (
        "session.started",
        "An app session started.",
        [("platform", Name), ("app_version", Name | None, None)],
        (),
        {"platform": "ios", "app_version": "5.2.0"},
    ),
    (
        "session.ended",
        "An app session ended.",
        [("duration_seconds", Seconds)],
        (),
        {"duration_seconds": 900},
    ),
    (
        "session.app_opened",
        "The app came to the foreground.",
        [("platform", Name)],
        (),
        {"platform": "android"},
    ),
    # --- profile ---
    (
        "profile.created",
        "A fan created a Passport profile.",
        [
            ("signup_method", Name),
            ("country", Annotated[str, msgspec.Meta(pattern="^[A-Z]{2}$")] | None, None),
        ],
        (),
        {"signup_method": "email", "country": "PT"},
    ),
    (
        "profile.updated",
        "A fan edited their profile (names of changed fields only).",
        [("fields", TagList)],
        (),
        {"fields": ["display_name"]},
    ),
    (
        "profile.preferences_changed",
        "A fan changed their favourite genres.",
        [("genres", TagList)],
        (),
        {"genres": ["rock", "fado"]},
    ),
    (
        "profile.deletion_requested",
        "A fan asked for their data to be erased.",
        [("reason", Text, "")],
        (),
        {"reason": ""},
    ),
]

CATALOG: dict[str, EventType] = {
    name: EventType(name=name, description=desc, schema=_struct(name, fields), metrics=metrics, example=ex)
    for name, desc, fields, metrics, ex in _TABLE
}

CUSTOM_PREFIX = "custom."
TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9_.]+$")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake_case_keys(properties: dict[str, Any]) -> dict[str, Any]:
    """Segment SDKs often send camelCase; the catalog speaks snake_case."""
    return {_CAMEL.sub("_", k).lower() if isinstance(k, str) else k: v for k, v in properties.items()}


def properties_validate(event_type: str, properties: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """Validate an event's properties against its type. Returns (clean properties, errors)."""
    if not isinstance(properties, dict):
        return None, ["properties: expected an object"]
    spec = CATALOG.get(event_type)
    if spec is None:
        if event_type.startswith(CUSTOM_PREFIX) and TYPE_PATTERN.match(event_type):
            return properties, []
        return None, [f"type: unknown event type {event_type!r} (custom types must start with 'custom.')"]
    try:
        parsed = msgspec.convert(properties, spec.schema, strict=True)
    except msgspec.ValidationError as exc:
        return None, [f"properties: {exc}"]
    return msgspec.to_builtins(parsed), []


def catalog_describe() -> list[dict[str, Any]]:
    """Every type with its JSON Schema, for GET /api/v1/events/catalog."""
    out = []
    for spec in CATALOG.values():
        _, components = msgspec.json.schema_components([spec.schema], ref_template="#/$defs/{name}")
        body = components[spec.schema.__name__]
        out.append(
            {
                "type": spec.name,
                "domain": spec.domain,
                "description": spec.description,
                "metrics": list(spec.metrics),
                "schema": body,
                "example": spec.example,
            }
        )
    return out
