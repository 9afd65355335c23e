"""The acceptance suite's fixtures: the stack started as `make run` starts it (stack.py), once for the whole
package and stopped after its last test (before the rest of `make test`), and the demo tenant's owner signed
in through the API. Nothing here touches the test database or settings.test:
the tests reach the stack only through HTTP, the Segment SDK, a WebSocket client and Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from .clients import TenantClient, WebhookKey
from .feed import IdleFeed
from .stack import Stack, stack_start, stack_stop

# seed_demo's tenant (Enterprise), its owner and the operator; DEMO_PASSWORD's default, as the banner prints.
DEMO_TENANT = "demo"
DEMO_OWNER = "demo"
DEMO_OPERATOR = "admin"
DEMO_PASSWORD = "coliseum-demo"

# The board the idle client watches: a city no other scenario sends, so nothing reaches it before its test.
LIVE_FEED_BOARD = {"metric": "plays", "window": "24h", "city": "Braga"}
LIVE_FEED_FILE = "test_live_feed.py"

_STACK_KEY = pytest.StashKey[Stack]()


# The suite-wide autouse fixtures (tests/conftest.py) work on the test database and the test Redis database;
# these tests use neither, so the same names are no-ops here (pytest-django then creates no test database).
@pytest.fixture(autouse=True)
def _clean_redis() -> None:
    return None


@pytest.fixture(autouse=True)
def _tests_act_as_the_system() -> None:
    return None


@pytest.fixture(scope="session", autouse=True)
def _raw_tables_empty_at_start() -> None:
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    ours = [i for i, item in enumerate(items) if here in Path(str(item.path)).parents]
    for i in ours:
        items[i].add_marker(pytest.mark.acceptance)
        # the first scenario also starts the stack (a first migrate on a new machine takes minutes)
        items[i].add_marker(pytest.mark.timeout(900))
    # The idle WebSocket (idle_feed) is opened as soon as the stack is up and checked last, so its 60 idle
    # seconds overlap the other scenarios instead of adding to the suite's time.
    reordered = sorted((items[i] for i in ours), key=lambda item: Path(str(item.path)).name == LIVE_FEED_FILE)
    for i, item in zip(ours, reordered, strict=True):
        items[i] = item


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Stack]:
    started = stack_start(tmp_path_factory.mktemp("acceptance"))
    request.config.stash[_STACK_KEY] = started
    try:
        yield started
    finally:
        stack_stop(started)
        del request.config.stash[_STACK_KEY]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    started = item.config.stash.get(_STACK_KEY, None)
    if report.failed and started is not None and item.get_closest_marker("acceptance"):
        report.sections.append(("stack log (last lines)", started.log_tail()))
    return report


@pytest.fixture(scope="package")
def owner(stack: Stack) -> TenantClient:
    """The demo tenant's owner, signed in with the credentials `make run` prints."""
    return TenantClient.sign_in(
        stack.base_url, username=DEMO_OWNER, password=DEMO_PASSWORD, tenant=DEMO_TENANT
    )


@pytest.fixture(scope="package")
def webhook_key(owner: TenantClient) -> WebhookKey:
    """A webhook signing key the owner creates through the keys API (the secret is shown once)."""
    created = owner.post("/api/v1/keys", {"kind": "webhook", "name": "acceptance webhook"})
    assert created.status_code == 201, created.text
    return WebhookKey(key_id=created.json()["key_id"], secret=created.json()["secret"])


@pytest.fixture(scope="package")
def write_key(owner: TenantClient) -> str:
    """A Segment write key the owner creates through the keys API."""
    created = owner.post("/api/v1/keys", {"kind": "write", "name": "acceptance sdk"})
    assert created.status_code == 201, created.text
    return str(created.json()["secret"])


@pytest.fixture(scope="package", autouse=True)
def idle_feed(owner: TenantClient) -> Iterator[IdleFeed]:
    """A WebSocket subscribed to LIVE_FEED_BOARD from the first scenario on, then left idle."""
    url = owner.ok("/api/v1/realtime")["leaderboards_ws"]
    feed = IdleFeed(
        url=f"{url}?{urlencode({'token': owner.access, 'tenant': owner.tenant})}", board=LIVE_FEED_BOARD
    )
    try:
        feed.open()
    except Exception as error:  # reported by the live-feed scenario, not by every other one
        feed.open_error = repr(error)
    try:
        yield feed
    finally:
        feed.close()
