"""Stripe's HTTP API faked at the HTTP boundary: a `stripe.http_client.HTTPClient` installed as
`stripe.default_http_client` that answers from the JSON fixtures in tests/billing/fixtures/ (responses in the
shape Stripe's API returns) and never touches the network. Everything above it (the stripe SDK, dj-stripe,
our services) runs for real.

Objects live in a dict keyed by API path (`/v1/customers/cus_...`); creates store what they return, so a
later retrieve sees it; every request is recorded in `calls` for assertions."""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from stripe._http_client import HTTPClient

FIXTURES = Path(__file__).parent / "fixtures"

# API path segment -> (object id prefix, fixture used as the template of a created object)
CREATABLE: dict[str, tuple[str, str]] = {
    "customers": ("cus_", "customer"),
    "products": ("prod_", "product_pro"),
    "prices": ("price_", "price_pro"),
    "webhook_endpoints": ("we_", "webhook_endpoint"),
    "checkout/sessions": ("cs_test_", "checkout_session_created"),
    "billing_portal/sessions": ("bps_", "billing_portal_session"),
}


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def _unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (a[b][0]=x) back into nested dicts/lists, for merging into created objects."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt = None if last else parts[i + 1]
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append({} if nxt is not None and not nxt.isdigit() else [] if nxt else None)
                if last:
                    node[index] = value
                else:
                    if node[index] is None:
                        node[index] = [] if nxt and nxt.isdigit() else {}
                    node = node[index]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, [] if nxt and nxt.isdigit() else {})
    return out


class FakeStripe(HTTPClient):
    name = "coliseum-fake-stripe"

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_with: int | None = None  # answer every request with this HTTP status (Stripe outage)

    # -- state helpers used by tests --
    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[self._path_of(obj)] = obj
        return obj

    def load(self, name: str, **overrides: Any) -> dict[str, Any]:
        obj = fixture(name)
        obj.update(overrides)
        return self.put(obj)

    @staticmethod
    def _path_of(obj: dict[str, Any]) -> str:
        kind = {
            "customer": "customers",
            "subscription": "subscriptions",
            "invoice": "invoices",
            "price": "prices",
            "product": "products",
            "checkout.session": "checkout/sessions",
            "webhook_endpoint": "webhook_endpoints",
            "payment_intent": "payment_intents",
            "billing_portal.session": "billing_portal/sessions",
            "event": "events",
            "account": "accounts",
        }[obj["object"]]
        return f"/v1/{kind}/{obj['id']}"

    def paths_called(self, method: str | None = None) -> list[str]:
        return [path for m, path, _ in self.calls if method is None or m == method]

    # -- HTTPClient interface --
    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        split = urlsplit(url)
        assert split.hostname in ("api.stripe.com", "files.stripe.com"), f"unexpected host {url}"
        body = post_data.decode() if isinstance(post_data, bytes) else (post_data or "")
        pairs = parse_qsl(split.query, keep_blank_values=True) + parse_qsl(body, keep_blank_values=True)
        params = _unflatten(pairs)
        self.calls.append((method.upper(), split.path, params))
        if self.fail_with:
            return self._error(self.fail_with, "api_error", "Stripe is having a bad day (fake outage).")
        status, payload = self._route(method.upper(), split.path, params)
        return json.dumps(payload), status, {"request-id": "req_fake" + secrets.token_hex(6)}

    def request_stream(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the fake does not stream")

    def close(self) -> None:
        return None

    # -- routing --
    def _error(self, status: int, kind: str, message: str) -> tuple[str, int, Mapping[str, str]]:
        return json.dumps({"error": {"type": kind, "message": message}}), status, {}

    def _missing(self, path: str) -> tuple[int, dict[str, Any]]:
        return 404, {
            "error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "param": "id",
                "message": f"No such object: '{path.rsplit('/', 1)[-1]}'",
            }
        }

    def _list(self, kind: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        prefix = f"/v1/{kind}/"
        items = [o for p, o in self.objects.items() if p.startswith(prefix) and "/" not in p[len(prefix) :]]
        if kind == "prices" and "lookup_keys" in params:
            wanted = set(params["lookup_keys"])
            items = [o for o in items if o.get("lookup_key") in wanted]
        if params.get("active") == "true":
            items = [o for o in items if o.get("active", True)]
        return 200, {"object": "list", "data": items, "has_more": False, "url": f"/v1/{kind}"}

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for kind, (prefix, template) in CREATABLE.items():
            base = f"/v1/{kind}"
            if path == base and method == "GET":
                return self._list(kind, params)
            if path == base and method == "POST":
                return 200, self._create(kind, prefix, template, params)
        if method == "GET" and path.endswith("/features"):
            return 200, {"object": "list", "data": [], "has_more": False, "url": path}
        if method == "GET":
            obj = self.objects.get(path)
            return (200, copy.deepcopy(obj)) if obj is not None else self._missing(path)
        if method == "POST" and path in self.objects:
            obj = self.objects[path]
            obj.update({k: v for k, v in params.items() if k not in ("expand",)})
            if "active" in params:
                obj["active"] = params["active"] == "true"
            return 200, copy.deepcopy(obj)
        return self._missing(path)

    def _create(self, kind: str, prefix: str, template: str, params: dict[str, Any]) -> dict[str, Any]:
        obj = fixture(template)
        obj["id"] = prefix + "TNew" + secrets.token_hex(6)
        for key, value in params.items():
            if key in ("expand", "transfer_lookup_key", "idempotency_key"):
                continue
            obj[key] = value
        if kind == "prices":
            obj["unit_amount"] = int(obj["unit_amount"])
            obj["active"] = True
            if params.get("transfer_lookup_key") == "true":
                for other in self.objects.values():
                    if other.get("object") == "price" and other.get("lookup_key") == obj.get("lookup_key"):
                        other["lookup_key"] = None
        if kind == "webhook_endpoints":
            obj["secret"] = "whsec_" + secrets.token_hex(16)
        if kind == "checkout/sessions":
            obj["url"] = f"https://checkout.stripe.com/c/pay/{obj['id']}"
        self.objects[f"/v1/{kind}/{obj['id']}"] = obj
        return copy.deepcopy(obj)
