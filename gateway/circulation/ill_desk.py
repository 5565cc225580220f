"""What a desk checkin means to interlibrary loan, called once from the checkin path
(loans.checkin) in the checkin's transaction.

- A copy we lent to a partner (I6) comes home: the partner's loan is complete and LoanCompleted
  is queued; a copy set aside but never shipped was taken back, and the partner is told it is
  unfilled. Either way the checkin goes on as for any copy (R6: trapped for the oldest hold).
- A copy we borrowed comes back from our reader: it waits to go back to its lender, never to
  our shelf or another reader's hold.
"""

from __future__ import annotations

from datetime import datetime

from gateway.circulation import ill_borrowing, ill_lending, ill_storage
from gateway.circulation.ill_states import (
    LENDER_OPEN,
    BorrowerState,
    LenderEvent,
    LenderState,
    lender_step,
)
from gateway.circulation.ill_types import ReasonUnfilled
from gateway.circulation.storage import Copy, Loan
from gateway.store import Transaction


def copy_returned(tx: Transaction, copy: Copy, loan: Loan, now: datetime) -> bool:
    """Act on a checked-in copy's ILL request, if it has one; True when the copy is a borrowed
    one that must not be shelved or trapped."""
    lent = ill_storage.open_request_of_item(tx, copy.pk, "lender", tuple(LENDER_OPEN))
    if lent is not None:
        # Again under the request's lock, as ship, unfill and the partner's actions read it:
        # one of them may have moved it since (a ship committed now makes this LoanCompleted,
        # not the Unfilled of a copy taken back before shipping).
        lent = ill_storage.request_by_pk(tx, lent.id, lock=True)
    if lent is not None and lent.state in LENDER_OPEN and lent.loan_id == loan.id:
        if lent.state == LenderState.WILL_SUPPLY:
            withdrawn = ReasonUnfilled.NOT_AVAILABLE_FOR_ILL.value
            step = lender_step(lent.state, LenderEvent.WITHDRAWN)
            ill_lending.advance(tx, lent, step, now, code=withdrawn, changes={"reason": withdrawn})
        else:
            ill_lending.advance(tx, lent, lender_step(lent.state, LenderEvent.CHECKIN), now)
        return False
    borrowed = ill_storage.open_request_of_item(
        tx, copy.pk, "borrower", (BorrowerState.RECEIVED.value,)
    )
    if borrowed is not None:
        ill_borrowing.reader_returned(tx, borrowed, copy.pk, now)
        return True
    return False
