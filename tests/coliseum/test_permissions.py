import pytest
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from coliseum.models import Role
from coliseum.permissions import IsTenantAnalyst
from tests.factories import MembershipFactory, TenantFactory

pytestmark = pytest.mark.django_db


class AnalystOnlyApi(APIView):
    permission_classes = [IsAuthenticated, IsTenantAnalyst]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


def _call(user, tenant_slug):
    request = APIRequestFactory().get("/x", HTTP_X_TENANT=tenant_slug)
    force_authenticate(request, user=user)
    return AnalystOnlyApi.as_view()(request)


@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("analyst", 200), ("admin", 200), ("owner", 200)]
)
def test_role_permission_classes_admit_that_role_and_above(role, status):
    membership = MembershipFactory.create(role=role)

    response = _call(membership.user, membership.tenant.slug)

    assert response.status_code == status
    if status == 403:
        assert response.data["error"]["code"] == "role_required"


def test_role_permission_for_a_tenant_you_are_not_in_is_404():
    membership = MembershipFactory.create(role=Role.OWNER)
    other = TenantFactory.create()

    response = _call(membership.user, other.slug)

    assert response.status_code == 404
