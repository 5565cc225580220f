"""Who may take a SIP2 password check, counted per address: the auth queue. The connection
caps every listener shares are gateway/admission.py's; the login throttle (a delay per address
and per account after failures) is kept in the store, shared by every process:
gateway/login_failures.py.

Nothing here touches a socket or a thread; the adapter (sip2/server.py) asks and reports.
"""

from __future__ import annotations

from collections import Counter

from gateway.config import Sip2Settings
from gateway.networks import Networks

# `[sip2] trusted_networks`: the library's own kiosk networks (a UNIX socket or an unknown
# peer is never trusted).
TrustedNetworks = Networks


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
