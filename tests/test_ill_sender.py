"""The sender against a real partner on a loopback port: down (nothing listening), then up
(libgate's own ILL site with a recording handler), then answering garbage, a wrong status, a
confirmation of the wrong kind, too much, or nothing at all. The outbox is the test's own list
with the engine outbox's contract (claim, record delivered, record failed), so what the sender
recorded can be read back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.threads import blockingCallFromThread
from twisted.python.threadpool import ThreadPool
from twisted.web import resource, server

from gateway.circulation.ill_types import (
    Action,
    AgencyId,
    Confirmation,
    ErrorType,
    Header,
    Message,
    ReasonForMessage,
    RequestingAgencyMessage,
    Status,
    SupplyingAgencyMessage,
)
from gateway.config import IllSettings
from gateway.store import Store
from ill.resource import build_site
from ill.sender import Outcome, Sender
from ill.wire import ConfirmationHeader, MessageKind
from ill.writing import write_confirmation
from tests.ill_http_support import RecordingHandler
from tests.sru_support import reactor_in_thread

AT = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
SETTINGS = IllSettings(max_message_bytes=4096, send_timeout=2, send_every_seconds=1)
STORE = cast(Store, object())  # handed to the outbox functions untouched; they are the test's


@dataclass(frozen=True)
class Queued:
    """The shape of ill_outbox.OutgoingMessage."""

    id: int
    url: str
    message: Message
    attempts: int


class Outbox:
    """The outbox contract over a dict: claimed messages are leased until recorded; a delivered
    one leaves with its confirmation; a failed one stays, one attempt more, with its error."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting: dict[int, Queued] = {}
        self.leased: dict[int, str] = {}  # message id -> the sender holding its claim
        self.delivered: dict[int, Confirmation] = {}
        self.errors: dict[int, list[str]] = {}
        self.stores: list[object] = []
        self.settled = threading.Event()

    def add(self, url: str, message: Message) -> int:
        with self.lock:
            number = len(self.waiting) + len(self.delivered) + 1
            self.waiting[number] = Queued(number, url, message, 0)
            self.settled.clear()
            return number

    def claim_due(
        self, store: Store, now: datetime, sender: str, lease: timedelta, limit: int
    ) -> list[Queued]:
        assert sender and lease > timedelta(0)
        with self.lock:
            self.stores.append(store)
            due = [q for q in self.waiting.values() if q.id not in self.leased][:limit]
            self.leased.update((q.id, sender) for q in due)
            return due

    def record_delivered(
        self,
        store: Store,
        message_id: int,
        now: datetime,
        confirmation: Confirmation,
        *,
        sender: str | None = None,
    ) -> None:
        with self.lock:
            assert sender == self.leased.pop(message_id)  # recorded under its own claim
            del self.waiting[message_id]
            self.delivered[message_id] = confirmation
            if not self.waiting:
                self.settled.set()

    def record_failed(
        self, store: Store, message_id: int, now: datetime, error: str, *, sender: str | None = None
    ) -> None:
        with self.lock:
            assert sender == self.leased.pop(message_id)  # recorded under its own claim
            queued = self.waiting[message_id]
            self.waiting[message_id] = replace(queued, attempts=queued.attempts + 1)
            self.errors.setdefault(message_id, []).append(error)


class Misbehaving(resource.Resource):
    """A partner that answers wrongly, as `mode` says."""

    isLeaf = True
    mode = "garbage"

    def render_POST(self, request: server.Request) -> int | bytes:
        if self.mode == "garbage":
            request.setHeader(b"content-type", b"text/html")
            return b"<html><body>It works!<br></body></html>"  # HTML, not XML
        if self.mode == "status":
            request.setResponseCode(503)
            return b"busy"
        if self.mode == "wrong kind":  # a requestConfirmation, to a requestingAgencyMessage
            return write_confirmation(
                MessageKind.REQUEST, ConfirmationHeader(), Confirmation.accepted(), AT
            )
        if self.mode == "huge":
            return b"<x>" + b"y" * 10_000 + b"</x>"
        return server.NOT_DONE_YET  # silent: never answers


@dataclass
class Partner:
    """One port a partner listens on, or not, with one of two sites."""

    reactor: Any
    port_number: int
    handler: RecordingHandler
    pool: ThreadPool
    misbehaving: Misbehaving
    listening: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port_number}/iso18626"

    def down(self) -> None:
        if self.listening is not None:
            blockingCallFromThread(self.reactor, self.listening.stopListening)
            self.listening = None

    def up(self, site: server.Site) -> None:
        self.down()
        endpoint = TCP4ServerEndpoint(self.reactor, self.port_number, interface="127.0.0.1")
        self.listening = blockingCallFromThread(self.reactor, endpoint.listen, site)

    def libgate(self) -> None:
        self.up(build_site(SETTINGS, self.handler, self.pool, self.reactor))

    def misbehave(self, mode: str) -> None:
        self.misbehaving.mode = mode
        self.up(server.Site(self.misbehaving))


@pytest.fixture
def pool() -> Iterator[ThreadPool]:
    pool = ThreadPool(minthreads=1, maxthreads=2, name="ill-sender-test")
    pool.start()
    yield pool
    pool.stop()


@pytest.fixture
def partner(pool: ThreadPool) -> Iterator[Partner]:
    reactor = reactor_in_thread()
    # A free port: taken, then let go, so nothing listens there until the test says so.
    endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
    taken = blockingCallFromThread(reactor, endpoint.listen, server.Site(resource.Resource()))
    number = taken.getHost().port
    blockingCallFromThread(reactor, taken.stopListening)
    found = Partner(reactor, number, RecordingHandler(), pool, Misbehaving())
    yield found
    found.down()


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


