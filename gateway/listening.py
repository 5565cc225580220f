"""Listening sockets bound once, by the supervisor, and served by every worker process.

With `[service] workers` above 1 the supervisor (gateway/supervisor.py) binds each endpoint of
`[sip2]`, `[sru]` and `[z3950] listen` before it starts any worker, and every worker inherits
the listening sockets across fork() and hands them to its reactor (`adoptStreamPort`). The
kernel then gives each new connection to whichever worker calls accept() first: an idle worker
takes it, a worker that dies loses no connection still waiting in the accept queue, a port is
bound in one place (a failure is one line from the supervisor, and `tcp:0` means one port), and
no other process can join the port as it could with SO_REUSEPORT.

Front-ends never bind themselves: they ask `server_endpoint` for each listen string, which is
the inherited socket in a worker and Twisted's own endpoint in a single process. Nothing here
imports the global reactor, so the supervisor can bind without installing one (a reactor made
before fork() would share its epoll instance with every worker).
"""

from __future__ import annotations

import socket
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


@dataclass(frozen=True)
class SharedSocket:
    """One bound, listening, non-blocking socket and the listen string it serves."""

    description: str
    socket: socket.socket
    family: int
    tls: Any | None = None  # the context factory of an `ssl:` endpoint; None for plain TCP

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])


def bind_shared(description: str) -> SharedSocket:
    """Bind and listen on a `tcp:`, `tcp6:` or `ssl:` endpoint string (Twisted's syntax and
    options: interface, backlog, and the TLS keys of `ssl:`), or take the socket a `systemd:`
    string names from socket activation. Raises ListenError."""
    try:
        # The parser only stores the reactor; `ssl:` reads its key and certificate here, so a
        # bad TLS file stops the supervisor, not every worker in turn.
        endpoint = serverFromString(None, description)
    except (ValueError, KeyError, IndexError, TypeError, OSError) as error:
        raise ListenError(f"cannot listen on {description!r}: {error}") from None
    tls = None
    if isinstance(endpoint, AdoptedStreamServerEndpoint):
        # `systemd:`: the socket is bound already (socket activation) and handed on as is.
        inherited = socket.socket(endpoint.addressFamily, socket.SOCK_STREAM, 0, endpoint.fileno)
        inherited.setblocking(False)
        return SharedSocket(description, inherited, endpoint.addressFamily)
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
    bound = socket.socket(family, socket.SOCK_STREAM)
    try:
        bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Twisted's own ports
        bound.bind((interface, endpoint._port))
        bound.listen(endpoint._backlog)
        bound.setblocking(False)  # adoptStreamPort wants a non-blocking socket
    except OSError as error:
        bound.close()
        # Worded as Twisted's CannotListenError, which a single process prints.
        raise ListenError(
            f"Couldn't listen on {interface}:{endpoint._port}: {error} ({description})"
        ) from None
    return SharedSocket(description, bound, family, tls)


def bind_all(descriptions: Iterable[str]) -> list[SharedSocket]:
    """Every listener bound, or none (those bound already are closed) and ListenError."""
    bound: list[SharedSocket] = []
    try:
        for description in descriptions:
            bound.append(bind_shared(description))
    except ListenError:
        for shared in bound:
            shared.socket.close()
        raise
    return bound


# --- in a worker -------------------------------------------------------------------------

_INHERITED: dict[str, SharedSocket] = {}


def adopt(sockets: Sequence[SharedSocket]) -> None:
    """Make this process serve `sockets` (a worker, after fork) instead of binding."""
    _INHERITED.clear()
    _INHERITED.update({shared.description: shared for shared in sockets})


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
