"""A mock ISO 18626 partner for tests, written here: an HTTP server in the test process that
reads and answers with libgate's own codec (ill.reading, ill.writing), playing the behaviour
of ReShare and of CrossLink's illmock (docs/research/ill-portal-union.md §1.4, §1.6-1.7).

- It confirms every message it receives (OK), and checks each against the ISO 18626 v1.2 XSD:
  anything libgate sends it that does not validate is kept in `invalid` (and answered
  BadlyFormedMessage), and so is any confirmation libgate answers the mock's own messages with.
- As a supplier it answers a Request a moment later by a scenario, chosen as illmock chooses:
  by supplierUniqueRecordId, else by a token in the request's note. `#UNFILLED,LOANED#` gives
  a scenario per lender asked: the first request the mock receives for a requester's id plays
  the first, the next (the rota's next lender, when the mock plays several) the second.
  Scenarios: UNFILLED (Unfilled / NotHeld), WILLSUPPLY, LOANED (WillSupply, then Loaned with a
  due date), LOANED_OVERDUE and LOANED_RECALLED (then Overdue or Recalled), and
  SHIPS_ON_CANCEL (WillSupply; a Cancel finds the book already in the post: CancelResponse N
  with Loaned).
  Actions: Cancel before shipping → CancelResponse Y / Cancelled, after → N / Loaned; Renew →
  RenewResponse Y with Loaned and a due date two weeks on, once per request, then N;
  ShippedReturn → LoanCompleted; Received, Notification, StatusRequest as illmock.
- Like ReShare, every note it sends starts with a sequence token `#seq:N#`.
- As a requester the test drives it: `send` POSTs a message to libgate and reads the
  confirmation; what libgate sends back later is in `received`.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from gateway.circulation.ill_types import (
    Action,
    AgencyId,
    Confirmation,
    ErrorType,
    Header,
    Message,
    ReasonForMessage,
    Request,
    RequestingAgencyMessage,
    Status,
    SupplyingAgencyMessage,
)
from ill.reading import read_confirmation, read_message
from ill.wire import ConfirmationHeader, MessageError, MessageKind, ReceivedConfirmation
from ill.writing import write_confirmation, write_message

XSD = Path(__file__).resolve().parent.parent / "fixtures" / "iso18626" / "ISO-18626-v1_2.xsd"
MAX_BYTES = 1 << 20
ANSWER_DELAY = 0.2  # seconds before a supplier's answer, as a person at a desk would take
SCENARIOS = (
    "UNFILLED",
    "WILLSUPPLY",
    "LOANED",
    "LOANED_OVERDUE",
    "LOANED_RECALLED",
    "SHIPS_ON_CANCEL",
)
TOKEN = re.compile(r"#([A-Z_]+(?:,[A-Z_]+)*)#")


def schema() -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(XSD), parser))


@dataclass(frozen=True)
class Received:
    """One message libgate POSTed to the mock."""

    message: Message
    xml: bytes
    at: float


@dataclass
class Transaction:
    """The mock's side of one request it supplies (or refuses)."""

    request: Request
    supplier: AgencyId
    scenario: str
    number: str  # the mock's own supplyingAgencyRequestId
    shipped: bool = False
    renewed: bool = False
    due: datetime | None = None


