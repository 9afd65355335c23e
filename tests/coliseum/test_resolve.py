import pytest

from coliseum.models import Artist
from coliseum.services import artists_resolve, shows_resolve
from tests.factories import ArtistFactory, TenantFactory


@pytest.mark.django_db
def test_unknown_artists_are_created_once_and_known_ones_reused():
    tenant = TenantFactory.create()
    known = ArtistFactory.create(tenant=tenant, external_id="a-1", name="Known")

    first = artists_resolve(tenant_id=tenant.pk, external_ids=["a-1", "a-2", "a-2", ""])
    second = artists_resolve(tenant_id=tenant.pk, external_ids=["a-2"])

    assert first["a-1"] == known.pk
    assert second["a-2"] == first["a-2"]
    assert Artist.objects.filter(tenant=tenant).count() == 2
    assert Artist.objects.get(pk=first["a-2"]).name == "a-2"


@pytest.mark.django_db
def test_resolution_is_per_tenant():
    one, two = TenantFactory.create(), TenantFactory.create()

    a = shows_resolve(tenant_id=one.pk, external_ids=["s-1"])
    b = shows_resolve(tenant_id=two.pk, external_ids=["s-1"])

    assert a["s-1"] != b["s-1"]
