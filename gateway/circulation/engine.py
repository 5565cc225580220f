"""The circulation engine: the one facade every channel calls (SIP2, SRU, Z39.50, the staff
CLI, and later ILL and the web portal). None of them decides a rule: each action here runs its
declared checks (checks.py), and answers with its own result type (results.py).

Each action opens one write transaction, locks what its decision reads (title, then copy,
then patron), runs every check of its list, and either changes nothing (refused, with every
reason found) or applies the change, its audit event and its notices together. Time comes
only from the injected clock.

Where the rules live:
- loans.py: checkout (R1, R14), checkin (R6, R7, offline returns), renew (R5), renew all
- holds.py: place (R1-R4, R15) and its preview, cancel (R12), hold status, trap for the next
  hold (R6, R9, R10)
- expiry.py: R8, R9, R11
- fees.py: fees and payments (currency, overpayment, idempotent resends)
- readers.py: account summary, PIN, block and lift a block (desk only)
- pin_guard.py: a terminal's PIN check behind the back-off kept in the store
- items.py: item information, availability (R2, through the policy's predicate)
- withdrawal.py: copies and titles leaving the catalogue (deleted: loans ended, holds settled)
- checks.py: every check, and the list each action runs
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from gateway.circulation import expiry, fees, holds, items, loans, readers, withdrawal
from gateway.circulation.clock import Clock
from gateway.circulation.core import EngineCore
from gateway.circulation.pin_guard import PinCheckResult, PinSource, check_patron_pin
from gateway.circulation.policy import Policy
from gateway.circulation.results import (
    BlockResult,
    CancelResult,
    CheckinResult,
    CheckoutResult,
    CopyAvailability,
    EnableResult,
    ExpiryReport,
    FeeResult,
    HoldResult,
    ItemUpdateResult,
    PaymentResult,
    RenewAllResult,
    RenewResult,
    Result,
    TitleAvailability,
)
from gateway.circulation.states import Channel
from gateway.circulation.views import FeeView, ItemView, PatronSummary
from gateway.circulation.withdrawal import Withdrawal
from gateway.store import Store, Transaction

DESK = Channel.DESK
SELF_CHECK = Channel.SELF_CHECK

__all__ = [
    "DESK",
    "SELF_CHECK",
    "BlockResult",
    "CancelResult",
    "Channel",
    "CheckinResult",
    "CheckoutResult",
    "CopyAvailability",
    "EnableResult",
    "Engine",
    "ExpiryReport",
    "FeeResult",
    "HoldResult",
    "ItemUpdateResult",
    "PaymentResult",
    "RenewAllResult",
    "RenewResult",
    "Result",
    "TitleAvailability",
    "Withdrawal",
]


class Engine:
    def __init__(self, store: Store, policy: Policy, clock: Clock) -> None:
        self._core = EngineCore(store, policy, clock)

    @property
    def store(self) -> Store:
        return self._core.store

    @property
    def policy(self) -> Policy:
        return self._core.policy

    @property
    def clock(self) -> Clock:
        return self._core.clock

    def use_policy(self, policy: Policy) -> None:
        """Decide with `policy` from the next action on (a config reload). Each action reads
        `_core` once when it starts, so one transaction never sees two policies; the swap is
        one attribute assignment, atomic for the engine's threads."""
        self._core = replace(self._core, policy=policy)

    # --- loans ---------------------------------------------------------------------------------

    def checkout(
        self, patron_barcode: str, item_barcode: str, channel: Channel = DESK
    ) -> CheckoutResult:
        return loans.checkout(self._core, patron_barcode, item_barcode, Channel(channel))

    def checkin(
        self, item_barcode: str, channel: Channel = DESK, *, offline: bool = False
    ) -> CheckinResult:
        """Return a copy. `offline`: a self-check machine reports a return it took while
        offline (SIP2 09 no-block Y); the book is in its bin, so it is recorded and trapped for
        a waiting hold (R6) rather than refused (R7)."""
        return loans.checkin(self._core, item_barcode, Channel(channel), offline)

    def renew(self, patron_barcode: str, item_barcode: str, channel: Channel = DESK) -> RenewResult:
        return loans.renew(self._core, patron_barcode, item_barcode, Channel(channel))

    def renew_all(self, patron_barcode: str, channel: Channel = DESK) -> RenewAllResult:
        return loans.renew_all(self._core, patron_barcode, Channel(channel))

    # --- holds ---------------------------------------------------------------------------------

    def place_hold(
        self,
        patron_barcode: str,
        *,
        record: tuple[str, str] | None = None,
        item_barcode: str | None = None,
        channel: Channel = DESK,
    ) -> HoldResult:
        """A title-level hold, on a record (database, record id) or the title of a copy."""
        return holds.place_hold(self._core, patron_barcode, record, item_barcode, Channel(channel))

    def hold_preview(
        self,
        patron_barcode: str,
        *,
        record: tuple[str, str],
        channel: Channel = Channel.WEB,
    ) -> HoldResult:
        """What place_hold would answer now (the same checks, every refusal), changing
        nothing, with what the hold would get: its queue position, its likely pickup desk
        (R10) and its expiry (R8), for a confirmation step."""
        return holds.hold_preview(self._core, patron_barcode, record, Channel(channel))

    def cancel_hold(
        self,
        patron_barcode: str,
        *,
        record: tuple[str, str] | None = None,
        item_barcode: str | None = None,
        hold_id: int | None = None,
        channel: Channel = DESK,
    ) -> CancelResult:
        """Cancel the reader's open hold on a title (a record, or the title of a copy), or
        the hold `hold_id`, which must be an open hold of this reader (else refused, R12,
        as no such hold). Give the id or the title, not both (ValueError)."""
        return holds.cancel_hold(
            self._core, patron_barcode, record, item_barcode, hold_id, Channel(channel)
        )

    def hold_status(
        self,
        patron_barcode: str,
        *,
        record: tuple[str, str] | None = None,
        item_barcode: str | None = None,
    ) -> HoldResult:
        """The reader's open hold on a title (a record, or the title of a copy) as it stands;
        refused (hold_unknown, R12) when there is none."""
        return holds.hold_status(self._core, patron_barcode, record, item_barcode)

    def pickup_desks(self, patron_barcode: str) -> dict[int, str]:
        """Hold id → the desk each of the reader's open holds is (or will be) picked up at."""
        return holds.pickup_desks(self._core, patron_barcode)

    # --- expiry --------------------------------------------------------------------------------

    def process_expiry(self, as_of: datetime | None = None) -> ExpiryReport:
        return expiry.process_expiry(self._core, as_of)

    # --- copies --------------------------------------------------------------------------------

    def availability(self, record_pks: list[int]) -> dict[int, TitleAvailability]:
        return items.availability(self._core, record_pks)

    def item_info(self, item_barcode: str) -> ItemView | None:
        return items.item_info(self._core, item_barcode)

    def update_item_properties(
        self, item_barcode: str, properties: str, channel: Channel = DESK
    ) -> ItemUpdateResult:
        return items.update_item_properties(self._core, item_barcode, properties, Channel(channel))

    def withdraw(
        self,
        tx: Transaction,
        *,
        item_pks: list[int] | tuple[int, ...] = (),
        record_pks: list[int] | tuple[int, ...] = (),
        force: bool = False,
        channel: Channel = DESK,
    ) -> Withdrawal:
        """May these copies, and these titles with all their copies, leave the catalogue? In
        the catalogue's transaction (it deletes what may go); with `force`, loans are ended
        and holds settled first (withdrawal.py)."""
        return withdrawal.withdraw(
            self._core,
            tx,
            self.clock.now(),
            item_pks=item_pks,
            record_pks=record_pks,
            force=force,
            channel=Channel(channel),
        )

    # --- fees ----------------------------------------------------------------------------------

    def add_fee(
        self,
        patron_barcode: str,
        amount: int,
        kind: str = "other",
        description: str = "",
        currency: str | None = None,
        channel: Channel = DESK,
    ) -> FeeResult:
        return fees.add_fee(
            self._core, patron_barcode, amount, kind, description, currency, Channel(channel)
        )

    def pay_fee(
        self,
        patron_barcode: str,
        amount: int,
        *,
        currency: str | None = None,
        fee_id: int | None = None,
        payment_type: str = "cash",
        transaction_id: str = "",
        channel: Channel = DESK,
    ) -> PaymentResult:
        """Pay `amount` minor units; `currency` (None: the library's) must be the library's."""
        return fees.pay_fee(
            self._core,
            patron_barcode,
            amount,
            currency=currency,
            fee_id=fee_id,
            payment_type=payment_type,
            transaction_id=transaction_id,
            channel=Channel(channel),
        )

    def fees_of(self, patron_barcode: str) -> list[FeeView]:
        return fees.fees_of(self._core, patron_barcode)

    # --- readers -------------------------------------------------------------------------------

    def patron_summary(self, patron_barcode: str) -> PatronSummary | None:
        return readers.patron_summary(self._core, patron_barcode)

    def verify_patron_pin(self, patron_barcode: str, pin: str) -> bool | None:
        """The PIN alone, with no back-off: for callers that are not a terminal."""
        return readers.verify_patron_pin(self._core, patron_barcode, pin)

    def check_patron_pin(self, patron_barcode: str, pin: str, source: PinSource) -> PinCheckResult:
        """A terminal's PIN check, behind the back-off every process shares (pin_guard.py)."""
        return check_patron_pin(self._core, patron_barcode, pin, source)

    def block_patron(
        self, patron_barcode: str, message: str = "", channel: Channel = DESK
    ) -> BlockResult:
        return readers.block_patron(self._core, patron_barcode, message, Channel(channel))

    def enable_patron(self, patron_barcode: str, channel: Channel = DESK) -> EnableResult:
        """Lift a block; refused (enable_at_desk) on any channel but the desk."""
        return readers.enable_patron(self._core, patron_barcode, Channel(channel))
