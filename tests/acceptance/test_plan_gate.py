"""Plans: a tenant that signs up is on Basic; asking for an Enterprise-only feature (a jumbotron share link,
the live feed) gets the documented refusal, while the Enterprise demo tenant gets the feature."""

from __future__ import annotations

import json
from typing import Any

import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from .clients import TenantClient
from .stack import Stack


def test_a_basic_tenant_is_refused_enterprise_features_with_plan_required(
    stack: Stack, owner: TenantClient
) -> None:
    # given a new tenant signed up through the API
    signed_up = requests.post(
        f"{stack.base_url}/api/v1/auth/signup",
        json={"username": "nina-basic", "password": "stage-lights-2031", "tenant_name": "Nina's Venue"},
        timeout=30,
    )
    assert signed_up.status_code == 201, signed_up.text
    slug = signed_up.json()["tenant"]["slug"]
    basic = TenantClient(stack.base_url, access=signed_up.json()["access"], tenant=slug)
    assert basic.ok("/api/v1/subscriptions")["plan"] == "basic"

    # when it asks for a jumbotron share link and opens the live feed
    share = basic.post("/api/v1/jumbotron/share", {"metric": "plays", "window": "24h"})
    realtime = basic.ok("/api/v1/realtime")
    told: list[dict[str, Any]] = []
    closed_with = None
    with connect(f"{realtime['leaderboards_ws']}?token={basic.access}", open_timeout=30) as socket:
        try:
            while len(told) < 5:
                told.append(json.loads(socket.recv(timeout=30)))
        except ConnectionClosed as closed:
            closed_with = closed.rcvd.code if closed.rcvd else None

    # then both are refused as documented, naming the plan that allows them
    assert share.status_code == 403
    error = share.json()["error"]
    assert error["code"] == "plan_required"
    assert (error["details"]["current_plan"], error["details"]["required_plan"]) == ("basic", "enterprise")
    assert realtime["live_feed"] is False
    assert [(m["type"], m.get("code")) for m in told] == [("error", "plan_required")]
    assert closed_with == 4403

    # and the Enterprise tenant gets the same feature
    allowed = owner.post("/api/v1/jumbotron/share", {"metric": "plays", "window": "24h"})
    assert allowed.status_code == 201, allowed.text
    assert requests.get(allowed.json()["url"], timeout=30).status_code == 200
