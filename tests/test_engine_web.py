"""What the readers' portal (issue 15) asks of the engine, on both engines: the web channel in
the audit log, a hold's preview (the same checks as placing it, nothing written), cancelling a
hold by its id (only the reader's own), each copy's library (馆址), and a reader's own ILL
requests and the form's checks without filing."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.circulation.clock import stamp
from gateway.circulation.engine import Channel, Engine
from gateway.circulation.ill import IllForm, InterlibraryLoan
from gateway.circulation.reasons import reason
from gateway.circulation.states import HoldState
from gateway.store import Store
from tests.circulation_support import FixedClock, build_library
from tests.ill_support import PKU, SHL, library_ill, partner_request

WRITTEN = (
    "holds",
    "loans",
    "circulation_events",
    "notices",
    "fees",
    "ill_requests",
    "ill_outbox",
    "ill_messages",
)


@pytest.fixture
def library(store: Store, tmp_path: Path) -> tuple[Engine, FixedClock, Store]:
    engine, clock = build_library(store, tmp_path)
    return engine, clock, store


def codes(outcome) -> list[str]:
    return [r.code for r in outcome.reasons]


def counts(store: Store) -> dict[str, int]:
    """How many rows each table an action could write holds."""
    with store.read() as tx:
        return {table: int(tx.scalar(f"SELECT count(*) FROM {table}")) for table in WRITTEN}


def hold_state(store: Store, hold_id: int) -> str:
    with store.read() as tx:
        return str(tx.scalar("SELECT state FROM holds WHERE id = ?", (hold_id,)))


# --- the web channel --------------------------------------------------------------------------


def test_the_web_channel_is_recorded_on_the_hold_and_in_the_audit_log(library) -> None:
    engine, _, store = library
    assert Channel("web") is Channel.WEB
    assert engine.checkout("D", "O1").ok
    placed = engine.place_hold("A", record=("main", "T-ONE"), channel=Channel.WEB)
    assert placed.ok and placed.hold_id is not None
    assert engine.cancel_hold("A", hold_id=placed.hold_id, channel=Channel.WEB).ok
    with store.read() as tx:
        assert tx.scalar("SELECT channel FROM holds WHERE id = ?", (placed.hold_id,)) == "web"
        events = tx.execute(
            "SELECT action, channel FROM circulation_events WHERE hold_id = ? ORDER BY id",
            (placed.hold_id,),
        )
    assert [tuple(e) for e in events] == [("hold_placed", "web"), ("hold_cancelled", "web")]


# --- hold preview -----------------------------------------------------------------------------


def test_a_preview_tells_the_queue_place_and_desk_and_writes_nothing(library) -> None:
    engine, clock, store = library
    assert engine.checkout("D", "O1").ok  # T-ONE's only copy is lent: a hold may be placed
    before = counts(store)
    first = engine.hold_preview("A", record=("main", "T-ONE"))
    assert first.ok and first.reasons == ()
    assert first.patron is not None and first.patron.barcode == "A"
    assert first.record is not None and first.record.record_id == "T-ONE"
    assert (first.queue_position, first.pickup_desk) == (1, "二楼借书处")  # 中文书库's desk
    assert first.hold_id is None and first.hold_state is None
    assert first.expires_at == stamp(clock.now() + engine.policy.request_period)  # R8
    assert counts(store) == before  # no hold, no event, no notice
    assert engine.place_hold("B", record=("main", "T-ONE")).ok
    second = engine.hold_preview("A", record=("main", "T-ONE"))
    assert second.ok and second.queue_position == 2
    placed = engine.place_hold("A", record=("main", "T-ONE"), channel=Channel.WEB)
    assert placed.ok and placed.queue_position == second.queue_position
    assert placed.pickup_desk == second.pickup_desk and placed.expires_at == second.expires_at


def suspend(store: Store, barcode: str, until: str) -> None:
    with store.write() as tx:
        tx.execute(
            "UPDATE patrons SET hold_suspended_until = ? WHERE barcode = ?", (until, barcode)
        )


def lend_t_one(engine: Engine, store: Store) -> None:
    assert engine.checkout("D", "O1").ok


def nothing(engine: Engine, store: Store) -> None:
    pass


def a_borrows_t_one(engine: Engine, store: Store) -> None:
    assert engine.checkout("A", "O1").ok


def a_holds_t_one(engine: Engine, store: Store) -> None:
    lend_t_one(engine, store)
    assert engine.place_hold("A", record=("main", "T-ONE")).ok


def a_holds_two_titles(engine: Engine, store: Store) -> None:
    for barcode in ("O1", "X1", "M1", "M2"):
        assert engine.checkout("D", barcode).ok
    assert engine.place_hold("A", record=("main", "T-ONE")).ok
    assert engine.place_hold("A", record=("main", "T-X")).ok  # 本科生 may hold 2


def a_suspended(engine: Engine, store: Store) -> None:
    lend_t_one(engine, store)
    suspend(store, "A", "2026-04-01T00:00:00Z")


def a_blocked(engine: Engine, store: Store) -> None:
    assert engine.block_patron("A", "lost card").ok


SITUATIONS = {
    # name: (what happens first, the reader, the title)
    "placeable": (lend_t_one, "A", "T-ONE"),
    "copy_on_the_shelf": (nothing, "A", "T-TWO"),
    "no_circulating_copy": (nothing, "A", "T-READ"),
    "on_loan_to_the_reader": (a_borrows_t_one, "A", "T-ONE"),
    "already_held": (a_holds_t_one, "A", "T-ONE"),
    "hold_limit": (a_holds_two_titles, "A", "T-MING"),
    "suspended": (a_suspended, "A", "T-ONE"),
    "blocked_and_copy_on_shelf": (a_blocked, "A", "T-TWO"),
    "unknown_reader": (lend_t_one, "NOBODY", "T-ONE"),
    "unknown_record": (nothing, "A", "NO-SUCH-TITLE"),
}


@pytest.mark.parametrize("situation", list(SITUATIONS))
def test_a_preview_answers_what_placing_the_hold_then_answers(library, situation: str) -> None:
    engine, _, store = library
    before_first, reader, title = SITUATIONS[situation]
    before_first(engine, store)
    before = counts(store)
    preview = engine.hold_preview(reader, record=("main", title))
    assert counts(store) == before
    placed = engine.place_hold(reader, record=("main", title), channel=Channel.WEB)
    assert (preview.ok, preview.reasons) == (placed.ok, placed.reasons)
    assert preview.record == placed.record
    if placed.ok:
        assert preview.queue_position == placed.queue_position
        assert preview.pickup_desk == placed.pickup_desk


def test_the_preview_refusals_name_every_rule_the_seed_explains(library) -> None:
    engine, _, store = library
    assert codes(engine.hold_preview("A", record=("main", "T-TWO"))) == ["copy_available"]
    assert codes(engine.hold_preview("A", record=("main", "T-READ"))) == ["title_not_holdable"]
    assert engine.checkout("A", "O1").ok
    assert codes(engine.hold_preview("A", record=("main", "T-ONE"))) == ["title_on_loan_to_you"]
    suspend(store, "B", "2026-04-01T00:00:00Z")
    assert codes(engine.hold_preview("B", record=("main", "T-ONE"))) == ["holds_suspended"]
    assert engine.block_patron("C").ok
    assert codes(engine.hold_preview("C", record=("main", "T-TWO"))) == [
        "patron_blocked",
        "copy_available",
    ]


# --- cancel a hold by its id ------------------------------------------------------------------


def test_a_reader_cancels_their_own_hold_by_its_id(library) -> None:
    engine, _, store = library
    assert engine.checkout("D", "O1").ok
    held = engine.place_hold("A", record=("main", "T-ONE"))
    assert held.hold_id is not None
    cancelled = engine.cancel_hold("A", hold_id=held.hold_id, channel=Channel.WEB)
    assert cancelled.ok and cancelled.hold_id == held.hold_id
    assert hold_state(store, held.hold_id) == HoldState.CANCELLED


def test_a_reader_cannot_cancel_another_readers_hold_by_its_id(library) -> None:
    engine, _, store = library
    assert engine.checkout("D", "O1").ok
    theirs = engine.place_hold("B", record=("main", "T-ONE"))
    assert theirs.hold_id is not None
    before = counts(store)
    refused = engine.cancel_hold("A", hold_id=theirs.hold_id, channel=Channel.WEB)
    assert not refused.ok and refused.reasons == (reason("hold_unknown"),)
    assert refused.reasons[0].rule == "R12"
    assert refused.record is None  # nor is the title of another reader's hold told
    assert hold_state(store, theirs.hold_id) == HoldState.WAITING
    assert counts(store) == before
    # Nor when A holds the same title: A's own hold is another id.
    mine = engine.place_hold("A", record=("main", "T-ONE"))
    assert mine.ok and mine.hold_id is not None
    assert codes(engine.cancel_hold("A", hold_id=theirs.hold_id)) == ["hold_unknown"]
    assert hold_state(store, theirs.hold_id) == HoldState.WAITING
    assert hold_state(store, mine.hold_id) == HoldState.WAITING


def test_a_closed_or_unknown_hold_id_is_refused_as_no_such_hold(library) -> None:
    engine, _, store = library
    assert engine.checkout("D", "O1").ok
    old = engine.place_hold("A", record=("main", "T-ONE"))
    assert old.hold_id is not None and engine.cancel_hold("A", hold_id=old.hold_id).ok
    new = engine.place_hold("A", record=("main", "T-ONE"))
    assert new.ok and new.hold_id is not None
    before = counts(store)
    assert codes(engine.cancel_hold("A", hold_id=old.hold_id)) == ["hold_unknown"]
    assert codes(engine.cancel_hold("A", hold_id=987654)) == ["hold_unknown"]
    assert codes(engine.cancel_hold("NOBODY", hold_id=new.hold_id)) == ["patron_unknown"]
    assert counts(store) == before
    assert hold_state(store, new.hold_id) == HoldState.WAITING
    with pytest.raises(ValueError):
        engine.cancel_hold("A", record=("main", "T-ONE"), hold_id=new.hold_id)


def test_cancelling_a_ready_hold_by_id_passes_its_copy_to_the_next_hold(library) -> None:
    engine, _, store = library
    assert engine.checkout("D", "O1").ok
    first = engine.place_hold("A", record=("main", "T-ONE"))
    second = engine.place_hold("B", record=("main", "T-ONE"))
    assert first.hold_id is not None and second.hold_id is not None
    assert engine.checkin("O1").trapped_for.barcode == "A"
    assert engine.cancel_hold("A", hold_id=first.hold_id, channel=Channel.WEB).ok
    assert hold_state(store, second.hold_id) == HoldState.READY


# --- the copy's library (馆址) ----------------------------------------------------------------


def test_each_copy_tells_its_library_and_an_empty_one_stays_empty(library) -> None:
    engine, _, store = library
    with store.read() as tx:
        record_pk = int(tx.scalar("SELECT id FROM bib_records WHERE record_id = 'T-MING'"))
    copies = engine.availability([record_pk])[record_pk].copies
    assert [(c.barcode, c.library) for c in copies] == [("M1", "上海图书馆"), ("M2", "上海图书馆")]
    with store.write() as tx:
        tx.execute("UPDATE items SET library = '' WHERE barcode = 'M2'")
    copies = engine.availability([record_pk])[record_pk].copies
    assert [c.library for c in copies] == ["上海图书馆", ""]
    item = engine.item_info("M1")
    assert item is not None and item.copy.library == "上海图书馆"


# --- ILL for readers --------------------------------------------------------------------------

FORM = IllForm(
    title="明代政治史",
    author="张显清",
    recipient="甲",
    email="a@example.cn",
    delivery="物流",
)


@pytest.fixture
def ill(store: Store, tmp_path: Path) -> tuple[InterlibraryLoan, FixedClock, Store]:
    _, clock, loan = library_ill(store, tmp_path, SHL, [PKU])
    assert loan.confirm_reader("A").ok and loan.confirm_reader("B").ok
    return loan, clock, store


def test_a_reader_sees_their_own_requests_newest_first(ill) -> None:
    loan, clock, _ = ill
    first = loan.request("A", FORM)
    clock.advance(minutes=5)
    theirs = loan.request("B", FORM)
    clock.advance(minutes=5)
    second = loan.request("A", FORM)
    assert first.ok and theirs.ok and second.ok
    assert first.request and theirs.request and second.request
    mine = loan.requests_of("A")
    assert [r.number for r in mine] == [second.request.number, first.request.number]
    assert [r.number for r in loan.requests_of("B")] == [theirs.request.number]
    assert loan.requests_of("C") == [] and loan.requests_of("NOBODY") == []


def test_a_reader_opens_only_their_own_request(ill) -> None:
    loan, _, _ = ill
    filed = loan.request("A", FORM)
    assert filed.ok and filed.request is not None and filed.request.number
    number = filed.request.number
    view = loan.request_of("A", number)
    assert view is not None and view.request.number == number and view.messages
    assert loan.request_of("B", number) is None
    assert loan.request_of("A", "ST99999999") is None
    # A partner's request to us (we lend) is nobody's here.
    assert loan.on_request(partner_request("PKU-1", record_id="T-MING")).ok
    lent = next(r for r in loan.list_requests("lender"))
    assert lent.number and loan.request_of("A", lent.number) is None


def test_checking_a_request_runs_the_same_checks_and_files_nothing(ill) -> None:
    loan, _, store = ill
    before = counts(store)
    assert loan.check_request("A", FORM).ok
    assert counts(store) == before
    filed = loan.request("A", FORM)
    assert filed.ok and filed.request is not None
    assert filed.request.number == "ST00000001"  # the check took no number
    bad = IllForm(title="", recipient="", email="not-an-address", lenders=("ISIL:CN-NONE",))
    for reader in ("A", "C", "NOBODY"):  # registered, not registered (I7), unknown
        before = counts(store)
        checked = loan.check_request(reader, bad)
        refused = loan.request(reader, bad)
        assert not checked.ok and checked.reasons == refused.reasons
        assert counts(store) == before
    assert codes(loan.check_request("C", bad)) == [
        "ill_reader_not_registered",
        "ill_title_missing",
        "ill_recipient_missing",
        "ill_email_invalid",
        "ill_partner_unknown",
    ]
    assert codes(loan.check_request("NOBODY", FORM)) == ["patron_unknown"]
    assert codes(loan.check_request("C", FORM)) == ["ill_reader_not_registered"]


def test_pickup_desks_name_the_desk_of_each_open_hold(library) -> None:
    engine, _clock, _store = library
    engine.checkout("B", "O1")
    engine.checkout("B", "M1")
    engine.checkout("D", "M2")
    one = engine.place_hold("A", record=("main", "T-ONE"))
    ming = engine.place_hold("A", record=("main", "T-MING"))
    assert one.ok and ming.ok and one.hold_id and ming.hold_id
    # Waiting: the desk of the title's first circulating copy (R10); T-MING's M1 is in 中文书库.
    assert engine.pickup_desks("A") == {one.hold_id: "二楼借书处", ming.hold_id: "二楼借书处"}
    # Ready: the desk of the copy that was trapped (M2 lives in 综合阅览室-1楼).
    returned = engine.checkin("M2", Channel.DESK)
    assert returned.hold_id == ming.hold_id
    assert engine.pickup_desks("A")[ming.hold_id] == returned.pickup_desk == "一楼借书处"
    assert engine.pickup_desks("nobody") == {}
