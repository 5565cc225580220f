"""Who may take a SIP2 connection and a password check, counted per address: the connection
caps (global, per address, and the smaller pre-login budget) and the auth queue. The login
throttle (a delay per address and per account after failures) is kept in the store, shared by
every process: gateway/login_failures.py.

Nothing here touches a socket or a thread; the adapter (sip2/server.py) asks and reports.
"""

from __future__ import annotations

from collections import Counter

from gateway.config import Sip2Settings
from gateway.networks import Networks

# `[sip2] trusted_networks`: the library's own kiosk networks (a UNIX socket or an unknown
# peer is never trusted).
TrustedNetworks = Networks


class ConnectionCaps:
    """Sockets open now, all and not yet logged in, globally and per address.

    A socket counts as pre-login from connect until its good 93, and again if a failed 93
    logs it out. Pre-login sockets have their own small budget (`max_unauthenticated`, and per
    address), below `max_connections`, so silent sockets can hold at most that many places:
    the rest stay for logged-in kiosks. Trusted networks skip the per-address and pre-login
    caps (a library's kiosks all sit behind one NAT address at times), not the global one."""

    def __init__(self, settings: Sip2Settings, trusted: TrustedNetworks) -> None:
        self.settings = settings
        self.trusted = trusted
        self.active = 0
        self.unauthenticated = 0
        self.per_address: Counter[str] = Counter()
        self.unauthenticated_per_address: Counter[str] = Counter()

    def refusal(self, peer_host: str) -> str | None:
        """Why a new connection from `peer_host` is refused, or None to take it."""
        settings = self.settings
        if self.active >= settings.max_connections:
            return f"{self.active} connections open (max_connections)"
        if peer_host in self.trusted:
            return None
        if self.per_address[peer_host] >= settings.max_connections_per_address:
            return (
                f"{self.per_address[peer_host]} connections from this address"
                " (max_connections_per_address)"
            )
        if self.unauthenticated >= settings.max_unauthenticated:
            return f"{self.unauthenticated} connections not logged in (max_unauthenticated)"
        if self.unauthenticated_per_address[peer_host] >= settings.max_unauthenticated_per_address:
            return (
                f"{self.unauthenticated_per_address[peer_host]} connections not logged in from"
                " this address (max_unauthenticated_per_address)"
            )
        return None

    def opened(self, peer_host: str) -> None:
        self.active += 1
        self.per_address[peer_host] += 1
        self._pre_login(peer_host, +1)

    def logged_in(self, peer_host: str) -> None:
        self._pre_login(peer_host, -1)

    def logged_out(self, peer_host: str) -> None:
        self._pre_login(peer_host, +1)

    def closed(self, peer_host: str, was_logged_in: bool) -> None:
        self.active -= 1
        _decrement(self.per_address, peer_host)
        if not was_logged_in:
            self._pre_login(peer_host, -1)

    def _pre_login(self, peer_host: str, change: int) -> None:
        self.unauthenticated += change
        if change > 0:
            self.unauthenticated_per_address[peer_host] += change
        else:
            _decrement(self.unauthenticated_per_address, peer_host)


class LoginQueue:
    """Password checks waiting for or running in the auth pool, globally and per address:
    beyond `max_queued_logins` (or the per-address share) a 93 is refused at once instead of
    waiting. Trusted networks have no per-address share and the global bound is theirs too,
    plus the auth threads' worth, so a kiosk's login never waits behind a flood."""

    def __init__(self, settings: Sip2Settings, trusted: TrustedNetworks) -> None:
        self.settings = settings
        self.trusted = trusted
        self.waiting = 0
        self.per_address: Counter[str] = Counter()

    def admit(self, peer_host: str) -> bool:
        settings = self.settings
        if peer_host in self.trusted:
            return self.waiting < settings.max_queued_logins + settings.auth_threads * 4
        return (
            self.waiting < settings.max_queued_logins
            and self.per_address[peer_host] < settings.max_queued_logins_per_address
        )

    def started(self, peer_host: str) -> None:
        self.waiting += 1
        self.per_address[peer_host] += 1

    def finished(self, peer_host: str) -> None:
        self.waiting -= 1
        _decrement(self.per_address, peer_host)


def _decrement(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
