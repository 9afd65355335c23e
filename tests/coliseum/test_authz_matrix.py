"""The authorization matrix: every endpoint x role x the other tenant's ids answers 401/403/404, never data.

Every URL pattern of the project is walked (get_resolver), so a route added without an entry below fails
`test_every_endpoint_is_classified`. Each route is public (own auth or none), staff-only, for any signed-in
user (about themselves), or tenant-scoped with a least role per method. For the tenant-scoped ones:

- own: each role calls tenant A with A's ids: anonymous 401, below the least role 403 `role_required`,
  a member of B only or a staff user without membership 404 `tenant_not_found`, at or above it the status
  the endpoint answers when it works (writes need not succeed: a role below the minimum never gets 2xx).
- foreign ids: members of A (at or above the least role) send B's ids in the path, query or body: 403/404
  (or 400 naming the id), except free-text filters (audit), which find nothing of B's.
- foreign tenant: a member of A names B (X-Tenant) with B's ids: 404 `tenant_not_found`.

In every case the response text carries none of the other tenant's names, external ids, key ids, request
ids, file contents, and no JSON `id`-like field holds one of its primary keys. Both tenants are on the
Enterprise plan so that a refusal is about authorization, never a plan gate."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
import stripe
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import transaction
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from coliseum.models import ROLE_RANK, ApiKey, ApiKeyKind, Artist, Role, Show, Tenant
from coliseum.privacy.models import PrivacyRequest, RequestKind
from coliseum.services import api_key_create
from reports.models import Frequency, Report, ReportSchedule, ReportStatus, Upload
from reports.storage import private_storage
from tests.factories import ArtistFactory, MembershipFactory, ShowFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

# --- classification -------------------------------------------------------------------------------

# No login, or their own credential (signature, write key, share token, metrics token, Stripe signature).
PUBLIC = {
    "schema",
    "api-docs",
    "api-redoc",
    "landing",
    "favicon",
    "healthz",
    "readyz",
    "auth-signup",
    "auth-token",
    "auth-token-refresh",
    "passport-events",
    "segment-track",
    "segment-identify",
    "segment-page",
    "segment-screen",
    "segment-group",
    "segment-alias",
    "segment-batch",
    "segment-import",
    "jumbotron",
    "jumbotron-standings",
    "jumbotron-ticket",  # the page's own credentials: a share link, or a member's session (test_jumbotron.py)
    "jumbotron-sign-in",
    "report-json-schema",
    "report-share",
    "stripe-webhook",
    "djstripe_webhook_by_uuid",
    "metrics",
    "privacy-export-file",
    "events-catalog",  # the static catalog of event types
}
# Any signed-in user, about themselves or static data: no tenant in play.
SIGNED_IN = {
    "auth-me": {"GET"},
    "auth-mfa-totp": {"GET", "POST", "DELETE"},
    "auth-mfa-totp-confirm": {"POST"},
}
# Staff only (IsAdminUser). The Django admin (every route under admin/) is staff-only by construction.
STAFF = {
    "admin-audit-logs": {"GET"},
    "admin-audit-logs-csv": {"GET"},
    "ops-health": {"GET"},
    "ops-dashboard": {"GET"},
}
ADMIN_SITE_PREFIX = "admin/"

V, AN, AD, OW = Role.VIEWER, Role.ANALYST, Role.ADMIN, Role.OWNER
TENANT_ROLES = [V, AN, AD, OW]


@dataclass
class Side:
    """One tenant's objects, and the strings that must never show up in the other tenant's answers."""

    tenant: Tenant
    members: dict[str, User]
    artist: Artist
    show: Show
    report: Report
    upload: Upload
    schedule: ReportSchedule
    api_key: ApiKey
    export: PrivacyRequest
    erasure: PrivacyRequest
    markers: list[str]
    ids: set[int]  # primary keys (only meaningful for B: see _side)


@dataclass
class World:
    a: Side
    b: Side
    outsider: User  # a member of B only
    staff: User  # an operator with no membership


@dataclass
class Call:
    kwargs: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    multipart: bool = False


def _period() -> dict[str, str]:
    today = date.today()
    return {"from": (today - timedelta(days=6)).isoformat(), "to": today.isoformat()}


def _png() -> ContentFile[bytes]:
    # The smallest well-formed PNG: signature, IHDR, IDAT, IEND (the type is sniffed from the bytes).
    data = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
    )
    upload = ContentFile(data, name="logo.png")
    return upload


Build = Callable[[Side], Call]


@dataclass(frozen=True)
class Op:
    """One method of a tenant-scoped route: the least role, how to call it with a side's ids, the status it
    answers when allowed, and the other-tenant variants (each its own case)."""

    min_role: str
    build: Build
    ok: int = 200
    # (how to call with the other side's ids, the statuses allowed); by default `build` itself, refused.
    foreign: tuple[tuple[Build, frozenset[int]], ...] = ()


REFUSED = frozenset({400, 403, 404})  # 400 only when it names the id as unknown (checked below)
FINDS_NOTHING = frozenset({200})  # free-text filters: answered, with nothing of the other tenant's


def _none(s: Side) -> Call:
    return Call()


TENANT: dict[str, dict[str, Op]] = {
    "api-keys": {
        "GET": Op(AD, _none),
        "POST": Op(AD, lambda s: Call(body={"kind": "write", "name": "matrix"}), ok=201),
    },
    "api-key-revoke": {"DELETE": Op(AD, lambda s: Call(kwargs={"key_id": s.api_key.key_id}), ok=204)},
    "artists": {
        "GET": Op(
            V,
            lambda s: Call(query={"search": s.artist.name}),
            foreign=((lambda s: Call(query={"search": s.artist.name}), FINDS_NOTHING),),
        )
    },
    "shows": {
        "GET": Op(
            V,
            lambda s: Call(query={"artist_id": s.artist.pk}),
            foreign=(
                (lambda s: Call(query={"artist_id": s.artist.pk}), REFUSED),
                (lambda s: Call(query={"search": s.show.title}), FINDS_NOTHING),
            ),
        )
    },
    "kpis": {"GET": Op(V, lambda s: Call(query={"artist_id": s.artist.external_id}))},
    "kpis-summary": {"GET": Op(V, _none)},
    "leaderboards": {
        "GET": Op(
            V,
            lambda s: Call(query={"artist_id": s.artist.pk}),
            foreign=(
                (lambda s: Call(query={"artist_id": s.artist.pk}), REFUSED),
                (lambda s: Call(query={"show_id": s.show.pk}), REFUSED),
            ),
        )
    },
    "show-standings": {"GET": Op(V, lambda s: Call(kwargs={"show_id": s.show.pk}))},
    "realtime": {"GET": Op(V, _none)},
    "jumbotron-share": {"POST": Op(AN, lambda s: Call(body={"show_id": s.show.pk}), ok=201)},
    "reports": {
        "GET": Op(V, _none),
        "POST": Op(
            AN,
            lambda s: Call(body={"kind": "artist", "format": "json", "artist_id": s.artist.pk, **_period()}),
            ok=202,
            foreign=(
                (
                    lambda s: Call(
                        body={"kind": "artist", "format": "json", "artist_id": s.artist.pk, **_period()}
                    ),
                    REFUSED,
                ),
                (
                    lambda s: Call(
                        body={"kind": "show", "format": "json", "show_id": s.show.pk, **_period()}
                    ),
                    REFUSED,
                ),
                (
                    lambda s: Call(
                        body={
                            "kind": "tenant",
                            "format": "pdf",
                            "branding": {"logo_upload_id": s.upload.pk},
                            **_period(),
                        }
                    ),
                    REFUSED,
                ),
            ),
        ),
    },
    "report-detail": {"GET": Op(V, lambda s: Call(kwargs={"report_id": s.report.pk}))},
    "report-download": {"GET": Op(V, lambda s: Call(kwargs={"report_id": s.report.pk}))},
    "report-schedules": {
        "GET": Op(V, _none),
        "POST": Op(
            AN,
            lambda s: Call(
                body={
                    "kind": "artist",
                    "format": "json",
                    "frequency": "weekly",
                    "artist_id": s.artist.pk,
                    "recipient_user_ids": [s.members[OW].pk],
                }
            ),
            ok=201,
            foreign=(
                (
                    lambda s: Call(
                        body={
                            "kind": "tenant",
                            "format": "json",
                            "frequency": "weekly",
                            "recipient_user_ids": [s.members[OW].pk],
                        }
                    ),
                    REFUSED,
                ),
                (
                    lambda s: Call(
                        body={
                            "kind": "artist",
                            "format": "json",
                            "frequency": "monthly",
                            "artist_id": s.artist.pk,
                            "recipient_user_ids": [s.members[OW].pk],
                        }
                    ),
                    REFUSED,
                ),
            ),
        ),
    },
    "report-schedule-detail": {
        "DELETE": Op(AN, lambda s: Call(kwargs={"schedule_id": s.schedule.pk}), ok=204)
    },
    "uploads": {"POST": Op(AN, lambda s: Call(body={"file": _png()}, multipart=True), ok=201)},
    "upload-detail": {"GET": Op(V, lambda s: Call(kwargs={"upload_id": s.upload.pk}))},
    # Answers 501 not_implemented once past authorization and the upload lookup.
    "upload-ocr": {"POST": Op(AN, lambda s: Call(kwargs={"upload_id": s.upload.pk}), ok=501)},
    "subscription-detail": {"GET": Op(AD, _none)},
    # An empty body stops at validation: no Stripe call, but only after the role check.
    "subscription-upgrade": {"POST": Op(AD, lambda s: Call(body={}), ok=400)},
    # Goes to Stripe, which the tests make unreachable: 502 (Stripe unavailable), past authorization.
    "subscription-portal": {"POST": Op(AD, _none, ok=502)},
    "audit-logs": {
        "GET": Op(
            AD,
            _none,
            foreign=(
                (lambda s: Call(query={"target_id": str(s.api_key.pk)}), FINDS_NOTHING),
                (lambda s: Call(query={"actor": s.members[OW].username}), FINDS_NOTHING),
            ),
        )
    },
    "audit-logs-csv": {
        "GET": Op(
            AD,
            _none,
            foreign=((lambda s: Call(query={"target_id": str(s.api_key.pk)}), FINDS_NOTHING),),
        )
    },
    # A subject id is free text searched in the caller's tenant only (another tenant's fan finds nothing).
    "privacy-exports": {"POST": Op(AD, lambda s: Call(body={"user_id": "fan-matrix"}), ok=202)},
    "privacy-export-detail": {"GET": Op(AD, lambda s: Call(kwargs={"request_id": s.export.pk}))},
    "privacy-erasures": {"POST": Op(AD, lambda s: Call(body={"user_id": "fan-matrix"}), ok=202)},
    "privacy-erasure-detail": {"GET": Op(AD, lambda s: Call(kwargs={"request_id": s.erasure.pk}))},
    "funnels": {
        "GET": Op(
            V,
            lambda s: Call(
                query={
                    "steps": "player.track_played,social.artist_followed",
                    "artist_id": s.artist.external_id,
                }
            ),
        )
    },
    "attribution": {"GET": Op(V, lambda s: Call(query={"artist_id": s.artist.external_id}))},
}


# --- the walk -------------------------------------------------------------------------------------


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def _routes() -> dict[str, tuple[str, URLPattern]]:
    """name -> (route, pattern) for every route outside the Django admin."""
    found = {}
    for route, pattern in _walk(get_resolver().url_patterns):
        if route.startswith(ADMIN_SITE_PREFIX):
            continue
        found[pattern.name or route] = (route, pattern)
    return found


def _methods(pattern: URLPattern) -> set[str]:
    view = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
    if view is None:
        return {"GET"}
    return {m.upper() for m in view.http_method_names if m not in ("options", "head") and hasattr(view, m)}


def _path(route: str, kwargs: dict[str, Any]) -> str:
    path = "/" + route
    for name, value in kwargs.items():
        for converter in ("int", "str", "uuid", ""):
            path = path.replace(f"<{converter}:{name}>" if converter else f"<{name}>", str(value))
    assert "<" not in path, path
    return path


def test_every_endpoint_is_classified() -> None:
    routes = _routes()
    classified = PUBLIC | set(SIGNED_IN) | set(STAFF) | set(TENANT)
    unclassified = sorted(
        f"{name} ({route})" for name, (route, _) in routes.items() if name not in classified
    )
    assert not unclassified, f"unclassified endpoint(s), add them to the matrix: {unclassified}"
    # Entries for routes that no longer exist, or whose methods changed, are stale.
    assert not sorted(classified - set(routes)), "matrix entries without a route"
    for name, ops in {**{n: set(o) for n, o in TENANT.items()}, **STAFF, **SIGNED_IN}.items():
        assert _methods(routes[name][1]) == set(ops), f"{name}: methods changed; classify each"


# --- the world ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Private files in a directory of the module's own, no S3, no virus scanner, and Stripe unreachable."""

    class Unreachable(stripe.HTTPClient):  # type: ignore[misc]
        name = "unreachable"

        def request(self, *args: Any, **kwargs: Any) -> Any:
            raise stripe.APIConnectionError("Stripe is unreachable in the authorization matrix")

    previous = stripe.default_http_client
    stripe.default_http_client = Unreachable()
    root = tmp_path_factory.mktemp("authz") / "private"
    try:
        with override_settings(PRIVATE_STORAGE_ROOT=root, REPORTS_S3_BUCKET="", CLAMD_SOCKET=""):
            yield
    finally:
        stripe.default_http_client = previous


