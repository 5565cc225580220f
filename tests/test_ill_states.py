"""The two ILL state tables: every transition walked, every other (state, event) refused."""

from __future__ import annotations

import pytest

from gateway.circulation.ill_states import (
    BORROWER,
    BORROWER_EVENT_OF_STATUS,
    LENDER,
    BorrowerEvent,
    BorrowerState,
    IllegalTransition,
    LenderEvent,
    LenderState,
    borrower_step,
    lender_step,
)
from gateway.circulation.ill_types import Action, Status


@pytest.mark.parametrize(("state", "event"), sorted(LENDER))
def test_every_lender_transition_steps(state: LenderState, event: LenderEvent) -> None:
    transition = lender_step(state, event)
    assert transition is LENDER[(state, event)]
    LenderState(transition.next)  # lands on a state of the same machine
    if transition.send is not None:
        # A lender only ever sends supplyingAgencyMessages.
        assert transition.send.kind == "SupplyingAgencyMessage"
        assert transition.send.reason is not None


@pytest.mark.parametrize(("state", "event"), sorted(BORROWER))
def test_every_borrower_transition_steps(state: BorrowerState, event: BorrowerEvent) -> None:
    transition = borrower_step(state, event)
    assert transition is BORROWER[(state, event)]
    BorrowerState(transition.next)
    if transition.send is not None:
        assert transition.send.kind in ("Request", "RequestingAgencyMessage")


def test_every_illegal_lender_event_is_refused() -> None:
    refused = 0
    for state in LenderState:
        for event in LenderEvent:
            if (state, event) in LENDER:
                continue
            with pytest.raises(IllegalTransition):
                lender_step(state, event)
            refused += 1
    assert refused == len(LenderState) * len(LenderEvent) - len(LENDER)


def test_every_illegal_borrower_event_is_refused() -> None:
    for state in BorrowerState:
        for event in BorrowerEvent:
            if (state, event) not in BORROWER:
                with pytest.raises(IllegalTransition):
                    borrower_step(state, event)


def test_every_state_is_reachable_and_terminal_ones_only_answer() -> None:
    for table, states, start in (
        (LENDER, LenderState, LenderState.NEW),
        (BORROWER, BorrowerState, BorrowerState.NEW),
    ):
        reached = {start}
        frontier = [start]
        while frontier:
            state = frontier.pop()
            for (source, _event), transition in table.items():
                if source == state and transition.next not in reached:
                    reached.add(states(transition.next))
                    frontier.append(states(transition.next))
        assert reached == set(states)


def test_lender_messages_follow_the_choreography() -> None:
    # The first answer is a RequestResponse; shipped means cancel is answered no.
    assert lender_step("new", LenderEvent.SUPPLY).send.reason == "RequestResponse"
    assert lender_step("will_supply", LenderEvent.CANCEL).send.answer is True
    assert lender_step("will_supply", LenderEvent.CANCEL).status is Status.CANCELLED
    assert lender_step("loaned", LenderEvent.CANCEL).send.answer is False
    assert lender_step("loaned", LenderEvent.CANCEL).next == "loaned"
    assert lender_step("returning", LenderEvent.CHECKIN).status is Status.LOAN_COMPLETED
    with pytest.raises(IllegalTransition):
        lender_step("will_supply", LenderEvent.RENEW_YES)  # nothing lent yet
    # Our borrower's Received may come before it heard Loaned: recorded, nothing sent.
    received = lender_step("will_supply", LenderEvent.RECEIVED)
    assert (received.next, received.send, received.status) == ("will_supply", None, None)
    # Nothing shipped, nothing to release: a cancel is yes.
    for state in ("retry_possible", "unfilled"):
        cancel = lender_step(state, LenderEvent.CANCEL)
        assert (cancel.next, cancel.status) == ("cancelled", Status.CANCELLED)
        assert cancel.send is not None and cancel.send.answer is True
        assert cancel.send.reason == "CancelResponse"


def test_the_borrower_reads_all_twelve_statuses() -> None:
    assert set(BORROWER_EVENT_OF_STATUS) == set(Status)
    assert len(Status) == 12
    # A refused cancel (status Loaned or WillSupply) restores the request.
    assert borrower_step("cancel_pending", BorrowerEvent.LOANED).next == "shipped"
    assert borrower_step("cancel_pending", BorrowerEvent.EXPECT).next == "will_supply"
    assert borrower_step("sent", BorrowerEvent.UNFILLED_NEXT).send.kind == "Request"
    assert borrower_step("received", BorrowerEvent.SHIP_RETURN).send.action is Action.SHIPPED_RETURN