@dataclass
class MockPartner:
    """Serve on 127.0.0.1:`port` once started; answer libgate at `peer_url`."""

    port: int
    peer_url: str
    received: list[Received] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    transactions: dict[tuple[str, str], Transaction] = field(default_factory=dict)
    sent: list[tuple[Message, ReceivedConfirmation]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.schema = schema()
        self.sequence = 0
        self.asked: dict[str, int] = {}  # requestingAgencyRequestId → requests received
        self.server: ThreadingHTTPServer | None = None
        self.workers: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/iso18626"

    # --- running -------------------------------------------------------------------------------

    def start(self) -> None:
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("content-length") or 0)
                answer = mock.answer(self.rfile.read(length))
                self.send_response(200)
                self.send_header("content-type", "application/xml; charset=UTF-8")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        for worker in self.workers:
            worker.join(timeout=10)

    # --- what libgate sends ----------------------------------------------------------------------

    def valid(self, data: bytes, what: str) -> bool:
        try:
            document = etree.fromstring(data)
        except etree.XMLSyntaxError as error:
            self.invalid.append(f"{what}: not XML: {error}")
            return False
        if not self.schema.validate(document):
            self.invalid.append(f"{what}: {self.schema.error_log}")
            return False
        return True

    def answer(self, data: bytes) -> bytes:
        """The confirmation of one POST from libgate (and, as a supplier, what follows it)."""
        now = datetime.now(UTC)
        with self.lock:
            if not self.valid(data, "message from libgate"):
                error = Confirmation.error(ErrorType.BADLY_FORMED_MESSAGE, "not valid v1.2")
                return write_confirmation(None, ConfirmationHeader(), error, now)
            try:
                message = read_message(data, MAX_BYTES)
            except MessageError as error:
                self.invalid.append(f"message from libgate: {error}")
                return write_confirmation(error.kind, error.header, error.confirmation, now)
            self.received.append(Received(message, data, time.monotonic()))
            follow = self.as_supplier(message)
        if follow is not None:
            worker = threading.Thread(target=self.later, args=(follow,), daemon=True)
            self.workers.append(worker)
            worker.start()
        return write_confirmation(
            MessageKind.of(message),
            ConfirmationHeader.echoing(message.header),
            Confirmation.accepted(),
            now,
            reason_for_message=getattr(message, "reason_for_message", None),
            action=getattr(message, "action", None),
        )

    def later(self, messages: Callable[[], list[SupplyingAgencyMessage]]) -> None:
        time.sleep(ANSWER_DELAY)
        with self.lock:
            answers = messages()
        for message in answers:
            confirmation = self.send(message)
            if not confirmation.confirmation.ok:
                self.invalid.append(f"libgate refused {message}: {confirmation.confirmation}")

    # --- the supplier --------------------------------------------------------------------------

    def as_supplier(self, message: Message) -> Callable[[], list[SupplyingAgencyMessage]] | None:
        if isinstance(message, Request):
            return self.on_request(message)
        if isinstance(message, RequestingAgencyMessage):
            key = (
                str(message.header.supplying_agency),
                message.header.requesting_agency_request_id,
            )
            found = self.transactions.get(key)
            if found is None:
                return None
            return lambda: self.on_action(found, message.action)
        return None  # a SupplyingAgencyMessage: libgate answers our request (kept in received)

    def on_request(self, request: Request) -> Callable[[], list[SupplyingAgencyMessage]]:
        request_id = request.header.requesting_agency_request_id
        turn = self.asked.get(request_id, 0)
        self.asked[request_id] = turn + 1
        chosen = scenario_of(request, turn)
        assert request.header.supplying_agency is not None
        supplier = request.header.supplying_agency
        self.sequence += 1
        transaction = Transaction(request, supplier, chosen, f"MOCK-{self.sequence}")
        self.transactions[(str(supplier), request_id)] = transaction
        return lambda: self.on_new(transaction)

    def on_new(self, t: Transaction) -> list[SupplyingAgencyMessage]:
        first = ReasonForMessage.REQUEST_RESPONSE
        change = ReasonForMessage.STATUS_CHANGE
        if t.scenario == "UNFILLED":
            return [self.sam(t, first, Status.UNFILLED, reason_unfilled="NotHeld")]
        answers = [self.sam(t, first, Status.WILL_SUPPLY)]
        if t.scenario.startswith("LOANED"):
            answers.append(self.ship(t))
        if t.scenario == "LOANED_OVERDUE":
            answers.append(self.sam(t, change, Status.OVERDUE, due=t.due))
        if t.scenario == "LOANED_RECALLED":
            answers.append(self.sam(t, change, Status.RECALLED, due=t.due))
        return answers

    def ship(self, t: Transaction) -> SupplyingAgencyMessage:
        t.shipped = True
        t.due = (datetime.now(UTC) + timedelta(days=28)).replace(microsecond=0)
        return self.sam(t, ReasonForMessage.STATUS_CHANGE, Status.LOANED, due=t.due)

    def on_action(self, t: Transaction, action: Action) -> list[SupplyingAgencyMessage]:
        if action is Action.CANCEL:
            if t.scenario == "SHIPS_ON_CANCEL" and not t.shipped:
                self.ship(t)  # already in the post
            if t.shipped:
                return [
                    self.sam(
                        t, ReasonForMessage.CANCEL_RESPONSE, Status.LOANED, answer=False, due=t.due
                    )
                ]
            return [self.sam(t, ReasonForMessage.CANCEL_RESPONSE, Status.CANCELLED, answer=True)]
        if action is Action.RENEW:
            if t.renewed or not t.shipped or t.due is None:
                return [self.sam(t, ReasonForMessage.RENEW_RESPONSE, Status.LOANED, answer=False)]
            t.renewed = True
            t.due = t.due + timedelta(days=14)
            return [
                self.sam(t, ReasonForMessage.RENEW_RESPONSE, Status.LOANED, answer=True, due=t.due)
            ]
        if action is Action.SHIPPED_RETURN:
            return [self.sam(t, ReasonForMessage.STATUS_CHANGE, Status.LOAN_COMPLETED)]
        if action is Action.STATUS_REQUEST:
            status = Status.LOANED if t.shipped else Status.WILL_SUPPLY
            return [self.sam(t, ReasonForMessage.STATUS_REQUEST_RESPONSE, status, due=t.due)]
        return []  # Received, Notification: recorded and confirmed

    def sam(
        self,
        t: Transaction,
        reason: ReasonForMessage,
        status: Status,
        *,
        answer: bool | None = None,
        due: datetime | None = None,
        reason_unfilled: str = "",
    ) -> SupplyingAgencyMessage:
        return SupplyingAgencyMessage(
            header=Header(
                requesting_agency=t.request.header.requesting_agency,
                supplying_agency=t.supplier,
                timestamp=datetime.now(UTC),
                requesting_agency_request_id=t.request.header.requesting_agency_request_id,
                supplying_agency_request_id=t.number,
            ),
            reason_for_message=reason,
            status=status,
            last_change=datetime.now(UTC),
            answer_yes_no=answer,
            note=self.note(f"{t.scenario} {status.value}"),
            reason_unfilled=reason_unfilled,
            due_date=due,
        )

    def note(self, text: str) -> str:
        """ReShare's habit: a sequence token before the text."""
        with self.lock:
            self.sequence += 1
            return f"#seq:{self.sequence}# {text}"

    # --- the requester -------------------------------------------------------------------------

    def send(self, message: Message) -> ReceivedConfirmation:
        """POST `message` to libgate; its confirmation, checked against the XSD."""
        data = self.post(write_message(message))
        self.valid(data, f"confirmation of {type(message).__name__}")
        confirmation = read_confirmation(data, MAX_BYTES)
        with self.lock:
            self.sent.append((message, confirmation))
        return confirmation

    def post(self, data: bytes, content_type: str = "application/xml") -> bytes:
        parts = urlsplit(self.peer_url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        try:
            connection.request("POST", parts.path, data, {"content-type": content_type})
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200, (response.status, body)
            return body
        finally:
            connection.close()

    # --- what the tests read -------------------------------------------------------------------

    def messages(self, request_id: str, kind: type | None = None) -> list[Message]:
        """What libgate sent about `request_id`, in order (of `kind` only, when given)."""
        with self.lock:
            return [
                r.message
                for r in self.received
                if r.message.header.requesting_agency_request_id == request_id
                and (kind is None or isinstance(r.message, kind))
            ]


def scenario_of(request: Request, turn: int) -> str:
    """illmock's choice: supplierUniqueRecordId names the scenario, else a note token; a list
    in the token gives each lender asked its own (the `turn`-th)."""
    record = request.bibliographic.supplier_unique_record_id.strip().upper()
    if record in SCENARIOS:
        return record
    found = TOKEN.search(request.service.note)
    if found:
        names = found.group(1).split(",")
        chosen = names[min(turn, len(names) - 1)]
        if chosen in SCENARIOS:
            return chosen
    return "LOANED"


@contextmanager
def running(mock: MockPartner) -> Iterator[MockPartner]:
    mock.start()
    try:
        yield mock
    finally:
        mock.stop()


def requesting_header(request_id: str, requester: str, supplier: str, number: str = "") -> Header:
    return Header(
        requesting_agency=AgencyId.parse(requester),
        supplying_agency=AgencyId.parse(supplier),
        timestamp=datetime.now(UTC).replace(microsecond=0),
        requesting_agency_request_id=request_id,
        supplying_agency_request_id=number,
    )


def with_id(request: Request, request_id: str) -> Request:
    return replace(request, header=replace(request.header, requesting_agency_request_id=request_id))
