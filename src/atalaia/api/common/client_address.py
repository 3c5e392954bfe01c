"""The address of a request's client, behind the proxies one trusts.

A request from a trusted proxy (setting `trusted_proxies`: the gateway's
addresses) is from the address that proxy names: the last X-Forwarded-For
entry that is not itself a trusted proxy (entries further left are the
client's to write, and may be false), else its X-Real-IP. A request from any
other peer is from that peer, whatever its headers say.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.types import Scope

MAX_LENGTH = 64  # the audit log's column


class TrustedProxies:
    def __init__(self, networks: Iterable[IPv4Network | IPv6Network]) -> None:
        networks = list(networks)
        # Single addresses by their text: a set lookup per request (most).
        self._addresses = frozenset(
            str(n.network_address) for n in networks if n.num_addresses == 1
        )
        self._networks = tuple(n for n in networks if n.num_addresses > 1)

    def trusts(self, address: str) -> bool:
        if address in self._addresses:
            return True
        if not self._networks:
            return False
        try:
            parsed = ip_address(address)
        except ValueError:
            return False
        return any(parsed in network for network in self._networks)

    def client_of(self, scope: Scope) -> str | None:
        """The client's address (None: the server does not know the peer's)."""
        client = scope.get("client")
        peer: str | None = client[0] if client else None
        if peer is None or not self.trusts(peer):
            return peer
        forwarded = _header(scope, b"x-forwarded-for")
        hops = [h.strip() for h in forwarded.split(",")] if forwarded else []
        for hop in reversed(hops):
            if hop and not self.trusts(hop):
                return hop[:MAX_LENGTH]
        named = (hops[0] if hops else None) or _header(scope, b"x-real-ip")
        return (named or peer).strip()[:MAX_LENGTH]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
