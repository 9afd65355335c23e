"""The client's address, as every throttle, rate limit and audit entry must see it.

`X-Forwarded-For` is written by whoever sends the request, so it is believed only as far as the operator's
own proxies vouch for it: `TRUSTED_PROXIES` (addresses or CIDR networks, empty by default) names them. Without
it the client is `REMOTE_ADDR`, whatever the headers say. With it, the header is read from the right (the
hop nearest to us) and trusted hops are skipped; the first address no trusted proxy vouches for is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def trusted_proxies() -> tuple[Network, ...]:
    return _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: Any) -> str:
    """`request` is a Django HttpRequest or a DRF Request (anything with `.META`)."""
    return address_from(
        str(request.META.get("REMOTE_ADDR") or ""), str(request.META.get("HTTP_X_FORWARDED_FOR") or "")
    )


def scope_client_address(scope: Mapping[str, Any]) -> str:
    """The same for an ASGI scope (a WebSocket): its `client` is REMOTE_ADDR; repeated X-Forwarded-For
    headers read as one list, as a WSGI server joins them."""
    client = scope.get("client") or ("", 0)
    forwarded = [
        value.decode("latin-1")
        for name, value in scope.get("headers") or ()
        if name.lower() == b"x-forwarded-for"
    ]
    return address_from(str(client[0] or ""), ",".join(forwarded))


def address_from(remote: str, forwarded_for: str) -> str:
    """The client behind `remote` (the peer) and its X-Forwarded-For header value."""
    networks = trusted_proxies()
    if not networks or not _trusted(remote, networks):
        return remote
    forwarded = [hop.strip() for hop in forwarded_for.split(",")]
    for hop in reversed([hop for hop in forwarded if hop]):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote  # a garbled hop: the last trusted proxy is all we know
    return remote
