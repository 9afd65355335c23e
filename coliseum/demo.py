"""The demo world behind `make run`: a deterministic catalog (artists, shows, cities, genres), the demo
operator and tenant, and a deterministic stream of Passport events. Everything is keyed by external id or
uuid5 event id, so re-running adds nothing it added before.

Two streams: the history (90 days before the first seed's day, ids by index) and the recent hours (every
hour of the last RECENT_DAYS days up to now, ids by tenant, hour and index). History alone goes stale: a day
after the first seed the 24-hour boards would be empty. The recent stream is regenerated on every run
(`make run` seeds on every start), so a re-run tops up the hours since the last one, and a re-run in the same
hour adds nothing."""

from __future__ import annotations

import hashlib
import hmac
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction

from .models import ApiKey, ApiKeyKind, Artist, Membership, Plan, Role, Show, Tenant

SEED = 20261122
DEMO_TENANT_SLUG = "demo"
DEMO_OPERATOR_USERNAME = "admin"
DEMO_OWNER_USERNAME = "demo"
DEMO_WRITE_KEY_ID = "wk_demo"
DEMO_WEBHOOK_KEY_ID = "whk_demo"
EVENT_NAMESPACE = uuid.UUID("5b0e7c1e-3f0a-4c38-9a57-2f1f7f3c0d11")
ARTIST_COUNT = 240
SHOW_COUNT = 48
FAN_COUNT = 4000
# The recent stream: how far back a re-run tops up, and the hour-of-day shape of its traffic (UTC; mean 1.0,
# quiet before dawn, busiest in the evening, as a music platform's day is).
RECENT_DAYS = 7
_HOUR_SHAPE_RAW = [3, 2, 2, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 7, 7, 8, 9, 10, 12, 14, 15, 13, 9, 5]
HOUR_SHAPE = [v * 24 / sum(_HOUR_SHAPE_RAW) for v in _HOUR_SHAPE_RAW]

CITIES = [
    ("Lisbon", "PT"),
    ("Madrid", "ES"),
    ("Barcelona", "ES"),
    ("Mexico City", "MX"),
    ("Buenos Aires", "AR"),
    ("Berlin", "DE"),
    ("London", "GB"),
    ("Paris", "FR"),
    ("New York", "US"),
    ("Austin", "US"),
    ("Sao Paulo", "BR"),
    ("Tokyo", "JP"),
]
GENRES = [
    "rock",
    "pop",
    "hip-hop",
    "electronic",
    "jazz",
    "reggaeton",
    "metal",
    "indie",
    "folk",
    "r&b",
    "latin",
    "punk",
]
VENUES = [
    "Coliseu",
    "Arena Norte",
    "The Velvet Room",
    "Teatro Real",
    "Warehouse 9",
    "Sala Apolo",
    "Forum",
    "Blue Note",
    "Riverside Hall",
    "Estadio Sur",
    "Club Lumen",
    "Open Air Park",
]
CURRENCIES = ["USD", "EUR", "GBP", "MXN"]
_ADJECTIVES = [
    "Velvet", "Electric", "Midnight", "Golden", "Neon", "Crimson", "Silver", "Wild", "Lunar", "Hollow",
    "Burning", "Paper", "Glass", "Static", "Northern", "Savage", "Gentle", "Iron", "Cosmic", "Broken",
]  # fmt: skip
_NOUNS = [
    "Owls", "Harbors", "Tigers", "Echoes", "Satellites", "Wolves", "Roses", "Machines", "Rivers", "Ghosts",
    "Comets", "Sparrows", "Lanterns", "Kings", "Tides", "Foxes",
]  # fmt: skip
_FIRST = [
    "Luna", "Mateo", "Ines", "Kai", "Nora", "Dario", "Alma", "Theo", "Rosa", "Ezra", "Mila", "Joao", "Ada",
    "Bruno", "Lia", "Omar",
]  # fmt: skip
_LAST = [
    "Vega", "Costa", "Marlowe", "Reyes", "Okafor", "Lind", "Moreau", "Santos", "Hale", "Ibarra", "Kato",
    "Ferreira",
]  # fmt: skip
# A few well-known names so fuzzy search has something to find in the demo ("metalica"), with their genres.
_FAMOUS_GENRES = {
    "Metallica": ["metal", "rock"],
    "Rosalia": ["pop", "latin", "electronic"],
    "Daft Punk": ["electronic"],
    "Bad Bunny": ["reggaeton", "latin", "hip-hop"],
    "Radiohead": ["rock", "indie", "electronic"],
    "Bjork": ["electronic", "indie"],
    "Kendrick Lamar": ["hip-hop"],
    "Shakira": ["pop", "latin"],
}
_FAMOUS = list(_FAMOUS_GENRES)


