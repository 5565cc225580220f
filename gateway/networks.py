"""Address lists from the config (`trusted_networks`, `allowed_addresses`,
`pin_trusted_networks`, `uncapped_networks`): CIDR networks or single addresses, parsed once,
asked whether a peer's address is inside. A peer that is not an IP address (a UNIX socket, an
unknown peer) is in no list."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(text: str) -> Network:
    """A network or a single address (a /32 or /128); ValueError if it is neither."""
    return ipaddress.ip_network(text, strict=False)


class Networks:
    def __init__(self, networks: Iterable[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(parse_network(n) for n in networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)
