"""The ILL outbox: claims with a lease, order per request, back-off, nothing lost (I5)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway.circulation.clock import parse_stamp
from gateway.circulation.ill_outbox import (
    claim_due,
    pending,
    record_delivered,
    record_failed,
    record_sent_xml,
)
from gateway.circulation.ill_types import Confirmation, ErrorType, Status
from gateway.store import Store
from tests.ill_support import PKU, SHL, TSU, URLS, library_ill, partner_request

LEASE = timedelta(minutes=5)


@pytest.fixture
def queued(store: Store, tmp_path: Path):
    """Two requests from two partners: PKU's has two messages (WillSupply, Loaned)."""
    engine, clock, ill = library_ill(store, tmp_path, SHL, [PKU, TSU], first_retry_seconds=30)
    assert ill.on_request(partner_request("PKU-1", record_id="T-MING")).ok
    assert ill.ship("ST00000001").ok
    assert ill.on_request(partner_request("TSU-1", record_id="T-ONE", requester=TSU)).ok
    return clock, ill, store


def test_one_request_goes_out_in_order(queued) -> None:
    clock, _ill, store = queued
    now = clock.now()
    first = claim_due(store, now, "a", LEASE, 10)
    assert [(m.url, m.message.status) for m in first] == [
        (URLS[PKU], Status.WILL_SUPPLY),
        (URLS[TSU], Status.UNFILLED),
    ]
    assert claim_due(store, now, "b", LEASE, 10) == []  # claimed, and Loaned waits its turn
    record_failed(store, first[0].id, now, "connection refused")
    # WillSupply failed: Loaned still waits behind it, even when its own time has come.
    assert claim_due(store, now + timedelta(seconds=10), "b", LEASE, 10) == []
    retried = claim_due(store, now + timedelta(seconds=30), "b", LEASE, 10)
    assert [(m.id, m.attempts) for m in retried] == [(first[0].id, 1)]
    record_delivered(store, retried[0].id, now, Confirmation.accepted())
    [loaned] = claim_due(store, now + timedelta(seconds=30), "b", LEASE, 10)
    assert loaned.message.status is Status.LOANED


def test_a_lease_that_ends_lets_another_sender_take_over(queued) -> None:
    clock, _ill, store = queued
    now = clock.now()
    taken = claim_due(store, now, "a", LEASE, 1)
    assert len(taken) == 1
    others = claim_due(store, now, "b", LEASE, 10)
    assert taken[0].id not in [m.id for m in others]
    again = claim_due(store, now + LEASE, "b", LEASE, 10)
    assert taken[0].id in [m.id for m in again]


def test_backoff_doubles_to_an_hour_and_nothing_is_dropped(queued) -> None:
    clock, _ill, store = queued
    now = clock.now()
    [message] = claim_due(store, now, "a", LEASE, 1)
    delays = []
    for _ in range(10):
        record_failed(store, message.id, now, "HTTP 503")
        entry = next(e for e in pending(store) if e.id == message.id)
        delays.append(int((parse_stamp(entry.next_attempt_at) - now).total_seconds()))
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert entry.state == "queued" and entry.attempts == 10 and entry.last_error == "HTTP 503"


def test_max_attempts_ends_in_failed(store: Store, tmp_path: Path) -> None:
    _engine, clock, ill = library_ill(store, tmp_path, SHL, [PKU], max_attempts=2)
    assert ill.on_request(partner_request("PKU-1", record_id="T-MING")).ok
    now = clock.now()
    [message] = claim_due(store, now, "a", LEASE, 1)
    record_failed(store, message.id, now, "timeout")
    record_failed(store, message.id, now, "timeout")
    assert [e.state for e in pending(store)] == ["failed"]
    assert claim_due(store, now + timedelta(days=1), "a", LEASE, 10) == []


def test_an_error_confirmation_is_delivered_and_shown_in_the_history(queued) -> None:
    clock, ill, store = queued
    [message, _other] = claim_due(store, clock.now(), "a", LEASE, 10)
    record_delivered(
        store,
        message.id,
        clock.now(),
        Confirmation.error(ErrorType.UNRECOGNISED_DATA_VALUE, "requestingAgencyRequestId"),
    )
    history = ill.show("ST00000001").messages
    assert history[-1].kind == "Confirmation" and history[-1].status == "ERROR"
    assert "UnrecognisedDataValue" in history[-1].note


def test_the_sent_xml_can_be_kept_in_the_history(queued) -> None:
    clock, _ill, store = queued
    [first, _other] = claim_due(store, clock.now(), "a", LEASE, 10)
    record_sent_xml(store, first.id, "<ISO18626Message/>")
    with store.read() as tx:
        kept = tx.scalar("SELECT raw_xml FROM ill_messages WHERE outbox_pk = ?", (first.id,))
    assert kept == "<ISO18626Message/>"


def test_a_sender_whose_lease_ran_out_records_nothing(queued) -> None:
    """Sender a's lease ends mid-POST and b takes the message over: a's late outcome (either
    kind) changes nothing; b's is what counts. Unnamed callers record as before."""
    clock, ill, store = queued
    now = clock.now()
    [slow] = claim_due(store, now, "a", LEASE, 1)
    [taken] = claim_due(store, now + LEASE, "b", LEASE, 1)
    assert taken.id == slow.id
    record_failed(store, slow.id, now + LEASE, "timeout", sender="a")
    refused = Confirmation.error(ErrorType.UNRECOGNISED_DATA_VALUE, "late")
    record_delivered(store, slow.id, now + LEASE, refused, sender="a")
    [entry] = [e for e in pending(store) if e.id == slow.id]
    assert (entry.state, entry.attempts, entry.last_error) == ("queued", 0, "")
    assert [m.kind for m in ill.show("ST00000001").messages] == [
        "Request",
        "SupplyingAgencyMessage",
        "SupplyingAgencyMessage",
    ]
    record_delivered(store, taken.id, now + LEASE, Confirmation.accepted(), sender="b")
    assert slow.id not in [e.id for e in pending(store)]
