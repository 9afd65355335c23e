"""The live feed through a real Daphne started with the settings that ship (settings.local), and a real
WebSocket client that stays idle: a venue screen must stay connected for a whole night."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from rest_framework_simplejwt.tokens import AccessToken
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.factories import ArtistFactory, MembershipFactory, TenantFactory

from .conftest import daphne, event, ingest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

IDLE_SECONDS = 65


def _received(ws: Any, timeout: float) -> dict[str, Any]:
    return dict(json.loads(ws.recv(timeout=timeout)))


@pytest.mark.timeout(240)
def test_an_idle_connection_stays_open_and_receives_the_next_update() -> None:
    # given an Enterprise member subscribed to plays/24h through Daphne as `make run` starts it
    membership = MembershipFactory.create(tenant=TenantFactory.create(plan="enterprise"))
    tenant = membership.tenant
    ArtistFactory.create(tenant=tenant, external_id="ana", name="Ana")
    ArtistFactory.create(tenant=tenant, external_id="bea", name="Bea")
    at = datetime.now(UTC) - timedelta(minutes=2)
    ingest(tenant, [event("play", at=at, user=f"ana-{i}", artist_id="ana") for i in range(2)])
    token = str(AccessToken.for_user(membership.user))

    with daphne(DJANGO_SETTINGS_MODULE="coliseum.settings.local", REDIS_URL=settings.REDIS_URL) as base:
        with connect(f"{base}/ws/leaderboards/?token={token}", open_timeout=30) as ws:
            ws.send(json.dumps({"action": "subscribe", "board": {"metric": "plays", "window": "24h"}}))
            snapshot = _received(ws, timeout=30)
            assert [(e["artist_name"], e["score"]) for e in snapshot["entries"]] == [("Ana", 2)]

            # when the client says nothing for over a minute (it answers the server's pings, as browsers do)
            try:
                ws.recv(timeout=IDLE_SECONDS)
            except TimeoutError:
                pass  # nothing to receive, and the connection is still open
            except ConnectionClosed as closed:
                pytest.fail(f"the idle connection was closed: {closed.rcvd}")
            else:
                pytest.fail("an idle subscriber received a frame although the board did not change")

            # and then Bea gets three plays
            ingest(tenant, [event("play", at=at, user=f"bea-{i}", artist_id="bea") for i in range(3)])

            # then the same connection receives the new board
            update = _received(ws, timeout=30)
            assert update["type"] == "update"
            assert [(e["rank"], e["artist_name"], e["score"]) for e in update["entries"]] == [
                (1, "Bea", 3),
                (2, "Ana", 2),
            ]
