"""factory-boy factories for the core domain; apps add theirs below or in tests/<app>/factories.py."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from coliseum.models import Artist, Membership, Role, Show, Tenant


class TenantFactory(factory.django.DjangoModelFactory[Tenant]):
    class Meta:
        model = Tenant

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.test")
    password = factory.django.Password("correct-horse-battery")


class MembershipFactory(factory.django.DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.OWNER


class ArtistFactory(factory.django.DjangoModelFactory[Artist]):
    class Meta:
        model = Artist

    tenant = factory.SubFactory(TenantFactory)
    external_id = factory.Sequence(lambda n: f"artist-{n}")
    name = factory.Sequence(lambda n: f"Artist {n:04d}")
    genres = factory.LazyFunction(lambda: ["rock"])
    home_city = "Lisbon"


class ShowFactory(factory.django.DjangoModelFactory[Show]):
    class Meta:
        model = Show

    tenant = factory.SubFactory(TenantFactory)
    external_id = factory.Sequence(lambda n: f"show-{n}")
    title = factory.Sequence(lambda n: f"Show {n}")
    venue = "Coliseu"
    city = "Lisbon"
