"""What the SRU listener lets in: connections counted globally and per address, and refusals
logged once per burst (a flood of refusals must not become a flood of log lines).

Per address means per IPv4 address, or per IPv6 /64 (one host usually owns a whole /64, so
counting single IPv6 addresses would let it hop past the cap). Networks in `uncapped` (a union
catalogue's harvester, a proxy in front of many partners) skip the per-address cap but still
count against the global one.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import Counter
from collections.abc import Sequence

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from gateway.networks import Networks


def address_key(host: str) -> str:
    """The unit the per-address cap counts: the IPv4 address, or the IPv6 /64."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a UNIX socket or a name: counted as itself
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


class ConnectionCounter:
    """Open connections, in all and per address. `admit` counts a connection in or says why
    not; `release` counts it out when it closes."""

    def __init__(self, total: int, per_address: int, uncapped: Sequence[str] = ()) -> None:
        self.total = total
        self.per_address = per_address
        self.uncapped = Networks(uncapped)
        self.open = 0
        self.by_address: Counter[str] = Counter()

    def admit(self, host: str) -> str | None:
        """None if the connection is let in (and counted), else the reason it is refused."""
        if self.open >= self.total:
            return f"{self.open} connections open, the most allowed (max_connections)"
        key = address_key(host)
        if host not in self.uncapped and self.by_address[key] >= self.per_address:
            return (
                f"{self.by_address[key]} connections open from {key}, the most allowed from one"
                " address (max_connections_per_address)"
            )
        self.open += 1
        self.by_address[key] += 1
        return None

    def release(self, host: str) -> None:
        key = address_key(host)
        self.open -= 1
        self.by_address[key] -= 1
        if self.by_address[key] <= 0:
            del self.by_address[key]


class BurstLog:
    """One warning when a burst of events starts (with the first one's reason), and one summary
    with the count once `quiet` seconds pass without another."""

    def __init__(
        self, log: logging.Logger, what: str, clock: IReactorTime, quiet: float = 10.0
    ) -> None:
        self.log = log
        self.what = what
        self.clock = clock
        self.quiet = quiet
        self.count = 0
        self.last = 0.0
        self.timer: IDelayedCall | None = None

    def note(self, reason: str) -> None:
        self.count += 1
        self.last = self.clock.seconds()
        if self.timer is None:
            self.log.warning(
                "%s: %s (more are counted, not logged, until %g s pass without one)",
                self.what,
                reason,
                self.quiet,
            )
            self.timer = self.clock.callLater(self.quiet, self._check)

    def _check(self) -> None:
        waited = self.clock.seconds() - self.last
        if waited < self.quiet:
            self.timer = self.clock.callLater(self.quiet - waited, self._check)
            return
        if self.count > 1:
            self.log.warning("%s: %d in the burst that just ended", self.what, self.count)
        self.count = 0
        self.timer = None

    def stop(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None


__all__ = ["BurstLog", "ConnectionCounter", "address_key"]
