"""Fixtures for the core's tests: signed-in clients with a role in a tenant."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from coliseum.models import Membership, Role, Tenant
from tests.factories import MembershipFactory, TenantFactory


def client_for(membership: Membership) -> APIClient:
    client = APIClient()
    token = RefreshToken.for_user(membership.user).access_token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_TENANT=membership.tenant.slug)
    return client


@pytest.fixture
def tenant() -> Tenant:
    return TenantFactory.create(slug="acme", name="Acme Live")


@pytest.fixture
def member_client(tenant: Tenant) -> Callable[..., APIClient]:
    """member_client(role) -> an APIClient signed in as a fresh member of `tenant` with that role."""

    def make(role: str = Role.OWNER, of: Tenant | None = None) -> APIClient:
        return client_for(MembershipFactory.create(tenant=of or tenant, role=role))

    return make
