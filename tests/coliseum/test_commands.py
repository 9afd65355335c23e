import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from audit.models import AuditEntry
from coliseum.models import ApiKey, Artist, Membership, Show, Tenant
from coliseum.selectors import webhook_key_secret, write_key_authenticate

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_tenant_json_gives_credentials_that_work_against_the_api(api_client):
    created = json.loads(_run("create_tenant", "rockhouse", "--plan", "pro", "--json"))

    assert set(created) == {"tenant", "username", "password", "write_key", "webhook_key_id", "webhook_secret"}
    token = api_client.post(
        "/api/v1/auth/token",
        {"username": created["username"], "password": created["password"]},
        format="json",
    )
    assert token.status_code == 200
    me = api_client.get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {token.json()['access']}").json()
    assert me["tenants"] == [
        {
            "slug": "rockhouse",
            "name": "Rockhouse",
            "plan": "pro",
            "reporting_currency": "USD",
            "timezone": "UTC",
            "role": "owner",
        }
    ]
    key = write_key_authenticate(created["write_key"])
    assert key is not None and key.tenant.slug == "rockhouse"
    webhook = webhook_key_secret(created["webhook_key_id"])
    assert webhook is not None and webhook[1] == created["webhook_secret"]
    assert AuditEntry.objects.filter(action="plan.assigned", details__to="pro").exists()


def test_create_tenant_refuses_an_existing_slug_and_changes_nothing():
    _run("create_tenant", "rockhouse", "--json")

    with pytest.raises(CommandError, match="already exists"):
        _run("create_tenant", "rockhouse", "--json")

    assert Tenant.objects.count() == 1 and ApiKey.objects.count() == 2


def test_create_tenant_without_a_plan_starts_on_basic_with_no_operator_assignment():
    created = json.loads(_run("create_tenant", "smallclub", "--json"))

    assert Tenant.objects.get(slug=created["tenant"]).plan == "basic"
    assert not AuditEntry.objects.filter(action="plan.assigned").exists()


def test_create_tenant_without_json_prints_the_secrets_once_for_a_human():
    out = _run("create_tenant", "jazzclub", "--plan", "enterprise")

    assert "jazzclub" in out and "write_key" in out
    assert Tenant.objects.get(slug="jazzclub").plan == "enterprise"


def _counts() -> tuple[int, ...]:
    return (
        Tenant.objects.count(),
        get_user_model().objects.count(),
        Membership.objects.count(),
        Artist.objects.count(),
        Show.objects.count(),
        Show.lineup.through.objects.count(),
        ApiKey.objects.count(),
    )


def test_seed_demo_builds_the_world_and_running_it_again_duplicates_nothing():
    _run("seed_demo", "--events", "0")
    first = _counts()
    _run("seed_demo", "--events", "0")

    assert _counts() == first
    demo = Tenant.objects.get(slug="demo")
    assert demo.plan == "enterprise"
    artists = Artist.objects.filter(tenant=demo)
    assert artists.count() >= 200
    assert len({a.home_city for a in artists}) >= 10
    assert len({g for a in artists for g in a.genres}) >= 8
    assert all(1 <= len(a.genres) <= 3 for a in artists)
    shows = Show.objects.filter(tenant=demo)
    assert shows.count() >= 30
    assert all(2 <= s.lineup.count() <= 6 and s.venue for s in shows)
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("coliseum-demo")
    assert Membership.objects.get(tenant=demo, user__username="demo").role == "owner"
    assert Membership.objects.get(tenant=demo, user__username="admin").role == "admin"


def test_demo_banner_prints_urls_and_demo_credentials():
    _run("seed_demo", "--events", "0")

    out = _run("demo_banner", "--port", "8123")

    for url in (
        "http://localhost:8123/",
        "/admin/",
        "/api/docs/",
        "/readyz",
        "ws://localhost:8223/ws/leaderboards/",
        "/jumbotron/",
    ):
        assert url in out
    assert "coliseum-demo" in out
    write_key = next(line.split()[-1] for line in out.splitlines() if "Write key" in line)
    assert write_key_authenticate(write_key) is not None


def test_ensure_database_reports_an_existing_database():
    out = _run("ensure_database")

    assert "exists" in out


def test_seed_demo_events_go_through_ingestion_once_and_feed_the_rollups():
    from ingestion.selectors import rollup_totals

    first = _run("seed_demo", "--events", "400", "--no-progress")
    second = _run("seed_demo", "--events", "400", "--no-progress")

    assert "400 accepted, 0 already there, 0 rejected" in first
    assert "0 accepted, 400 already there, 0 rejected" in second
    demo = Tenant.objects.get(slug="demo")
    plays = rollup_totals(tenant_id=demo.pk, metric="plays", start=None, end=None)
    assert 150 < sum(plays.values()) < 400
    assert set(plays) <= set(Artist.objects.filter(tenant=demo).values_list("pk", flat=True))


def test_ensure_database_creates_a_missing_database_once_with_the_configured_credentials(settings):
    import psycopg

    from coliseum.management.commands.ensure_database import database_ensure, maintenance_conninfo

    db = {**settings.DATABASES["default"], "NAME": "coliseum_core_ensure_probe"}
    admin = maintenance_conninfo(db)
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS coliseum_core_ensure_probe")
    try:
        assert database_ensure(db) is True
        assert database_ensure(db) is False
        with psycopg.connect(**{**admin, "dbname": "coliseum_core_ensure_probe"}) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("coliseum_core_ensure_probe",)
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS coliseum_core_ensure_probe")


def test_the_maintenance_connection_keeps_host_port_user_and_password():
    from coliseum.management.commands.ensure_database import maintenance_conninfo

    params = maintenance_conninfo(
        {"NAME": "coliseum", "HOST": "db", "PORT": 5433, "USER": "app", "PASSWORD": "s3cret", "OPTIONS": {}}
    )

    assert params["dbname"] == "postgres"
    assert (params["host"], params["port"], params["user"], params["password"]) == (
        "db",
        "5433",
        "app",
        "s3cret",
    )
