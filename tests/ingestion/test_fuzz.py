"""Never a 500 on any input: random JSON through both ingestion endpoints (signed / keyed correctly, so the
body itself is what is being tested)."""

from __future__ import annotations

from typing import Any

import orjson
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coliseum.models import ApiKey
from tests.ingestion.conftest import HOUR0
from tests.ingestion.test_http import basic, post_webhook

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "event_id": json_values | st.uuids().map(str),
        "type": json_values | st.sampled_from(["player.track_played", "coliseum.vote_cast", "custom.x"]),
        "occurred_at": json_values
        | st.sampled_from([f"{HOUR0:%Y-%m-%dT%H:%M:%S}Z", f"{HOUR0:%Y-%m-%dT%H:%M:%S}", "0000"]),
        "user_id": json_values,
        "properties": json_values,
        "context": json_values,
    },
)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(events=st.lists(event_like | json_values, max_size=5))
def test_webhook_never_fails_on_any_events(client: Client, webhook_key: ApiKey, events: list[Any]) -> None:
    response = post_webhook(client, webhook_key, {"events": events})
    assert response.status_code in (202, 400), response.content
    if response.status_code == 202:
        body = response.json()
        assert body["accepted"] + body["duplicates"] + len(body["rejected"]) == len(events)


@FUZZ
@given(batch=st.lists(st.dictionaries(st.sampled_from(["type", "event", "userId", "messageId", "properties",
                                                      "timestamp", "sentAt", "traits", "anonymousId"]),
                                      json_values, max_size=7), max_size=5))  # fmt: skip
def test_segment_never_fails_on_any_batch(client: Client, write_key: ApiKey, batch: list[Any]) -> None:
    response = client.post(
        "/v1/batch", data=orjson.dumps({"batch": batch}), content_type="application/json", headers=basic()
    )
    assert response.status_code in (200, 400), response.content