def _user_pk(pk: dict[str, int]) -> dict[str, int]:
    return {"user__id": pk["pk"]} if pk else {}


def _side(label: str, secret: str, pk_base: int | None) -> Side:
    """A tenant with one of everything. With `pk_base`, its rows get primary keys from there on, far from
    the sequences' values, so that any of them appearing anywhere in the other side's JSON is a leak."""
    numbers = iter(range(pk_base or 0, (pk_base or 0) + 100))

    def pk() -> dict[str, int]:
        return {"pk": next(numbers)} if pk_base else {}

    tenant = TenantFactory.create(
        slug=f"{label}-{secret}-tenant", name=f"{secret} Tenant", plan="enterprise", **pk()
    )
    members: dict[str, User] = {
        str(role): MembershipFactory.create(
            tenant=tenant, role=role, user__username=f"{secret.lower()}_{role}", **_user_pk(pk())
        ).user
        for role in TENANT_ROLES
    }
    owner = members[OW]
    artist = ArtistFactory.create(
        tenant=tenant, external_id=f"{secret}-artist", name=f"{secret} Artist", **pk()
    )
    show = ShowFactory.create(tenant=tenant, external_id=f"{secret}-show", title=f"{secret} Show", **pk())
    show.lineup.add(artist)
    file_name = private_storage().save(
        f"reports/{tenant.pk}/{secret}.json", ContentFile(f'{{"secret": "{secret} file"}}'.encode())
    )
    report = Report.objects.create(
        tenant=tenant,
        requested_by=owner,
        kind="artist",
        format="json",
        params={"artist_id": artist.pk, "title": f"{secret} Report", **_period()},
        status=ReportStatus.READY,
        file_name=file_name,
        file_size=40,
        finished_at=timezone.now(),
        **pk(),
    )
    upload = Upload.objects.create(
        tenant=tenant,
        uploaded_by=owner,
        content_type="image/png",
        size=67,
        sha256=uuid.uuid4().hex * 2,
        file_name=private_storage().save(f"uploads/{tenant.pk}/{secret}.png", _png()),
        scan_status="unscanned",
        **pk(),
    )
    schedule = ReportSchedule.objects.create(
        tenant=tenant,
        created_by=owner,
        kind="artist",
        format="json",
        frequency=Frequency.WEEKLY,
        params={"artist_id": artist.pk, "title": f"{secret} Schedule"},
        next_run_at=timezone.now() + timedelta(days=3),
        **pk(),
    )
    schedule.recipients.set(tenant.memberships.filter(user=owner))
    issued = api_key_create(tenant=tenant, kind=ApiKeyKind.WEBHOOK, name=f"{secret} key", actor=owner)
    export = PrivacyRequest.objects.create(
        tenant=tenant, kind=RequestKind.EXPORT, subject_digest="0" * 64, requested_by=owner
    )
    erasure = PrivacyRequest.objects.create(
        tenant=tenant, kind=RequestKind.ERASURE, subject_digest="1" * 64, requested_by=owner
    )
    markers = [
        secret,
        tenant.slug,
        issued.key.key_id,
        issued.secret,
        upload.sha256,
        str(export.pk),
        str(erasure.pk),
    ]
    ids = {
        tenant.pk,
        artist.pk,
        show.pk,
        report.pk,
        upload.pk,
        schedule.pk,
        *(u.pk for u in members.values()),
    }
    return Side(
        tenant, members, artist, show, report, upload, schedule, issued.key, export, erasure, markers, ids
    )