@dataclass(frozen=True)
class DemoCredentials:
    operator_username: str
    owner_username: str
    password: str
    tenant_slug: str
    write_key: str
    webhook_key_id: str
    webhook_secret: str


def demo_password() -> str:
    return str(getattr(settings, "DEMO_PASSWORD", "") or "")


def demo_credentials() -> DemoCredentials:
    """Deterministic demo-only secrets, derived from DEMO_PASSWORD so the banner can print them."""
    password = demo_password()

    def derive(label: str) -> str:
        return hmac.new(password.encode(), f"coliseum-demo:{label}".encode(), hashlib.sha256).hexdigest()[:32]

    return DemoCredentials(
        operator_username=DEMO_OPERATOR_USERNAME,
        owner_username=DEMO_OWNER_USERNAME,
        password=password,
        tenant_slug=DEMO_TENANT_SLUG,
        write_key=f"{DEMO_WRITE_KEY_ID}.{derive('write')}",
        webhook_key_id=DEMO_WEBHOOK_KEY_ID,
        webhook_secret=f"whsec_{derive('webhook')}",
    )


@dataclass(frozen=True)
class ArtistSpec:
    external_id: str
    name: str
    genres: list[str]
    home_city: str


@dataclass(frozen=True)
class ShowSpec:
    external_id: str
    title: str
    venue: str
    city: str
    starts_at: datetime
    lineup: list[str]  # artist external ids


