from datetime import UTC, datetime, timedelta

import pytest

from coliseum.models import Role
from tests.factories import ArtistFactory, ShowFactory, TenantFactory

pytestmark = pytest.mark.django_db


def test_fuzzy_artist_search_finds_metallica_from_a_typo_best_match_first(tenant, member_client):
    ArtistFactory.create(tenant=tenant, name="Metallica")
    ArtistFactory.create(tenant=tenant, name="Metal Church")
    ArtistFactory.create(tenant=tenant, name="Bad Bunny")
    ArtistFactory.create(tenant=TenantFactory.create(), name="Metallica")  # another tenant's

    body = member_client(Role.VIEWER).get("/api/v1/artists", {"search": "metalica"}).json()

    names = [a["name"] for a in body["results"]]
    assert names[0] == "Metallica"
    assert "Bad Bunny" not in names
    assert body["count"] == len(names) and names.count("Metallica") == 1


def test_artist_search_also_matches_substrings(tenant, member_client):
    ArtistFactory.create(tenant=tenant, name="The Velvet Owls")
    ArtistFactory.create(tenant=tenant, name="Luna Vega")

    body = member_client(Role.VIEWER).get("/api/v1/artists", {"search": "velvet"}).json()

    assert [a["name"] for a in body["results"]] == ["The Velvet Owls"]


def test_artist_list_is_paginated_with_a_documented_maximum_of_100(tenant, member_client):
    ArtistFactory.create_batch(105, tenant=tenant)
    client = member_client(Role.VIEWER)

    big = client.get("/api/v1/artists", {"page_size": 500}).json()
    second = client.get("/api/v1/artists", {"page_size": 100, "page": 2}).json()

    assert big["count"] == 105 and len(big["results"]) == 100
    assert len(second["results"]) == 5


def test_artist_list_filters_by_genre(tenant, member_client):
    ArtistFactory.create(tenant=tenant, name="Jazz One", genres=["jazz", "soul"])
    ArtistFactory.create(tenant=tenant, name="Rock One", genres=["rock"])

    body = member_client(Role.VIEWER).get("/api/v1/artists", {"genre": "jazz"}).json()

    assert [a["name"] for a in body["results"]] == ["Jazz One"]
    assert body["results"][0]["genres"] == ["jazz", "soul"]


def test_shows_list_newest_first_with_lineups_and_only_this_tenants(
    tenant, member_client, django_assert_max_num_queries
):
    band = ArtistFactory.create(tenant=tenant, name="Band")
    now = datetime.now(UTC)
    old = ShowFactory.create(tenant=tenant, title="Old", starts_at=now - timedelta(days=330))
    new = ShowFactory.create(tenant=tenant, title="New", starts_at=now - timedelta(days=180))
    for show in ShowFactory.create_batch(5, tenant=tenant, starts_at=now - timedelta(days=700)):
        show.lineup.add(band)
    new.lineup.add(band)
    ShowFactory.create(tenant=TenantFactory.create(), title="Elsewhere")
    client = member_client(Role.VIEWER)

    with django_assert_max_num_queries(10):  # 7 shows: a query per show would exceed this
        body = client.get("/api/v1/shows").json()
    only_old = client.get("/api/v1/shows", {"search": "old"}).json()

    titles = [s["title"] for s in body["results"]]
    assert titles[:2] == ["New", "Old"] and "Elsewhere" not in titles
    assert body["results"][0]["lineup"] == [{"id": band.pk, "external_id": band.external_id, "name": "Band"}]
    assert [s["id"] for s in only_old["results"]] == [old.pk]


def test_shows_filter_by_artist_and_rejects_a_non_numeric_artist(tenant, member_client):
    band = ArtistFactory.create(tenant=tenant)
    show = ShowFactory.create(tenant=tenant)
    show.lineup.add(band)
    ShowFactory.create(tenant=tenant)
    client = member_client(Role.VIEWER)

    mine = client.get("/api/v1/shows", {"artist_id": band.pk}).json()
    bad = client.get("/api/v1/shows", {"artist_id": "abc"})

    assert [s["id"] for s in mine["results"]] == [show.pk]
    assert bad.status_code == 400 and "artist_id" in bad.json()["error"]["details"]


def test_pickers_need_a_signed_in_member(api_client):
    response = api_client.get("/api/v1/artists")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
