"""Interlibrary loan over ISO 18626: the one facade the ill/ front-end and the staff CLI call.

Incoming messages (what the HTTP resource calls) answer at once with a `Confirmation`; what
the engine has to say to the partner after deciding goes into the ILL outbox (ill_outbox.py),
which the front-end's sender delivers. Staff actions answer with an `IllResult`.

Where the rules live:
- ill_lending.py: a partner's request (I1, I2, I3, I6, I7), its actions, ship, unfill, overdue
- ill_borrowing.py: our reader's request (I3, I4, I7), the rota, receive, return, notices, fees
- ill_desk.py: what a desk checkin means to either role
- ill_states.py: the two state machines as tables
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.circulation import ill_borrowing, ill_lending, ill_storage, storage
from gateway.circulation.clock import Clock, stamp
from gateway.circulation.core import EngineCore
from gateway.circulation.engine import Engine
from gateway.circulation.ill_borrowing import IllForm
from gateway.circulation.ill_common import IllContext, IllResult
from gateway.circulation.ill_storage import IllMessageRow, IllRequest
from gateway.circulation.ill_types import (
    Confirmation,
    Request,
    RequestingAgencyMessage,
    SupplyingAgencyMessage,
)
from gateway.config import IllSettings

__all__ = ["IllForm", "IllRequestView", "IllResult", "IllStats", "InterlibraryLoan"]


@dataclass(frozen=True)
class IllRequestView:
    """A request with its message history, as staff and the JSON output see it."""

    request: IllRequest
    messages: tuple[IllMessageRow, ...]


@dataclass(frozen=True)
class IllStats:
    """One line of the statistics (费用统计): requests and fees by role, partner and status."""

    role: str
    partner: str
    status: str
    requests: int
    fees: int  # minor units


class InterlibraryLoan:
    def __init__(self, engine: Engine, settings: IllSettings, clock: Clock | None = None) -> None:
        self._engine = engine
        self._clock = clock or engine.clock
        self._ctx = self._context(settings)

    def _context(self, settings: IllSettings) -> IllContext:
        return IllContext(
            EngineCore(self._engine.store, self._engine.policy, self._clock), settings
        )

    def reconfigure(self, settings: IllSettings) -> None:
        """Take `settings` (partners, lending terms) and the engine's policy now in force, from
        the next message or action on (a config reload): one new context, swapped whole."""
        self._ctx = self._context(settings)

    @property
    def settings(self) -> IllSettings:
        return self._ctx.settings

    # --- incoming messages (the ill/ front-end) ------------------------------------------------

    def on_request(self, message: Request, raw_xml: str | None = None) -> Confirmation:
        return ill_lending.on_request(self._ctx, message, raw_xml)

    def on_supplying_agency_message(
        self, message: SupplyingAgencyMessage, raw_xml: str | None = None
    ) -> Confirmation:
        return ill_borrowing.on_supplying_agency_message(self._ctx, message, raw_xml)

    def on_requesting_agency_message(
        self, message: RequestingAgencyMessage, raw_xml: str | None = None
    ) -> Confirmation:
        return ill_lending.on_action(self._ctx, message, raw_xml)

    # --- as lender -----------------------------------------------------------------------------

    def ship(self, number: str) -> IllResult:
        return ill_lending.ship(self._ctx, number)

    def unfill(self, number: str, reason_code: str, note: str = "") -> IllResult:
        return ill_lending.unfill(self._ctx, number, reason_code, note)

    def process(self, as_of: datetime | None = None) -> list[str]:
        """Overdue to every partner whose loan's due date passed (once each); the numbers."""
        return ill_lending.process_overdue(self._ctx, as_of or self._ctx.core.clock.now())

    # --- as borrower ---------------------------------------------------------------------------

    def request(self, patron_barcode: str, form: IllForm) -> IllResult:
        return ill_borrowing.file_request(self._ctx, patron_barcode, form)

    def check_request(self, patron_barcode: str, form: IllForm) -> IllResult:
        """The checks `request` runs (I4, I7), with every reason, filing nothing: for a
        form's confirmation page."""
        return ill_borrowing.check_request(self._ctx, patron_barcode, form)

    def receive(self, number: str) -> IllResult:
        return ill_borrowing.receive(self._ctx, number)

    def return_to_lender(self, number: str) -> IllResult:
        return ill_borrowing.ship_return(self._ctx, number)

    def cancel(self, number: str) -> IllResult:
        return ill_borrowing.cancel(self._ctx, number)

    def renew(self, number: str) -> IllResult:
        return ill_borrowing.renew(self._ctx, number)

    def confirm_reader(self, patron_barcode: str) -> IllResult:
        return ill_borrowing.set_reader(self._ctx, patron_barcode, "confirmed")

    def revoke_reader(self, patron_barcode: str) -> IllResult:
        return ill_borrowing.set_reader(self._ctx, patron_barcode, "revoked")

    # --- views ---------------------------------------------------------------------------------

    def list_requests(self, role: str | None = None, status: str | None = None) -> list[IllRequest]:
        with self._ctx.core.store.read() as tx:
            return ill_storage.requests(tx, role, status)

    def show(self, number: str) -> IllRequestView | None:
        """A request by our number, or a partner's request by its own id."""
        with self._ctx.core.store.read() as tx:
            row = ill_storage.request_by_number(tx, number)
            if row is None:
                row = next(
                    (
                        r
                        for r in ill_storage.requests(tx, "lender")
                        if r.requesting_agency_request_id == number
                    ),
                    None,
                )
            if row is None:
                return None
            return IllRequestView(row, tuple(ill_storage.messages_of(tx, row.id)))

    def requests_of(self, patron_barcode: str) -> list[IllRequest]:
        """A reader's own requests (申请单查询), newest first."""
        with self._ctx.core.store.read() as tx:
            return ill_storage.requests_of_reader(tx, patron_barcode)

    def request_of(self, patron_barcode: str, number: str) -> IllRequestView | None:
        """One of a reader's own requests by our number; None for any other request (another
        reader's, a partner's, none), so a reader sees only their own."""
        with self._ctx.core.store.read() as tx:
            row = ill_storage.request_by_number(tx, number)
            if row is None or row.role != "borrower" or row.patron_pk is None:
                return None
            if storage.patron_by_pk(tx, row.patron_pk).barcode != patron_barcode:
                return None
            return IllRequestView(row, tuple(ill_storage.messages_of(tx, row.id)))

    def stats(self, start: datetime | None = None, end: datetime | None = None) -> list[IllStats]:
        with self._ctx.core.store.read() as tx:
            rows = ill_storage.stats(
                tx, stamp(start) if start else None, stamp(end) if end else None
            )
        return [IllStats(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in rows]