def anchor_time() -> datetime:
    """Today 00:00 UTC: events and shows are placed relative to it, so one day's re-runs agree exactly."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def world_specs(anchor: datetime) -> tuple[list[ArtistSpec], list[ShowSpec]]:
    rng = random.Random(SEED)
    names: list[str] = list(_FAMOUS)
    seen = set(names)
    while len(names) < ARTIST_COUNT:
        style = rng.random()
        if style < 0.45:
            name = f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        elif style < 0.8:
            name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        else:
            name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} Collective"
        if name not in seen:
            seen.add(name)
            names.append(name)
    artists = [
        ArtistSpec(
            external_id=f"demo-artist-{i:04d}",
            name=name,
            # Drawn for every artist (so the random sequence does not depend on the famous list).
            genres=_FAMOUS_GENRES.get(name, rng.sample(GENRES, rng.randint(1, 3))),
            home_city=rng.choice(CITIES)[0],
        )
        for i, name in enumerate(names)
    ]
    shows = []
    for i in range(SHOW_COUNT):
        city = CITIES[i % len(CITIES)][0]
        lineup = rng.sample(artists, rng.randint(2, 6))
        # Most shows in the past 90 days, a few upcoming.
        day_offset = rng.randint(-88, 14)
        starts_at = anchor + timedelta(days=day_offset, hours=rng.choice([19, 20, 21]))
        shows.append(
            ShowSpec(
                external_id=f"demo-show-{i:03d}",
                title=f"{lineup[0].name} Live in {city}",
                venue=rng.choice(VENUES),
                city=city,
                starts_at=starts_at,
                lineup=[a.external_id for a in lineup],
            )
        )
    return artists, shows


def catalog_seed(*, tenant: Tenant, anchor: datetime) -> tuple[int, int]:
    """Upsert the demo catalog for `tenant`. Returns (artists, shows) in the catalog afterwards."""
    artist_specs, show_specs = world_specs(anchor)
    with transaction.atomic():
        Artist.objects.bulk_create(
            [
                Artist(
                    tenant=tenant,
                    external_id=a.external_id,
                    name=a.name,
                    genres=a.genres,
                    home_city=a.home_city,
                )
                for a in artist_specs
            ],
            update_conflicts=True,
            unique_fields=["tenant", "external_id"],
            update_fields=["name", "genres", "home_city"],
        )
        existing_shows = set(
            Show.objects.filter(
                tenant=tenant, external_id__in=[s.external_id for s in show_specs]
            ).values_list("external_id", flat=True)
        )
        # Shows keep their first starts_at: re-running on another day must not move a show under its votes.
        Show.objects.bulk_create(
            [
                Show(
                    tenant=tenant,
                    external_id=s.external_id,
                    title=s.title,
                    venue=s.venue,
                    city=s.city,
                    starts_at=s.starts_at,
                )
                for s in show_specs
                if s.external_id not in existing_shows
            ],
            ignore_conflicts=True,
        )
        artist_pk = dict(
            Artist.objects.filter(tenant=tenant, external_id__startswith="demo-artist-").values_list(
                "external_id", "id"
            )
        )
        show_pk = dict(
            Show.objects.filter(tenant=tenant, external_id__startswith="demo-show-").values_list(
                "external_id", "id"
            )
        )
        through = Show.lineup.through
        through.objects.bulk_create(
            [
                through(show_id=show_pk[s.external_id], artist_id=artist_pk[a])
                for s in show_specs
                for a in s.lineup
            ],
            ignore_conflicts=True,
        )
    return Artist.objects.filter(tenant=tenant).count(), Show.objects.filter(tenant=tenant).count()


def _user_ensure(username: str, password: str, *, superuser: bool) -> User:
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(
        username=username, defaults={"email": f"{username}@demo.invalid"}
    )
    user.is_staff = user.is_staff or superuser
    user.is_superuser = user.is_superuser or superuser
    user.is_active = True
    if not user.check_password(password):
        user.set_password(password)
    user.save()
    return user


def demo_accounts_seed() -> Tenant:
    """The demo operator (staff superuser `admin`), the demo tenant on Enterprise with its owner `demo`,
    and the deterministic demo write key and webhook key. Idempotent."""
    from billing.services import tenant_plan_assign

    from .crypto import digest_secret, encrypt_secret
    from .services import api_key_create, membership_create

    creds = demo_credentials()
    operator = _user_ensure(creds.operator_username, creds.password, superuser=True)
    owner = _user_ensure(creds.owner_username, creds.password, superuser=False)
    with transaction.atomic():
        tenant, _ = Tenant.objects.get_or_create(
            slug=creds.tenant_slug, defaults={"name": "Coliseum Demo", "reporting_currency": "USD"}
        )
        # The operator is also an admin of the demo tenant, so that after signing in at /admin/ the
        # session-authenticated pages (the jumbotron) work for the demo tenant straight away.
        for user, role in ((owner, Role.OWNER), (operator, Role.ADMIN)):
            if not Membership.objects.filter(tenant=tenant, user=user).exists():
                membership_create(tenant=tenant, user=user, role=role, actor="system")
        tenant_plan_assign(tenant=tenant, plan=Plan.ENTERPRISE, actor=operator)
        for kind, key_id, secret in (
            (ApiKeyKind.WRITE, DEMO_WRITE_KEY_ID, creds.write_key),
            (ApiKeyKind.WEBHOOK, DEMO_WEBHOOK_KEY_ID, creds.webhook_secret),
        ):
            key = ApiKey.objects.filter(key_id=key_id).first()
            if key is None:
                api_key_create(
                    tenant=tenant, kind=kind, name="demo", actor="system", key_id=key_id, secret=secret
                )
            else:
                # Keep the stored secret in step with DEMO_PASSWORD (the banner prints the derived one).
                key.secret_digest = digest_secret(secret) if kind == ApiKeyKind.WRITE else ""
                key.secret_encrypted = encrypt_secret(secret) if kind == ApiKeyKind.WEBHOOK else ""
                key.revoked_at = None
                key.save(update_fields=["secret_digest", "secret_encrypted", "revoked_at"])
    return tenant


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fan_event(
    rng: random.Random, kind: str, artist: ArtistSpec, shows: list[ShowSpec]
) -> tuple[str, dict[str, Any]]:
    """The type and properties of a fan's event outside a show's night (play, spend, earn, follow, share, or
    a session), drawing from `rng` in a fixed order so a seed always gives the same world."""
    if kind == "play":
        return "player.track_played", {
            "track_id": f"{artist.external_id}-t{rng.randrange(12):02d}",
            "artist_id": artist.external_id,
            "duration_seconds": rng.randint(20, 420),
            "city": rng.choice(CITIES)[0],
        }
    if kind == "spend":
        show = rng.choice(shows)
        return "treasury.money_spent", {
            "amount_minor": rng.choice([500, 1200, 2500, 4500, 8000]),
            "currency": rng.choice(CURRENCIES),
            "reason": rng.choice(["ticket", "merch", "tip"]),
            "show_id": show.external_id,
            "artist_id": rng.choice(show.lineup),
        }
    if kind == "earn":
        return "treasury.money_earned", {
            "amount_minor": rng.choice([1000, 5000, 20000, 75000]),
            "currency": rng.choice(CURRENCIES),
            "reason": rng.choice(["ticket_sales", "streaming", "tips"]),
            "artist_id": artist.external_id,
        }
    if kind == "follow":
        return "social.artist_followed", {"artist_id": artist.external_id}
    if kind == "share":
        return "social.track_shared", {
            "track_id": f"{artist.external_id}-t{rng.randrange(12):02d}",
            "artist_id": artist.external_id,
            "channel": rng.choice(["whatsapp", "instagram", "x", "tiktok"]),
        }
    return "session.started", {"platform": rng.choice(["ios", "android", "web"])}


def demo_events(*, count: int, anchor: datetime) -> Iterator[dict[str, Any]]:
    """`count` Passport events over the 90 days before `anchor`. Event i always has the same id and content
    for the same anchor, so a re-run the same day is a no-op (and on a later day, still adds nothing: ids are
    what deduplicate)."""
    artists, shows = world_specs(anchor)
    rng = random.Random(SEED + 1)
    past_shows = [s for s in shows if s.starts_at < anchor]
    span_seconds = 90 * 86_400
    # A few popular artists get most of the listening (a long tail, as in real catalogs).
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(artists))]
    kinds = [
        ("play", 0.62),
        ("vote", 0.10),
        ("attend", 0.07),
        ("spend", 0.06),
        ("earn", 0.03),
        ("follow", 0.05),
        ("share", 0.05),
        ("session", 0.02),
    ]
    kind_names = [k for k, _ in kinds]
    kind_weights = [w for _, w in kinds]
    for i in range(count):
        kind = rng.choices(kind_names, kind_weights)[0]
        fan = f"demo-fan-{rng.randrange(FAN_COUNT):05d}"
        artist = rng.choices(artists, weights)[0]
        occurred = anchor - timedelta(seconds=rng.randrange(1, span_seconds))
        event: dict[str, Any] = {
            "event_id": str(uuid.uuid5(EVENT_NAMESPACE, f"demo-event:{i}")),
            "user_id": fan,
            "session_id": f"{fan}-s{rng.randrange(40)}",
            "device_id": f"{fan}-d{rng.randrange(2)}",
        }
        props: dict[str, Any]
        if kind in ("vote", "attend") and past_shows:
            show = rng.choice(past_shows)
            occurred = show.starts_at + timedelta(seconds=rng.randrange(0, 3 * 3600))
            if kind == "vote":
                event["type"] = "coliseum.vote_cast"
                props = {
                    "artist_id": rng.choice(show.lineup),
                    "show_id": show.external_id,
                    "round": rng.randint(1, 3),
                    "weight": rng.choices([1, 2, 5], [0.85, 0.12, 0.03])[0],
                    "channel": rng.choice(["app", "app", "sms", "venue"]),
                }
            else:
                event["type"] = "concierto.event_attended"
                props = {"show_id": show.external_id, "city": show.city}
                if rng.random() < 0.5:
                    props["artist_id"] = rng.choice(show.lineup)
        else:
            event["type"], props = _fan_event(rng, "play" if not past_shows else kind, artist, shows)
        event["occurred_at"] = _rfc3339(occurred)
        event["properties"] = props
        yield event


def _hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def recent_hours(*, now: datetime, days: int = RECENT_DAYS) -> list[datetime]:
    """The hours the recent stream covers: the last `days` days, up to and including now's hour."""
    last = _hour_floor(now)
    return [last - timedelta(hours=h) for h in range(days * 24 - 1, -1, -1)]


