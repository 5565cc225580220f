"""Why a partner's catalogue gave no answer, for the per-target status: each error says which
target, what was being done and, in words a librarian can act on, what went wrong. A target's
diagnostic (an index it lacks, a syntax it does not serve) is an answer, not one of these."""

from __future__ import annotations


class TargetError(Exception):
    """A target that could not be asked: `target` names it (host:port or the base URL),
    `operation` is what was under way (connect, init, search, present, close, searchRetrieve)."""

    status = "failed"

    def __init__(self, target: str, operation: str, detail: str) -> None:
        super().__init__(f"{target}: {operation}: {detail}")
        self.target = target
        self.operation = operation
        self.detail = detail


class TargetUnreachable(TargetError):
    """No connection: refused (nothing listens), no route, a name that does not resolve."""


class TargetTimeout(TargetError):
    """The operation's deadline passed without an answer (the connection is dropped: after a
    lost reply the next APDU could answer the wrong request)."""

    status = "timeout"


class TargetProtocolError(TargetError):
    """The target broke the protocol: bytes that are not an APDU or an SRU response, an answer
    to a request we did not make, a Close or an HTTP error in place of an answer."""


class TargetRefused(TargetError):
    """The target answered and refused: Init with result false."""
