"""Initialised Z39.50 associations kept between searches, per target, within limits.

A union search asks the same partners again and again; connect + Init costs two round trips
(more where the target is far or slow to start a session), so an association whose search
ended cleanly goes back here idle and the next search of that target sends its Search on it
(the new result set replaces the default one). Limits: at most `idle_per_target` idle
associations per target (the freshest are kept: a target's own idle timeout reaches the oldest
first), each kept at most `idle_seconds`, then closed politely (Close, then hang up).

An association is handed to one search at a time (one operation at a time on it: two searches
at once on a target each get their own), and only one that is `reusable` (open, waiting for
nothing, not being dropped) is kept or handed out: a search that timed out, was cancelled or
failed leaves its association unusable, and the caller says when a diagnostic did
(`session_survives`). The pool's owner closes it (`close`): the CLI at the end of its
command, the portal's searcher at shutdown.

A target may close an idle association without our seeing it yet: the search that takes it
then fails before any answer (`went_away`), and its caller asks once more on a new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from gateway.config import Z3950_URL, UnionSettings, UnionTarget
from gateway.z3950_codec.origin import ReceivedDiagnostic
from union.errors import TargetProtocolError, TargetUnreachable
from union.z3950_client import Z3950Origin
from union.z3950_session import CLOSED

CLOSE_SECONDS = 2.0  # how long a polite Close waits for the target's Close before hanging up

# Bib-1 conditions after which the target's side of the session is in doubt: 1 and 2 (permanent
# and temporary system error), 100 (unspecified error), 109 (database unavailable). A new
# association costs one connect + Init; a broken one would cost the next search.
SESSION_IN_DOUBT = frozenset({1, 2, 100, 109})


@dataclass(frozen=True)
class PoolKey:
    """What makes two associations interchangeable: the same database on the same target,
    with terms and records in the same encoding."""

    host: str
    port: int
    database: str
    encoding: str

    @classmethod
    def of(cls, target: UnionTarget) -> PoolKey:
        match = Z3950_URL.match(target.url)
        if match is None:  # the config checked it; a guard for direct callers
            raise ValueError(f"not a Z39.50 target URL: {target.url!r}")
        return cls(
            match.group("host"), int(match.group("port")), match.group("database"), target.encoding
        )


@dataclass(frozen=True)
class _Idle:
    origin: Z3950Origin
    expiry: IDelayedCall  # the idle lifetime's end


class Z3950Pool:
    """Idle associations by target; see the module's words for the rules."""

    def __init__(
        self, reactor: IReactorTime, idle_per_target: int = 2, idle_seconds: float = 60.0
    ) -> None:
        self.reactor = reactor
        self.idle_per_target = idle_per_target
        self.idle_seconds = idle_seconds
        self.closed = False
        self._idle: dict[PoolKey, list[_Idle]] = {}  # by target, oldest first
        self._closing: list[Deferred[None]] = []  # polite Closes not yet answered

    @classmethod
    def from_settings(cls, settings: UnionSettings, reactor: IReactorTime) -> Z3950Pool:
        return cls(reactor, settings.idle_connections_per_target, settings.idle_seconds)

    def take(self, key: PoolKey) -> Z3950Origin | None:
        """An idle association to `key`'s target, now the caller's alone; None when there is
        none (connect and Init a new one)."""
        idle = self._idle.get(key, [])
        while idle:
            kept = idle.pop()  # the freshest: the least likely to be closed by the target
            kept.expiry.cancel()
            if kept.origin.reusable:
                return kept.origin
            kept.origin.abort()  # the target closed it while idle (we saw its Close or FIN)
        return None

    def give_back(self, key: PoolKey, origin: Z3950Origin, *, clean: bool) -> None:
        """The caller is done with `origin`: kept idle when its search ended `clean` and it is
        still usable and there is room; otherwise closed (politely when it can be)."""
        if self.closed or not clean or not origin.reusable or self.idle_per_target < 1:
            self._close(origin)
            return
        idle = self._idle.setdefault(key, [])
        for dead in [kept for kept in idle if not kept.origin.reusable]:
            idle.remove(dead)
            dead.expiry.cancel()
            dead.origin.abort()
        while len(idle) >= self.idle_per_target:
            oldest = idle.pop(0)
            oldest.expiry.cancel()
            self._close(oldest.origin)
        expiry = self.reactor.callLater(self.idle_seconds, self._expire, key, origin)
        idle.append(_Idle(origin, expiry))

    def idle(self, key: PoolKey) -> int:
        """How many idle associations to `key`'s target the pool holds."""
        return len(self._idle.get(key, []))

    def close(self) -> Deferred[None]:
        """Close every idle association politely; associations given back later are closed
        too. Fires when every Close this pool sent was answered or gave up."""
        self.closed = True
        for idle in self._idle.values():
            for kept in idle:
                kept.expiry.cancel()
                self._close(kept.origin)
        self._idle.clear()
        closing, self._closing = self._closing, []
        if not closing:
            return succeed(None)
        return DeferredList(closing, consumeErrors=True).addCallback(lambda _: None)

    def _expire(self, key: PoolKey, origin: Z3950Origin) -> None:
        idle = self._idle.get(key, [])
        for kept in idle:
            if kept.origin is origin:
                idle.remove(kept)
                self._close(origin)
                return

    def _close(self, origin: Z3950Origin) -> None:
        done = origin.close(CLOSE_SECONDS)
        if done.called:
            return  # hung up at once: nothing to wait for
        self._closing.append(done)

        def forget(result: Any) -> Any:
            if done in self._closing:
                self._closing.remove(done)
            return result

        done.addBoth(forget)


def session_survives(diagnostics: Sequence[ReceivedDiagnostic]) -> bool:
    """Whether an association may serve another search after these non-surrogate diagnostics
    (an index or a syntax the target lacks leaves it as it was; a system error may not)."""
    return not any(d.condition in SESSION_IN_DOUBT for d in diagnostics)


def went_away(origin: Z3950Origin, error: Exception) -> bool:
    """Whether `error`, failing the first request on a reused association, says the target had
    closed it while it was idle (it hung up, or answered with Close): then a new association
    may be asked once more. A timeout says nothing of the sort (the target may be slow)."""
    if isinstance(error, TargetUnreachable):  # the connection was lost (or found lost)
        return True
    return isinstance(error, TargetProtocolError) and origin.session.state == CLOSED


__all__ = ["PoolKey", "Z3950Pool", "session_survives", "went_away"]
