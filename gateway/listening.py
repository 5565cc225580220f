"""Listening sockets bound by the supervisor and served by the worker processes.

With `[service] workers` above 1 the supervisor (gateway/supervisor.py) binds every endpoint
of `[sip2]`, `[sru]`, `[z3950]` and `[ill] listen` before it starts any worker; each worker inherits its
sockets across fork() and hands them to its reactor (`adoptStreamPort`). A port that cannot be
bound stops the start with one line, before any worker runs.

On Linux each worker gets a socket of its own, all bound to the port with SO_REUSEPORT: the
kernel spreads new connections evenly over them by a hash of the addresses. With one socket
that every worker accepts on, whichever worker wakes first takes a burst of connections
(measured: four kiosks connecting at once went 4:0 or 3:1 to two workers, and SIP2 and
Z39.50 connections live for hours), so one worker can carry most of the site. The price: a
connection waits in its own worker's queue even when another worker is idle, and those queued
at a worker that dies are reset (the supervisor closes its socket at once, so new connections
go to the living workers until it is started again). The supervisor binds all of them, so `tcp:0`
still means one port, and a port in use fails before any worker starts. Elsewhere (SO_REUSEPORT
does not balance on BSD or macOS), and for `systemd:` sockets (bound by systemd, one socket),
all workers accept on one shared socket.

Front-ends never bind themselves: they ask `server_endpoint` for each listen string, which is
the inherited socket in a worker and Twisted's own endpoint in a single process. Nothing here
imports the global reactor, so the supervisor can bind without installing one (a reactor made
before fork() would share its epoll instance with every worker).
"""

from __future__ import annotations

import dataclasses
import socket
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.internet.endpoints import (
    AdoptedStreamServerEndpoint,
    SSL4ServerEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    serverFromString,
)
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamServerEndpoint
from zope.interface import implementer


class ListenError(Exception):
    """A listener that cannot be bound; str(error) is the one line to show."""


# SO_REUSEPORT spreads connections over a group of sockets on Linux (3.9 and later) only.
REUSEPORT_BALANCES = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
# The banner's line when nothing listens (one process or workers).
NONE_CONFIGURED = (
    "  listeners: none configured (no [sip2], [sru], [z3950], [ill], [web] or [ops]"
    " section with a listen string)"
)


@dataclass(frozen=True)
class SharedSocket:
    """One bound, listening, non-blocking socket and the listen string it serves."""

    description: str
    socket: socket.socket
    family: int
    address: tuple[Any, ...]  # as bound (port 0 resolved)
    backlog: int = 50
    tls: Any | None = None  # the context factory of an `ssl:` endpoint; None for plain TCP
    per_worker: bool = False  # one of a SO_REUSEPORT group (each worker its own); else shared

    @property
    def port(self) -> int:
        return int(self.address[1])


def bind_shared(description: str, reuse_port: bool = False) -> SharedSocket:
    """Bind and listen on a `tcp:`, `tcp6:` or `ssl:` endpoint string (Twisted's syntax and
    options: interface, backlog, and the TLS keys of `ssl:`), or take the socket a `systemd:`
    string names from socket activation. `reuse_port`: the first of a SO_REUSEPORT group
    (`bind_again` adds the others). Raises ListenError."""
    try:
        # The parser only stores the reactor; `ssl:` reads its key and certificate here, so a
        # bad TLS file stops the supervisor, not every worker in turn.
        endpoint = serverFromString(None, description)
    except (ValueError, KeyError, IndexError, TypeError, OSError) as error:
        raise ListenError(f"cannot listen on {description!r}: {error}") from None
    tls = None
    if isinstance(endpoint, AdoptedStreamServerEndpoint):
        # `systemd:`: the socket is bound already (socket activation) and shared as it is.
        inherited = socket.socket(endpoint.addressFamily, socket.SOCK_STREAM, 0, endpoint.fileno)
        inherited.setblocking(False)
        address = inherited.getsockname()
        return SharedSocket(description, inherited, endpoint.addressFamily, tuple(address))
    if isinstance(endpoint, SSL4ServerEndpoint):
        family, tls = socket.AF_INET, endpoint._sslContextFactory
    elif isinstance(endpoint, TCP6ServerEndpoint):
        family = socket.AF_INET6
    elif isinstance(endpoint, TCP4ServerEndpoint):
        family = socket.AF_INET
    else:
        raise ListenError(
            f"cannot listen on {description!r}: several workers share tcp:, tcp6:, ssl: and"
            " systemd: listeners only (set [service] workers = 1 for others)"
        )
    interface = endpoint._interface or ("::" if family == socket.AF_INET6 else "0.0.0.0")
    shared = SharedSocket(
        description,
        socket.socket(family, socket.SOCK_STREAM),
        family,
        (interface, endpoint._port),
        endpoint._backlog,
        tls,
        reuse_port,
    )
    if reuse_port:
        # Any process with SO_REUSEPORT may join a group, a second `libgate serve` of the same
        # config too, and the two would split the connections. Bound without it first, the
        # port must be free of every listener, as a single process's would.
        probe = _bind(dataclasses.replace(shared, per_worker=False))
        probe.socket.close()
        shared = dataclasses.replace(
            shared, socket=socket.socket(family, socket.SOCK_STREAM), address=probe.address
        )
    return _bind(shared)


