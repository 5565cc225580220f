"""The settings of the wrong-PIN back-off, as the policy holds them (see pin_guard.py)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

ADDRESS_FACTOR = 5  # one address may fail this many times more, over all readers, than on one


@dataclass(frozen=True)
class PinBackoff:
    """The back-off's settings ([sip2] pin_failures_before_backoff, pin_backoff_max_seconds;
    [circulation] pin_forgiveness_seconds, pin_trusted_networks)."""

    threshold: int = 3
    cap_seconds: int = 900
    forgiveness_seconds: int = 3600
    trusted_networks: tuple[str, ...] = ()

    def trusts(self, address: str) -> bool:
        try:
            host = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(
            host in ipaddress.ip_network(network, strict=False) for network in self.trusted_networks
        )

    def delay_seconds(self, failures: int, threshold: int) -> int:
        """How long after the last of `failures` failures the next check must wait."""
        threshold = max(1, threshold)
        if failures < threshold:
            return 0
        exponent = min(failures - threshold + 1, 30)  # 2**30 s is past any cap
        return int(min(self.cap_seconds, 2**exponent))
