"""Delivers our queued ISO 18626 messages: every `send_every_seconds`, claim the due ones from
the outbox (in a thread: it is the store), POST each to its partner, read the confirmation, and
record the outcome (in a thread again). The outbox is the engine's
(gateway/circulation/ill_outbox.py: `claim_due`, `record_delivered`, `record_failed`), passed in
as functions so this front-end depends on their shapes only; it decides the backoff.

- Delivered: the partner answered 200 with a confirmation of the right kind, OK or ERROR (an
  ERROR confirmation is an answer: the partner has the message and said no; it is recorded
  with its error, and sending it again would get the same answer).
- Failed, to be tried again (or given up after `[ill]`'s attempts): connection refused or
  reset, no answer within `send_timeout`, an HTTP status other than 200, a body that is not a
  confirmation (or is one of another kind). A partner that is down delays its messages and
  loses none.

Messages to one partner go one after another in the order claimed (a Loaned must not overtake
its WillSupply); once one fails, the rest for that partner wait for the next round, recorded
as failed too so they back off with it. Different partners are sent to side by side.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet import error as internet_error
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.internet.protocol import connectionDone
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from gateway import metrics
from gateway.circulation.ill_types import Confirmation, Message
from gateway.config import IllSettings
from gateway.store import Store
from ill.reading import read_confirmation
from ill.wire import CONTENT_TYPE, MessageError, MessageKind
from ill.writing import write_message

log = logging.getLogger("libgate.ill")
BATCH = 20  # messages claimed per round


class Outgoing(Protocol):
    """One queued message, as ill_outbox.OutgoingMessage holds it."""

    @property
    def id(self) -> int: ...
    @property
    def url(self) -> str: ...
    @property
    def message(self) -> Message: ...
    @property
    def attempts(self) -> int: ...


ClaimDue = Callable[[Store, datetime, str, timedelta, int], Sequence[Outgoing]]


class RecordDelivered(Protocol):
    """ill_outbox.record_delivered: `sender` names the claim it records under."""

    def __call__(
        self,
        store: Store,
        message_id: int,
        now: datetime,
        confirmation: Confirmation,
        *,
        sender: str | None = None,
    ) -> None: ...


class RecordFailed(Protocol):
    """ill_outbox.record_failed: `sender` names the claim it records under; it answers the
    message's state after the attempt ("queued": tried again later, "failed": given up)."""

    def __call__(
        self, store: Store, message_id: int, now: datetime, error: str, *, sender: str | None = None
    ) -> str | None: ...


@dataclass(frozen=True)
class Outcome:
    """What became of one message in a round: delivered (with the partner's confirmation) or
    failed (with why)."""

    id: int
    confirmation: Confirmation | None = None
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.confirmation is not None


class _Posted(Exception):
    """A POST that got no confirmation; the text is what record_failed keeps."""


