"""The thin Twisted adapter around `OriginSession`: one TCP connection to one target, each
operation a Deferred with its own deadline.

A deadline that passes fails the operation with TargetTimeout and aborts the connection: the
answer may still come, and an origin that went on would read it as the answer to its next
request. Everything a target can do wrong (refuse the connection, send what is not an APDU,
answer out of turn, Close, hang up) fails the pending operation with a TargetError naming the
target and the operation; nothing waits longer than its deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from twisted.internet import error as net
from twisted.internet.defer import CancelledError, Deferred, TimeoutError, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.interfaces import IDelayedCall, IReactorTCP, IReactorTime, ITCPTransport
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure

from gateway.catalogue.query import Query
from gateway.z3950_codec.messages import Close, InitResponse, RpnQuery
from gateway.z3950_codec.origin import Answer, PresentAnswer, SearchAnswer
from union.errors import (
    TargetError,
    TargetProtocolError,
    TargetRefused,
    TargetTimeout,
    TargetUnreachable,
)
from union.z3950_session import CLOSE_SENT, CLOSED, OPEN, OriginSession, UnexpectedAnswer


class Z3950Origin(Protocol):
    """The connection to one target. Use `connect`; then init, search, present, close."""

    def __init__(self, session: OriginSession, reactor: IReactorTime, target: str) -> None:
        self.session = session
        self.reactor = reactor
        self.target = target
        self.operation = ""
        self.pending: Deferred[Any] | None = None
        self.timer: IDelayedCall | None = None
        self.lost = False
        self.hung_up = False  # we dropped (or are dropping) the connection ourselves

    @property
    def reusable(self) -> bool:
        """Open, waiting for nothing, and connected: a next search may use it (the pool's test
        before it keeps or hands out an association)."""
        return (
            not self.lost
            and not self.hung_up
            and self.pending is None
            and self.session.state == OPEN
        )

    def abort(self) -> None:
        """Hang up at once (a search given up: its answer must never reach a later request)."""
        self.hung_up = True
        if self.transport is not None:
            self._wire().abortConnection()

    # --- operations ----------------------------------------------------------------------

    def init(self, timeout: float) -> Deferred[InitResponse]:
        """Init; fails with TargetRefused when the target answers result false."""

        def accepted(answer: InitResponse) -> InitResponse:
            if not answer.result:
                raise TargetRefused(self.target, "init", "the target refused the session")
            return answer

        return self._request("init", self.session.init, timeout).addCallback(accepted)

    def search(self, query: Query | RpnQuery, timeout: float) -> Deferred[SearchAnswer]:
        """Search the session's database; a diagnostic comes back in the answer, not as a
        failure. (A query RPN cannot say raises QueryError before anything is sent.)"""
        return self._request("search", lambda: self.session.search(query), timeout)

    def present(
        self, start: int, count: int, syntax: str, timeout: float
    ) -> Deferred[PresentAnswer]:
        """Records `start`..`start + count - 1` of the last search, in `syntax` (unimarc,
        usmarc, xml, opac or an OID)."""
        return self._request("present", lambda: self.session.present(start, count, syntax), timeout)

    def close(self, timeout: float) -> Deferred[None]:
        """Close politely and hang up; never fails for what the target does (it hangs up first,
        or never answers within `timeout`)."""
        if not self.reusable:
            # Closed already, refused at Init, being dropped, or an operation still pending
            # (a Close now could not be told from its answer): hang up without one.
            self.abort()
            return succeed(None)
        done: Deferred[Any] = self._request("close", self.session.close, timeout)

        def hang_up(result: Any) -> None:
            # Closing is done whatever the target did: answered, hung up first, or timed out
            # (then the connection was aborted). A caller has nothing left to do either way.
            self.hung_up = True
            self._wire().loseConnection()
            if isinstance(result, Failure) and not result.check(TargetError):
                result.raiseException()

        return done.addBoth(hang_up)

    # --- the one pending operation ---------------------------------------------------------

    def _request(
        self, operation: str, encode: Callable[[], bytes], timeout: float
    ) -> Deferred[Any]:
        if self.pending is not None:
            raise RuntimeError(f"{self.operation} is still pending on {self.target}")
        if self.lost:
            failed: Deferred[Any] = Deferred()
            failed.errback(TargetUnreachable(self.target, operation, "the connection is closed"))
            return failed
        data = encode()  # raises (QueryError, SessionError) before anything is pending
        self.operation = operation
        self.pending = Deferred()
        self.timer = self.reactor.callLater(timeout, self._timed_out, timeout)
        self._wire().write(data)
        return self.pending

    def _settle(self) -> Deferred[Any] | None:
        pending, self.pending = self.pending, None
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        return pending

    def _fail(self, error: TargetError) -> None:
        pending = self._settle()
        if pending is not None:
            pending.errback(error)

    def _timed_out(self, timeout: float) -> None:
        self.timer = None
        self.abort()  # first: whoever the failure wakes finds the connection unusable
        self._fail(TargetTimeout(self.target, self.operation, f"no answer within {timeout:g} s"))

    def _wire(self) -> ITCPTransport:
        assert self.transport is not None, "an operation before the connection was made"
        # A TCP endpoint's transport provides ITCPTransport (abortConnection); so do the test
        # transports, which do not declare it.
        return cast(ITCPTransport, self.transport)

    # --- Protocol --------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        try:
            answers = self.session.receive(data)
        except UnexpectedAnswer as error:
            self.abort()
            self._fail(TargetProtocolError(self.target, self.operation, str(error)))
            return
        for answer in answers:
            self._answered(answer)

    def _answered(self, answer: Answer) -> None:
        closing = self.operation == "close" and self.session.state == CLOSED
        if isinstance(answer, Close) and not closing:
            reason = f"the target closed the session (reason {answer.close_reason})"
            if answer.diagnostic_information:
                reason += f": {answer.diagnostic_information}"
            self.hung_up = True
            self._wire().loseConnection()
            self._fail(TargetProtocolError(self.target, self.operation, reason))
            return
        pending = self._settle()
        if pending is not None:
            pending.callback(answer)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost = True
        if self.pending is not None:
            detail = "the target hung up"
            if self.session.state == CLOSE_SENT:
                detail = "the target hung up on Close"
            self._fail(TargetUnreachable(self.target, self.operation, detail))


def connect(
    reactor: Any,
    host: str,
    port: int,
    *,
    database: str,
    timeout: float,
    encoding: str = "utf-8",
    negotiate_utf8: bool = False,
) -> Deferred[Z3950Origin]:
    """A connection to `host:port` within `timeout` seconds (the reactor must provide TCP and
    time). Fails with TargetUnreachable (refused, no route, unknown host) or TargetTimeout."""
    target = f"{host}:{port}/{database}"
    session = OriginSession(database, encoding=encoding, negotiate_utf8=negotiate_utf8)
    protocol = Z3950Origin(session, reactor, target)
    tcp: IReactorTCP = reactor
    endpoint = TCP4ClientEndpoint(tcp, host, port, timeout=max(1, int(timeout + 0.999)))
    connecting: Deferred[Z3950Origin] = connectProtocol(endpoint, protocol)
    connecting.addTimeout(timeout, reactor)

    def why(failure: Failure) -> Failure:
        if failure.check(TimeoutError, CancelledError, net.TimeoutError):
            raise TargetTimeout(target, "connect", f"no connection within {timeout:g} s")
        if failure.check(net.ConnectionRefusedError):
            raise TargetUnreachable(target, "connect", "connection refused (nothing listens)")
        if failure.check(net.DNSLookupError):
            raise TargetUnreachable(target, "connect", f"unknown host {host!r}")
        if failure.check(net.ConnectError):
            raise TargetUnreachable(target, "connect", failure.getErrorMessage())
        return failure

    return connecting.addErrback(why)


__all__ = ["Z3950Origin", "connect"]