def recent_events(
    *, tenant_slug: str, now: datetime, per_hour: float, days: int = RECENT_DAYS
) -> Iterator[dict[str, Any]]:
    """Passport events for every hour of the last `days` days up to `now`, about `per_hour` an hour on
    average (shaped by HOUR_SHAPE). Event n of hour H has the id uuid5(tenant, H, n) and H's own random
    sequence, so the same hour always yields the same events: a re-run in the same hour adds nothing, one
    later tops up the hours since. The current hour's events fall between its start and `now` (never in the
    future); their ids are already taken when a later run regenerates them, so they stay as first sent.

    Plays, money, follows, shares and sessions only: votes and attendance belong to a show's night, which
    the history places."""
    artists, shows = world_specs(anchor_time())
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(artists))]
    kinds = [("play", 0.70), ("spend", 0.07), ("earn", 0.03), ("follow", 0.08), ("share", 0.08)]
    kinds.append(("session", 1.0 - sum(w for _, w in kinds)))
    kind_names = [k for k, _ in kinds]
    kind_weights = [w for _, w in kinds]
    now = now.astimezone(UTC)
    for hour in recent_hours(now=now, days=days):
        stamp = hour.strftime("%Y%m%dT%H")
        rng = random.Random(f"{SEED}:{tenant_slug}:{stamp}")
        count = int(per_hour * HOUR_SHAPE[hour.hour] + rng.random())
        span = max(1, min(3600, int((now - hour).total_seconds())))
        for n in range(count):
            kind = rng.choices(kind_names, kind_weights)[0]
            fan = f"demo-fan-{rng.randrange(FAN_COUNT):05d}"
            artist = rng.choices(artists, weights)[0]
            occurred = hour + timedelta(seconds=rng.randrange(span))
            event: dict[str, Any] = {
                "event_id": str(uuid.uuid5(EVENT_NAMESPACE, f"demo-recent:{tenant_slug}:{stamp}:{n}")),
                "user_id": fan,
                "session_id": f"{fan}-s{rng.randrange(40)}",
                "device_id": f"{fan}-d{rng.randrange(2)}",
                "occurred_at": _rfc3339(occurred),
            }
            event["type"], event["properties"] = _fan_event(rng, kind, artist, shows)
            yield event