def bind_again(shared: SharedSocket) -> SharedSocket:
    """Another socket of `shared`'s SO_REUSEPORT group (a worker's own); a shared socket is
    its own answer. Raises ListenError."""
    if not shared.per_worker:
        return shared
    fresh = socket.socket(shared.family, socket.SOCK_STREAM)
    return _bind(dataclasses.replace(shared, socket=fresh))


def _bind(shared: SharedSocket) -> SharedSocket:
    bound = shared.socket
    try:
        bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Twisted's own ports
        if shared.per_worker:
            bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        bound.bind(shared.address)
        bound.listen(shared.backlog)
        bound.setblocking(False)  # adoptStreamPort wants a non-blocking socket
    except (OSError, OverflowError) as error:  # OverflowError: a port above 65535
        bound.close()
        host, port = shared.address[:2]
        # Worded as Twisted's CannotListenError, which a single process prints.
        raise ListenError(
            f"Couldn't listen on {host}:{port}: {error} ({shared.description})"
        ) from None
    return dataclasses.replace(shared, address=tuple(bound.getsockname()))


def bind_all(descriptions: Iterable[str], reuse_port: bool = False) -> list[SharedSocket]:
    """Every listener bound, or none (those bound already are closed) and ListenError."""
    bound: list[SharedSocket] = []
    try:
        for description in descriptions:
            bound.append(bind_shared(description, reuse_port))
    except ListenError:
        close(bound, shared_too=True)
        raise
    return bound


def bind_all_again(template: Sequence[SharedSocket]) -> list[SharedSocket]:
    """A worker's own sockets for the listeners of `template` (bound already, maybe closed
    since: its addresses are kept), or none and ListenError."""
    bound: list[SharedSocket] = []
    try:
        for shared in template:
            bound.append(bind_again(shared))
    except ListenError:
        close(bound)
        raise
    return bound


def close(sockets: Iterable[SharedSocket], shared_too: bool = False) -> None:
    """Close the per-worker sockets among `sockets`; the shared ones (every worker's) too
    when `shared_too`."""
    for shared in sockets:
        if shared.per_worker or shared_too:
            shared.socket.close()


# --- in a worker -------------------------------------------------------------------------

_INHERITED: dict[str, SharedSocket] = {}


def adopt(sockets: Sequence[SharedSocket]) -> None:
    """Make this process serve `sockets` (a worker, after fork) instead of binding."""
    _INHERITED.clear()
    _INHERITED.update({shared.description: shared for shared in sockets})


def close_inherited() -> None:
    """Close this worker's copies of its inherited sockets (a stop). The reactor listens on
    a duplicate of each (`adoptStreamPort`), so its port's close alone would leave the socket
    open here, still taking connections into a queue nobody accepts from."""
    for shared in _INHERITED.values():
        shared.socket.close()


@implementer(IStreamServerEndpoint)
class InheritedEndpoint:
    """An endpoint whose socket is already bound and listening: the reactor adopts it."""

    def __init__(self, reactor: Any, shared: SharedSocket) -> None:
        self.reactor = reactor
        self.shared = shared

    def listen(self, protocolFactory: IProtocolFactory) -> defer.Deferred[IListeningPort]:
        factory = protocolFactory
        if self.shared.tls is not None:
            from twisted.protocols.tls import TLSMemoryBIOFactory

            factory = TLSMemoryBIOFactory(self.shared.tls, False, factory)
        return defer.execute(
            self.reactor.adoptStreamPort, self.shared.socket.fileno(), self.shared.family, factory
        )


def server_endpoint(reactor: Any, description: str) -> IStreamServerEndpoint:
    """The endpoint a front-end listens on for `description`: the socket this worker inherited
    from the supervisor, else (one process) Twisted's endpoint for the string."""
    shared = _INHERITED.get(description)
    if shared is not None:
        return InheritedEndpoint(reactor, shared)
    endpoint: IStreamServerEndpoint = serverFromString(reactor, description)
    return endpoint