@pytest.fixture(scope="module")
def _world(_isolated: None, django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    """Built once for the module inside a transaction rolled back at its end (as Django's setUpTestData):
    each test runs in a savepoint within it, so what a test writes is undone before the next."""
    from coliseum.rls import system_scope

    # Built as the system (row-level security): the per-test fixture that does so has not run yet.
    with django_db_blocker.unblock(), transaction.atomic(), system_scope("the matrix's two tenants"):
        a = _side("a", "Aurora", None)
        b = _side("b", "Zebraquartz", B_PK_BASE)
        outsider = MembershipFactory.create(tenant=b.tenant, role=OW).user
        yield World(a=a, b=b, outsider=outsider, staff=UserFactory.create(is_staff=True))
        transaction.set_rollback(True)


@pytest.fixture
def world(_world: World, db: None) -> World:
    return _world


def _client(user: User | None, tenant_slug: str | None) -> APIClient:
    client = APIClient()
    headers = {}
    if user is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {AccessToken.for_user(user)}"
    if tenant_slug:
        headers["HTTP_X_TENANT"] = tenant_slug
    client.credentials(**headers)
    return client


def _send(client: APIClient, method: str, route: str, call: Call) -> Any:
    path = _path(route, call.kwargs)
    if call.query:
        from urllib.parse import urlencode

        path += "?" + urlencode(call.query)
    send = getattr(client, method.lower())
    if call.multipart:
        return send(path, call.body, format="multipart")
    return send(path, call.body, format="json") if call.body is not None else send(path)


def _text(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return bytes(response.content).decode(errors="replace")


B_PK_BASE = 987_650_000


def _assert_nothing_of(other: Side, response: Any, text: str) -> None:
    leaked = [m for m in other.markers if m and m.lower() in text.lower()]
    assert not leaked, f"response carries the other tenant's data: {leaked}"
    if other.tenant.pk >= B_PK_BASE:
        assert not [str(pk) for pk in other.ids if str(pk) in text], "response names the other tenant's ids"
    # Designed 5xx answers (501 not implemented, 502/503 Stripe unavailable) are envelopes; a 500 never is.
    assert response.status_code != 500, text[:300]


def _assert_envelope(text: str, status: int, code: str | None = None) -> None:
    error = json.loads(text)["error"]
    assert set(error) == {"code", "message", "details"}, error
    if code:
        assert error["code"] == code, (status, error)


# --- tenant-scoped: own tenant, every role ---------------------------------------------------------

OWN_ROLES = ["anonymous", *TENANT_ROLES, "other-tenant", "staff"]
OWN_CASES = [
    pytest.param(name, method, role, id=f"{name}-{method}-{role}")
    for name, ops in TENANT.items()
    for method in ops
    for role in OWN_ROLES
]


@pytest.mark.parametrize(("name", "method", "role"), OWN_CASES)
def test_own_tenant_by_role(world: World, name: str, method: str, role: str) -> None:
    op = TENANT[name][method]
    route = _routes()[name][0]
    user = {"anonymous": None, "other-tenant": world.outsider, "staff": world.staff}.get(role)
    if role in TENANT_ROLES:
        user = world.a.members[role]

    response = _send(_client(user, world.a.tenant.slug), method, route, op.build(world.a))
    text = _text(response)

    _assert_nothing_of(world.b, response, text)
    if role == "anonymous":
        assert response.status_code == 401, text[:300]
        _assert_envelope(text, 401)
    elif role in ("other-tenant", "staff"):
        assert response.status_code == 404, text[:300]
        _assert_envelope(text, 404, "tenant_not_found")
    elif ROLE_RANK[role] < ROLE_RANK[op.min_role]:
        assert response.status_code == 403, text[:300]
        _assert_envelope(text, 403, "role_required")
    else:
        assert response.status_code == op.ok, text[:500]
    if user is None or role in ("other-tenant", "staff") or ROLE_RANK[role] < ROLE_RANK[op.min_role]:
        _assert_nothing_of(world.a, response, text)  # a refusal carries no data of the tenant either


# --- tenant-scoped: the other tenant's ids ---------------------------------------------------------


def _variants(op: Op) -> tuple[tuple[Build, frozenset[int]], ...]:
    return op.foreign or ((op.build, REFUSED),)


FOREIGN_CASES = [
    pytest.param(name, method, index, role, id=f"{name}-{method}-v{index}-{role}")
    for name, ops in TENANT.items()
    for method, op in ops.items()
    for index in range(len(_variants(op)))
    for role in TENANT_ROLES
    if ROLE_RANK[role] >= ROLE_RANK[op.min_role]
]


@pytest.mark.parametrize(("name", "method", "variant", "role"), FOREIGN_CASES)
def test_other_tenants_ids_find_nothing(
    world: World, name: str, method: str, variant: int, role: str
) -> None:
    op = TENANT[name][method]
    build, expected = _variants(op)[variant]
    call = build(world.b)
    if call.multipart or call == build(world.a):
        # The call names none of B's objects (a list, a summary, a creation): it is answered as usual and
        # must simply carry nothing of B's.
        expected = frozenset({op.ok})

    client = _client(world.a.members[role], world.a.tenant.slug)
    response = _send(client, method, _routes()[name][0], call)
    text = _text(response)

    assert response.status_code in expected, text[:300]
    if response.status_code >= 400:
        _assert_envelope(text, response.status_code)
    if response.status_code == 400 and expected == REFUSED:
        details = json.dumps(json.loads(text)["error"]["details"])
        assert any(f'"{key}"' in details for key in {*call.kwargs, *call.query, *(call.body or {})}), text
    _assert_nothing_of(world.b, response, text)


FOREIGN_TENANT_CASES = [
    pytest.param(name, method, how, id=f"{name}-{method}-{how}")
    for name, ops in TENANT.items()
    for method in ops
    for how in ("header", "query")
]


@pytest.mark.parametrize(("name", "method", "how"), FOREIGN_TENANT_CASES)
def test_naming_the_other_tenant_is_404(world: World, name: str, method: str, how: str) -> None:
    op = TENANT[name][method]
    call = op.build(world.b)
    if how == "query":  # ?tenant= picks the tenant as X-Tenant does
        call = Call(call.kwargs, {**call.query, "tenant": world.b.tenant.slug}, call.body, call.multipart)
    client = _client(world.a.members[OW], world.b.tenant.slug if how == "header" else None)

    response = _send(client, method, _routes()[name][0], call)
    text = _text(response)

    assert response.status_code == 404, text[:300]
    _assert_envelope(text, 404, "tenant_not_found")
    _assert_nothing_of(world.b, response, text)


# --- staff-only and signed-in-only ----------------------------------------------------------------

STAFF_CASES = [
    pytest.param(name, method, role, id=f"{name}-{method}-{role}")
    for name, methods in STAFF.items()
    for method in sorted(methods)
    for role in ["anonymous", *TENANT_ROLES, "staff"]
    # Staff's 200 from ops-health pings the Celery workers and waits for their replies: tests/ops covers it.
    if not (name == "ops-health" and role == "staff")
]


@pytest.mark.parametrize(("name", "method", "role"), STAFF_CASES)
def test_staff_endpoints_refuse_tenant_members(world: World, name: str, method: str, role: str) -> None:
    user = {"anonymous": None, "staff": world.staff}.get(role) or world.a.members.get(role)

    response = _send(_client(user, world.a.tenant.slug), method, _routes()[name][0], Call())
    text = _text(response)

    expected = {"anonymous": 401, "staff": 200}.get(role, 403)
    assert response.status_code == expected, text[:300]
    if expected != 200:
        _assert_envelope(text, expected)
        _assert_nothing_of(world.a, response, text)


def test_the_admin_site_sends_non_staff_to_its_login(world: World) -> None:
    client = APIClient()
    client.force_login(world.a.members[OW])

    response = client.get("/admin/coliseum/tenant/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


SIGNED_IN_CASES = [
    pytest.param(name, method, id=f"{name}-{method}")
    for name, methods in SIGNED_IN.items()
    for method in sorted(methods)
]


@pytest.mark.parametrize(("name", "method"), SIGNED_IN_CASES)
def test_signed_in_endpoints_refuse_anonymous(world: World, name: str, method: str) -> None:
    response = _send(_client(None, None), method, _routes()[name][0], Call())

    assert response.status_code == 401
    _assert_envelope(_text(response), 401)


def test_me_shows_only_the_callers_own_tenants(world: World) -> None:
    response = _client(world.a.members[OW], None).get("/api/v1/auth/me")

    assert response.status_code == 200
    assert [t["slug"] for t in response.json()["tenants"]] == [world.a.tenant.slug]
    _assert_nothing_of(world.b, response, _text(response))