class Sender(Service):
    def __init__(
        self,
        store: Store,
        claim_due: ClaimDue,
        record_delivered: RecordDelivered,
        record_failed: RecordFailed,
        settings: IllSettings,
        pool: ThreadPool,
        reactor: Any = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        name: str = "",
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default

            reactor = default
        self.store = store
        self.claim_due = claim_due
        self.record_delivered = record_delivered
        self.record_failed = record_failed
        self.settings = settings
        self.pool = pool
        self.reactor = reactor
        self.now = now
        self.sender = name or f"{socket.gethostname()}:{os.getpid()}"
        # A claimed message is leased for as long as a whole round could take, every POST in
        # it to one slow partner taking its full send_timeout, so another worker never sends
        # one this worker is still sending; a worker that dies holds them this long at most.
        self.lease = timedelta(seconds=BATCH * settings.send_timeout + 60)
        # One connection per POST: partners are many and messages few; a kept-alive
        # connection to a partner that went down would only fail the next POST.
        self.agent = Agent(
            reactor,
            connectTimeout=settings.send_timeout,
            pool=HTTPConnectionPool(reactor, persistent=False),
        )
        self.loop: LoopingCall | None = None
        self.looping: Deferred[LoopingCall] | None = None

    # Service

    def startService(self) -> None:
        Service.startService(self)
        self.loop = LoopingCall(self._round)
        self.loop.clock = self.reactor
        self.looping = self.loop.start(self.settings.send_every_seconds, now=True)

    def stopService(self) -> Deferred[None] | None:
        """Stops scheduling; what the returned Deferred waits for is a round still sending
        (at most its send_timeouts), so its outcomes are recorded before the pool stops."""
        Service.stopService(self)
        if self.loop is None or not self.loop.running or self.looping is None:
            return None
        self.loop.stop()
        finished: Deferred[None] = self.looping.addCallback(lambda _loop: None)
        return finished

    def _round(self) -> Deferred[list[Outcome]]:
        deferred = self.send_due()

        def logged(failure: Failure) -> list[Outcome]:
            # The outbox itself failed (the store is down): the next round tries again.
            log.error("ILL sending failed: %s", failure.getTraceback())
            return []

        deferred.addErrback(logged)
        return deferred

    # One round

    @defer.inlineCallbacks
    def send_due(self) -> Any:
        """Claim the due messages, send them, record each outcome; the outcomes, in order."""
        claimed: Sequence[Outgoing] = yield self._in_thread(
            self.claim_due, self.store, self.now(), self.sender, self.lease, BATCH
        )
        by_partner: dict[str, list[Outgoing]] = {}
        for outgoing in claimed:
            by_partner.setdefault(outgoing.url, []).append(outgoing)
        rounds = [self._send_to_partner(queue) for queue in by_partner.values()]
        results: list[list[Outcome]] = yield defer.gatherResults(rounds, consumeErrors=True)
        outcomes = {o.id: o for batch in results for o in batch}
        return [outcomes[outgoing.id] for outgoing in claimed]

    @defer.inlineCallbacks
    def _send_to_partner(self, queue: list[Outgoing]) -> Any:
        outcomes: list[Outcome] = []
        failed = ""
        for outgoing in queue:
            if failed:
                outcome = Outcome(outgoing.id, error=f"not tried: {failed}")
            else:
                outcome = yield self._send_one(outgoing)
                if not outcome.delivered:
                    failed = f"an earlier message to {outgoing.url} failed ({outcome.error})"
            state = yield self._record(outcome)
            _count(outgoing, outcome, state)
            outcomes.append(outcome)
        return outcomes

    @defer.inlineCallbacks
    def _send_one(self, outgoing: Outgoing) -> Any:
        try:
            data = write_message(outgoing.message)
        except ValueError as error:  # the engine queued a message v1.2 cannot say
            return Outcome(outgoing.id, error=f"cannot be written: {error}")
        try:
            confirmation = yield self._post(outgoing.url, data, MessageKind.of(outgoing.message))
        except _Posted as error:
            return Outcome(outgoing.id, error=str(error))
        except Exception as error:  # refused, reset, unresolvable, timed out: the network's
            return Outcome(outgoing.id, error=_network_error(outgoing.url, error, self.settings))
        return Outcome(outgoing.id, confirmation=confirmation)

    @defer.inlineCallbacks
    def _post(self, url: str, data: bytes, kind: MessageKind) -> Any:
        # One deadline for the whole exchange: connecting, sending, the answer and its body.
        exchange = self._exchange(url, data)
        exchange.addTimeout(self.settings.send_timeout, self.reactor)
        code, body = yield exchange
        if code != 200:
            raise _Posted(f"HTTP {code} from {url}")
        try:
            received = read_confirmation(body, self.settings.max_message_bytes)
        except MessageError as error:
            raise _Posted(f"{url} answered no confirmation: {error.error_value}") from None
        if received.kind is not kind:
            raise _Posted(f"{url} answered a {received.kind.confirmation} to a {kind.value}")
        return received.confirmation

    @defer.inlineCallbacks
    def _exchange(self, url: str, data: bytes) -> Any:
        """(HTTP status, body) of one POST; cancelling it drops the connection."""
        response: IResponse = yield self.agent.request(
            b"POST",
            url.encode("utf-8"),
            Headers({b"content-type": [CONTENT_TYPE]}),
            FileBodyProducer(BytesIO(data)),
        )
        reader = _CappedBody(self.settings.max_message_bytes)
        response.deliverBody(reader)
        body: bytes = yield reader.finished
        return response.code, body

    def _record(self, outcome: Outcome) -> Deferred[str | None]:
        if outcome.confirmation is not None:
            if not outcome.confirmation.ok:
                log.info(
                    "ILL message %d refused by the partner: %s %s",
                    outcome.id,
                    outcome.confirmation.error_type,
                    outcome.confirmation.error_value,
                )
            return self._in_thread(
                self.record_delivered,
                self.store,
                outcome.id,
                self.now(),
                outcome.confirmation,
                sender=self.sender,  # recorded only while our claim holds
            )
        log.info("ILL message %d not delivered: %s", outcome.id, outcome.error)
        return self._in_thread(
            self.record_failed,
            self.store,
            outcome.id,
            self.now(),
            outcome.error,
            sender=self.sender,
        )

    def _in_thread(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        return deferToThreadPool(self.reactor, self.pool, function, *args, **kwargs)


def _count(outgoing: Outgoing, outcome: Outcome, state: str | None) -> None:
    """The attempt in the ILL metrics. A message held back behind a failed one to the same
    partner is an attempt too: the outbox counts it so (it backs off with the partner)."""
    if outcome.confirmation is not None:
        result = "delivered" if outcome.confirmation.ok else "refused"
    elif state is None:
        return  # our claim was lost: the sender that holds it now counts its own attempt
    else:
        result = "failed" if state == "failed" else "retry"
    metrics.ill_sent(MessageKind.of(outgoing.message).value, result, outgoing.attempts)


class _CappedBody(TwistedProtocol):
    """Collects a response body, giving up (and dropping the connection) past `most` bytes:
    a partner's confirmation is small, and a runaway answer must not fill memory."""

    def __init__(self, most: int) -> None:
        self.finished: Deferred[bytes] = Deferred(lambda _: self._drop())
        self.most = most
        self.parts: list[bytes] = []
        self.size = 0

    def _drop(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        if self.finished.called:
            return
        self.size += len(data)
        if self.size > self.most:
            self.finished.errback(_Posted(f"the answer is larger than {self.most} bytes"))
            self._drop()
            return
        self.parts.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.finished.called:
            return
        # PotentialDataLoss: a body ended by closing the connection, as HTTP/1.0 may.
        if reason.check(ResponseDone, PotentialDataLoss):
            self.finished.callback(b"".join(self.parts))
        else:
            self.finished.errback(reason)


def _network_error(url: str, error: Exception, settings: IllSettings) -> str:
    # The agent wraps what went wrong (ResponseNeverReceived, ResponseFailed): say the causes.
    wrapped = getattr(error, "reasons", None)
    causes = [reason.value for reason in wrapped] if wrapped else [error]
    if any(isinstance(c, defer.TimeoutError | defer.CancelledError) for c in causes):
        return f"no answer from {url} within {settings.send_timeout} s"
    if any(isinstance(c, internet_error.TimeoutError) for c in causes):
        return f"{url}: no connection within {settings.send_timeout} s"
    text = "; ".join(str(c) or type(c).__name__ for c in causes)
    return f"{url}: {text}"


__all__ = ["ClaimDue", "Outcome", "Outgoing", "RecordDelivered", "RecordFailed", "Sender"]
