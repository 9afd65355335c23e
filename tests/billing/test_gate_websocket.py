"""The WebSocket feed's plan gate follows a Stripe plan change at once (leaderboards' real consumer)."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken

from coliseum.models import Tenant
from coliseum.rls import in_system
from leaderboards.routing import websocket_urlpatterns
from tests.factories import MembershipFactory

from .conftest import Deliver, subscription
from .fakestripe import FakeStripe

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

application = URLRouter(websocket_urlpatterns)


async def _connect(token: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, f"/ws/leaderboards/?token={token}")
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def test_the_live_feed_opens_as_soon_as_stripe_reports_an_enterprise_subscription(
    deliver: Deliver, stripe_tenant: Tenant, fake_stripe: FakeStripe
) -> None:
    # given a member of a Basic tenant: the feed is refused with 4403
    # database_sync_to_async's thread has its own connection: the setup acts as the system explicitly
    membership = await database_sync_to_async(in_system)(
        "test setup", MembershipFactory.create, tenant=stripe_tenant
    )
    token = str(AccessToken.for_user(membership.user))
    ws = await _connect(token)
    assert (await ws.receive_json_from(timeout=5))["code"] == "plan_required"
    assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
    # when Stripe reports the Enterprise subscription
    sub = fake_stripe.put(subscription(plan="enterprise"))
    response = await database_sync_to_async(deliver)("customer.subscription.created", sub)
    assert response.status_code == 200
    # then the next connection is let in and answers
    ws = await _connect(token)
    await ws.send_json_to({"action": "ping"})
    assert await ws.receive_json_from(timeout=5) == {"type": "pong"}
    await ws.disconnect()