def sender_for(outbox: Outbox, pool: ThreadPool, settings: IllSettings = SETTINGS) -> Sender:
    return Sender(
        STORE,
        outbox.claim_due,
        outbox.record_delivered,
        outbox.record_failed,
        settings,
        pool,
        reactor_in_thread(),
        now=lambda: AT,
        name="test-sender",
    )


def round_of(sender: Sender) -> list[Outcome]:
    outcomes: list[Outcome] = blockingCallFromThread(sender.reactor, sender.send_due)
    return outcomes


def header(request_id: str) -> Header:
    return Header(
        requesting_agency=AgencyId("ISIL", "CN-PKU"),
        supplying_agency=AgencyId("ISIL", "CN-SHL"),
        timestamp=AT,
        requesting_agency_request_id=request_id,
        supplying_agency_request_id="ST00000001",
    )


def will_supply() -> SupplyingAgencyMessage:
    return SupplyingAgencyMessage(
        header=header("PKU-1"),
        reason_for_message=ReasonForMessage.REQUEST_RESPONSE,
        status=Status.WILL_SUPPLY,
        last_change=AT,
        note="可以提供",
    )


def loaned() -> SupplyingAgencyMessage:
    return replace(
        will_supply(),
        reason_for_message=ReasonForMessage.STATUS_CHANGE,
        status=Status.LOANED,
        due_date=AT + timedelta(days=45),
        item_id="SHL0001",
    )


def action(kind: Action, request_id: str = "PKU-2") -> RequestingAgencyMessage:
    return RequestingAgencyMessage(header=header(request_id), action=kind)


def test_down_then_up_delivers_everything_in_order(
    partner: Partner, outbox: Outbox, pool: ThreadPool
) -> None:
    first = outbox.add(partner.url, will_supply())
    second = outbox.add(partner.url, loaned())
    sender = sender_for(outbox, pool)

    down = round_of(sender)
    assert [o.delivered for o in down] == [False, False]
    assert "refused" in outbox.errors[first][0].lower()
    assert outbox.errors[second][0].startswith("not tried: an earlier message to")
    assert {q.attempts for q in outbox.waiting.values()} == {1}
    assert outbox.delivered == {}

    partner.libgate()
    up = round_of(sender)
    assert [o.id for o in up] == [first, second]
    assert outbox.delivered == {first: Confirmation.accepted(), second: Confirmation.accepted()}
    assert outbox.waiting == {}
    # the partner got both, whole and in the order queued
    assert partner.handler.take() == [will_supply(), loaned()]
    assert outbox.stores and all(store is STORE for store in outbox.stores)

    assert round_of(sender) == []  # nothing left


def test_an_error_confirmation_is_delivered_with_its_error(
    partner: Partner, outbox: Outbox, pool: ThreadPool
) -> None:
    partner.libgate()
    renew = outbox.add(partner.url, action(Action.RENEW))  # the recording handler refuses it
    [outcome] = round_of(sender_for(outbox, pool))
    assert outcome.delivered
    assert outbox.delivered[renew] == Confirmation.error(
        ErrorType.UNRECOGNISED_DATA_VALUE,
        "requestingAgencyRequestId: request with a given ID not found",
    )
    assert renew not in outbox.errors


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("garbage", "answered no confirmation: not well-formed XML"),
        ("status", "HTTP 503 from"),
        ("wrong kind", "answered a requestConfirmation to a requestingAgencyMessage"),
        ("huge", "larger than 4096 bytes"),
        ("silent", "no answer from"),
    ],
)
def test_a_partner_answering_wrongly_leaves_the_message_queued(
    partner: Partner, outbox: Outbox, pool: ThreadPool, mode: str, says: str
) -> None:
    partner.misbehave(mode)
    number = outbox.add(partner.url, action(Action.RECEIVED))
    [outcome] = round_of(sender_for(outbox, pool))
    assert not outcome.delivered
    assert says in outcome.error
    assert outbox.errors[number] == [outcome.error]
    assert outbox.waiting[number].attempts == 1
    # ... and goes once the partner is itself again
    partner.libgate()
    [again] = round_of(sender_for(outbox, pool))
    assert again.delivered
    assert partner.handler.take() == [action(Action.RECEIVED)]


def test_one_partner_down_does_not_hold_up_another(
    partner: Partner, outbox: Outbox, pool: ThreadPool
) -> None:
    partner.libgate()
    nowhere = outbox.add("http://127.0.0.1:9/iso18626", action(Action.CANCEL, "PKU-9"))
    here = outbox.add(partner.url, action(Action.CANCEL, "PKU-3"))
    outcomes = round_of(sender_for(outbox, pool))
    assert [o.id for o in outcomes] == [nowhere, here]
    assert [o.delivered for o in outcomes] == [False, True]


def test_the_service_sends_on_its_schedule(
    partner: Partner, outbox: Outbox, pool: ThreadPool
) -> None:
    partner.libgate()
    outbox.add(partner.url, will_supply())
    sender = sender_for(outbox, pool)
    blockingCallFromThread(sender.reactor, sender.startService)
    try:
        assert outbox.settled.wait(30)  # the first round runs at start
        outbox.add(partner.url, loaned())
        assert outbox.settled.wait(30)  # and the next one a second later
    finally:
        blockingCallFromThread(sender.reactor, sender.stopService)
    assert partner.handler.take() == [will_supply(), loaned()]
