"""Who may open a connection to a listener: open connections counted in all and per address, and
those not let in yet (a SIP2 socket before its good 93, a Z39.50 association before its Init)
against a smaller budget of their own, so silent sockets can hold at most that budget's places
and the rest stay for working sessions. SIP2, SRU and Z39.50 each keep one `ConnectionCaps`
(SRU has no login, so no pending budget).

Per address means per IPv4 address, or per IPv6 /64 (one host usually owns a whole /64, so
counting single IPv6 addresses would let it hop past the cap). Trusted networks (a library's
kiosks behind one NAT address, a union catalogue's harvester, a proxy in front of many
partners) skip the per-address and pending caps, never the global one.

Nothing here touches a socket; the adapters ask and report, from the reactor thread.

Under a supervisor (`[service] workers` > 1) the caps stay the site's figures: every worker
also writes its counts to the shared board of gateway/site_counts.py, and a decision compares
the sum over every worker with the figure. Each worker keeps its own counts as well (what
`active` and the counters below show).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from gateway import metrics
from gateway.networks import Networks
from gateway.site_counts import SiteCounts

_SITE: SiteCounts | None = None  # set in a worker: the board every worker counts on


def count_site_wide(board: SiteCounts | None) -> None:
    """Make every ConnectionCaps built from now on in this process count on `board`."""
    global _SITE
    _SITE = board


def address_key(host: str) -> str:
    """The unit the per-address caps count: the IPv4 address, or the IPv6 /64."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a UNIX socket or a name: counted as itself
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def single_address(host: str) -> str:
    """The unit SIP2 counts: each address alone, IPv6 too (a library's kiosks on one IPv6
    VLAN share its /64; counting them as one would hold them to one kiosk's share)."""
    return host


@dataclass(frozen=True)
class Cap:
    """One limit and the config key that sets it (a refusal names the key, so an operator
    knows which to raise)."""

    most: int
    key: str


@dataclass(frozen=True)
class Caps:
    connections: Cap  # open at once, let in or not
    per_address: Cap
    pending: Cap | None = None  # not let in yet (no budget: None)
    pending_per_address: Cap | None = None
    pending_means: str = "not logged in"  # how a refusal says what pending is


class ConnectionCaps:
    """Connections open now, all and pending, in all and per address.

    A connection is pending from `opened` until `logged_in` (SIP2: a good 93; Z39.50: an
    accepted Init), and again after `logged_out` (a failed 93 on a logged-in socket)."""

    def __init__(
        self,
        caps: Caps,
        trusted: Networks,
        unit: Callable[[str], str] = address_key,
        protocol: str = "",
    ) -> None:
        self.caps = caps
        # The `protocol` label of the connection metrics (gateway/metrics.py); an HTTP
        # listener's LimitedSite sets it from its own name.
        self.protocol = protocol
        self.trusted = trusted
        self.unit = unit
        self.site = _SITE
        # The board knows a set of caps by its keys: SIP2, SRU and Z39.50 name theirs apart.
        self.kind = "/".join(
            cap.key
            for cap in (caps.connections, caps.per_address, caps.pending, caps.pending_per_address)
            if cap is not None
        )
        if self.site is not None:
            with self.site.locked():
                self.site.kind(self.kind)
        self.active = 0
        self.pending = 0
        self.per_address: Counter[str] = Counter()
        self.pending_per_address: Counter[str] = Counter()

    def refusal(self, host: str) -> str | None:
        """Why a new connection from `host` is refused, or None to take it (then `opened`)."""
        unit = self.unit(host)
        if self.site is None:
            counts = (
                self.active,
                self.pending,
                self.per_address[unit],
                self.pending_per_address[unit],
            )
            refused = self._refusal(host, unit, *counts)
        else:
            with self.site.locked():
                refused = self._refusal(host, unit, *self.site.totals(self.kind, unit))
        if refused is not None:
            metrics.connection_refused(self.protocol)
        return refused

    def _refusal(
        self, host: str, unit: str, active: int, pending: int, here: int, pending_here: int
    ) -> str | None:
        caps = self.caps
        if active >= caps.connections.most:
            return f"{active} connections open, the most allowed ({caps.connections.key})"
        if host in self.trusted:
            return None
        if here >= caps.per_address.most:
            return (
                f"{here} connections open from {unit}, the most from one"
                f" address ({caps.per_address.key})"
            )
        if caps.pending is not None and pending >= caps.pending.most:
            return f"{pending} connections {caps.pending_means} ({caps.pending.key})"
        if caps.pending_per_address is not None and pending_here >= caps.pending_per_address.most:
            return (
                f"{pending_here} connections {caps.pending_means} from {unit}"
                f" ({caps.pending_per_address.key})"
            )
        return None

    def opened(self, host: str) -> None:
        unit = self.unit(host)
        self.active += 1
        self.per_address[unit] += 1
        self._pending(unit, +1)
        self._tell_site(unit, +1, +1)
        metrics.connection_opened(self.protocol)

    def logged_in(self, host: str) -> None:
        unit = self.unit(host)
        self._pending(unit, -1)
        self._tell_site(unit, 0, -1)

    def logged_out(self, host: str) -> None:
        unit = self.unit(host)
        self._pending(unit, +1)
        self._tell_site(unit, 0, +1)

    def closed(self, host: str, was_logged_in: bool) -> None:
        unit = self.unit(host)
        self.active -= 1
        _decrement(self.per_address, unit)
        if not was_logged_in:
            self._pending(unit, -1)
        self._tell_site(unit, -1, 0 if was_logged_in else -1)
        metrics.connection_closed(self.protocol)

    def _tell_site(self, unit: str, connections: int, pending: int) -> None:
        if self.site is not None:
            with self.site.locked():
                self.site.change(self.kind, unit, connections, pending)

    def _pending(self, unit: str, change: int) -> None:
        self.pending += change
        if change > 0:
            self.pending_per_address[unit] += change
        else:
            _decrement(self.pending_per_address, unit)


def _decrement(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


__all__ = [
    "Cap",
    "Caps",
    "ConnectionCaps",
    "address_key",
    "count_site_wide",
    "single_address",
]
