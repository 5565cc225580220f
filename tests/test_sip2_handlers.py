"""Every SIP2 message pair over the real engine, on SQLite and PostgreSQL: bytes in, bytes out,
through the codec, the session and the handlers (no sockets)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gateway.circulation.clock import FixedClock
from gateway.circulation.engine import Engine
from gateway.circulation.reasons import reason
from gateway.store import Store
from sip2 import codec
from tests.circulation_support import build_library
from tests.sip2_support import NOW, Terminal


@pytest.fixture
def library(store: Store, tmp_path: Path) -> tuple[Engine, FixedClock]:
    return build_library(store, tmp_path)


@pytest.fixture
def kiosk(library: tuple[Engine, FixedClock]) -> Terminal:
    terminal = Terminal(*library)
    assert terminal.login().fixed["ok"] == "1"
    return terminal


@pytest.fixture
def desk(library: tuple[Engine, FixedClock]) -> Terminal:
    terminal = Terminal(*library, role="desk")
    assert terminal.login().fixed["ok"] == "1"
    return terminal


def screen(message) -> str:
    return " ".join(message.all("AF"))


def test_status_lists_every_message_as_supported(kiosk: Terminal) -> None:
    status = kiosk.send(
        "99", {"status_code": "0", "max_print_width": "080", "protocol_version": "2.00"}
    )
    assert status.command == "98"
    assert status.get("BX") == "Y" * 16
    assert status.fixed["online_status"] == "Y" and status.fixed["protocol_version"] == "2.00"
    assert status.get("AO") == "MAIN" and status.get("AN") == "二楼借书处"


def test_checkout_item_information_checkin(kiosk: Terminal, library) -> None:
    engine, _clock = library
    out = kiosk.checkout("A", "O1")
    assert out.command == "12" and out.fixed["ok"] == "1" and out.fixed["desensitize"] == "Y"
    assert out.get("AJ") == "书名T-ONE"
    assert out.get("AH") == "20260401    090000"  # 30 days, the reader category's loan period
    info = kiosk.item_information("O1")
    assert info.fixed["circulation_status"] == "04" and info.get("AH") == out.get("AH")
    assert engine.item_info("O1").loan_patron_barcode == "A"
    back = kiosk.checkin("O1")
    assert back.fixed["ok"] == "1" and back.fixed["alert"] == "N" and back.get("AA") == "A"
    assert kiosk.item_information("O1").fixed["circulation_status"] == "03"


def test_refusals_carry_the_engine_reason(kiosk: Terminal) -> None:
    refused = kiosk.checkout("A", "R1")  # a reading-room copy (R1)
    assert refused.fixed["ok"] == "0" and refused.fixed["desensitize"] == "N"
    assert "不外借" in screen(refused)
    assert refused.get("AH") == ""  # required field, present and empty
    unknown = kiosk.checkout("nobody", "O1")
    assert unknown.fixed["ok"] == "0" and "nobody" in screen(unknown)
    missing = kiosk.item_information("no-such-copy")
    assert missing.fixed["circulation_status"] == "01" and missing.get("AJ") == ""


def test_the_hold_day_r5_r7_r6_r14(kiosk: Terminal, desk: Terminal, library) -> None:
    engine, _clock = library
    assert kiosk.checkout("A", "O1").fixed["ok"] == "1"
    hold = kiosk.hold("+", "B", AB="O1", BY="2")
    assert hold.command == "16" and hold.fixed["ok"] == "1" and hold.fixed["available"] == "N"
    assert hold.get("BR") == "1" and hold.get("BS") == "二楼借书处" and hold.get("BW")
    # R5: A cannot renew a book another reader waits for; the reason says why.
    renew = kiosk.renew("A", "O1")
    assert renew.command == "30" and renew.fixed["ok"] == "0" and "预约" in screen(renew)
    renew_all = kiosk.send("65", {"transaction_date": NOW}, AO="MAIN", AA="A")
    assert renew_all.fixed["ok"] == "1"
    assert renew_all.all("BN") == ["O1"] and renew_all.fixed["unrenewed_count"] == "0001"
    # R7: the self-check machine refuses the return and sends the reader to the desk.
    back = kiosk.checkin("O1")
    assert back.fixed["ok"] == "0" and back.fixed["alert"] == "Y"
    assert "服务台" in screen(back)
    assert kiosk.item_information("O1").fixed["circulation_status"] == "04"  # nothing changed
    # R6: the desk terminal traps it for B and says so.
    trapped = desk.checkin("O1")
    assert trapped.fixed["ok"] == "1" and trapped.fixed["alert"] == "Y"
    assert trapped.get("CV") == "01" and trapped.get("CY") == "B" and trapped.get("DA") == "乙"
    info = kiosk.item_information("O1")
    assert info.fixed["circulation_status"] == "08" and info.get("CM")
    # R14: the trapped copy is for B only.
    assert kiosk.checkout("C", "O1").fixed["ok"] == "0"
    b_info = kiosk.patron_information("B", summary="Y         ")
    assert b_info.fixed["hold_items_count"] == "0001" and b_info.all("AS") == ["O1"]
    pickup = kiosk.checkout("B", "O1")
    assert pickup.fixed["ok"] == "1" and "预约已完成" in screen(pickup)
    assert kiosk.patron_information("B").fixed["hold_items_count"] == "0000"


def test_an_offline_return_reported_with_no_block_is_recorded_and_trapped(kiosk: Terminal) -> None:
    kiosk.checkout("A", "O1")
    kiosk.hold("+", "B", AB="O1")
    fixed = {"no_block": "Y", "transaction_date": NOW, "return_date": NOW}
    back = kiosk.send("09", fixed, AP="kiosk", AO="MAIN", AB="O1", AC="")
    assert back.fixed["ok"] == "1" and back.fixed["alert"] == "Y" and back.get("CV") == "01"
    assert kiosk.item_information("O1").fixed["circulation_status"] == "08"


def test_english_screen_messages_for_an_english_account(library) -> None:
    kiosk = Terminal(*library, language="en")
    kiosk.login()
    refused = kiosk.checkout("A", "R1")
    assert "does not circulate" in screen(refused)
    # The request's language field wins when we speak it (001 = English, 019 = Chinese).
    info = kiosk.patron_information("nobody")
    assert "读者" in screen(info)


def test_patron_information_lists_counts_and_ranges(kiosk: Terminal, library) -> None:
    engine, clock = library
    for item in ("O1", "W1", "X1"):
        assert kiosk.checkout("A", item).fixed["ok"] == "1"
    info = kiosk.patron_information("A", summary="  Y       ")
    assert info.command == "64" and info.fixed["charged_items_count"] == "0003"
    assert sorted(info.all("AU")) == ["O1", "W1", "X1"]
    assert info.all("AS") == [] and info.all("AT") == []
    assert info.fixed["patron_status"][5] == "Y"  # too many items charged: A is at max_loans 3
    assert info.fixed["patron_status"][0] == "Y"  # so charging is denied
    assert info.get("CB") == "0003" and info.get("BZ") == "0002" and info.get("BL") == "Y"
    ranged = kiosk.patron_information("A", summary="  Y       ", BP="2", BQ="2")
    assert len(ranged.all("AU")) == 1
    clock.advance(days=31)
    overdue = kiosk.patron_information("A", summary=" Y        ")
    assert overdue.fixed["overdue_items_count"] == "0003" and len(overdue.all("AT")) == 3
    assert overdue.fixed["patron_status"][6] == " "  # no [circulation] overdue_limit set
    unknown = kiosk.patron_information("nobody")
    assert unknown.fixed["patron_status"] == "YYYY          " and unknown.get("BL") == "N"
    assert unknown.get("CQ") == "N"


def test_pin_checks_are_explicit_and_back_off_per_reader(kiosk: Terminal, library) -> None:
    engine, clock = library
    assert kiosk.patron_status("A", AD="0000").get("CQ") == "Y"
    assert kiosk.patron_status("A").get("CQ") == "N"  # no PIN sent: never a blank CQ
    assert kiosk.patron_status("A", AD="9").get("CQ") == "N"
    assert kiosk.patron_status("A", AD="9").get("CQ") == "N"
    assert kiosk.patron_status("A", AD="9").get("CQ") == "N"  # third failure: back-off starts
    locked = kiosk.patron_status("A", AD="0000")
    assert locked.get("CQ") == "N" and "分钟" in screen(locked)
    refused = kiosk.checkout("A", "O1", AD="0000")
    assert refused.fixed["ok"] == "0"
    # The lockout is SIP2's alone: the desk still lends to A.
    assert engine.checkout("A", "O1").ok
    clock.advance(seconds=10)  # the back-off after three failures is 2 s (kept in the store)
    assert kiosk.patron_status("A", AD="0000").get("CQ") == "Y"
    assert kiosk.checkout("A", "W1", AD="bad").fixed["ok"] == "0"


def test_block_patron_and_patron_enable(kiosk: Terminal, desk: Terminal) -> None:
    blocked = kiosk.send(
        "01",
        {"card_retained": "N", "transaction_date": NOW},
        AO="MAIN",
        AL="card left",
        AA="B",
        AC="",
    )
    assert blocked.command == "24" and blocked.fixed["patron_status"][0] == "Y"
    assert kiosk.checkout("B", "O1").fixed["ok"] == "0"
    # A kiosk cannot lift a block (the library may have set it); the desk can.
    refused = kiosk.send("25", {"transaction_date": NOW}, AO="MAIN", AA="B")
    assert refused.command == "26" and refused.fixed["patron_status"][0] == "Y"
    assert "服务台" in screen(refused)
    enabled = desk.send("25", {"transaction_date": NOW}, AO="MAIN", AA="B")
    assert enabled.command == "26" and enabled.fixed["patron_status"][0] == " "
    assert enabled.get("AE") == "乙" and enabled.get("BL") == "Y"
    assert kiosk.checkout("B", "O1").fixed["ok"] == "1"


def test_patron_enable_with_a_wrong_pin_changes_nothing(desk: Terminal) -> None:
    desk.send("01", {"card_retained": "N", "transaction_date": NOW}, AO="MAIN", AL="x", AA="A")
    wrong = desk.send("25", {"transaction_date": NOW}, AO="MAIN", AA="A", AD="9999")
    assert wrong.fixed["patron_status"][0] == "Y" and wrong.get("CQ") == "N"
    right = desk.send("25", {"transaction_date": NOW}, AO="MAIN", AA="A", AD="0000")
    assert right.fixed["patron_status"][0] == " " and right.get("CQ") == "Y"


def test_an_empty_pin_field_is_no_pin(kiosk: Terminal) -> None:
    for _ in range(4):
        assert kiosk.patron_status("A", AD="").get("CQ") == "N"
    assert kiosk.checkout("A", "O1", AD="").fixed["ok"] == "1"  # not a wrong PIN
    assert kiosk.patron_status("A", AD="0000").get("CQ") == "Y"  # and no back-off


def test_require_patron_pin_refuses_a_request_without_one_and_tells_nothing(library) -> None:
    strict = Terminal(*library, require_patron_pin=True)
    assert strict.login().fixed["ok"] == "1"
    engine, _clock = library
    assert engine.add_fee("A", 500, description="水渍").ok
    for reply in (
        strict.patron_status("A"),
        strict.patron_status("A", AD=""),
        strict.patron_information("A", summary="YYYYYY    "),
    ):
        assert reply.get("CQ") == "N" and reply.get("AE") == ""
        assert [code for code, _ in reply.fields if code in FORBIDDEN] == []
        assert "请输入密码" in screen(reply)
    refused = strict.checkout("A", "O1")
    assert refused.fixed["ok"] == "0" and "请输入密码" in screen(refused)
    assert engine.item_info("O1").loan_patron_barcode is None
    # Not a wrong PIN: no back-off follows, and the right PIN works at once.
    assert strict.patron_status("A", AD="0000").get("AE") == "甲"
    assert strict.checkout("A", "O1", AD="0000").fixed["ok"] == "1"


def test_a_held_copy_not_on_loan_returned_at_the_kiosk_goes_to_the_desk(
    kiosk: Terminal, desk: Terminal
) -> None:
    kiosk.checkout("A", "O1")
    kiosk.hold("+", "B", AB="O1")
    desk.checkin("O1")  # trapped for B, on the hold shelf
    again = kiosk.checkin("O1")  # someone drops it in the kiosk's return slot
    assert again.fixed["ok"] == "1" and again.fixed["alert"] == "Y"
    assert "服务台" in screen(again)


def test_hostile_numbers_are_refused_at_once(kiosk: Terminal, library) -> None:
    engine, _clock = library
    engine.add_fee("A", 100)
    fixed = {
        "transaction_date": NOW,
        "fee_type": "01",
        "payment_type": "00",
        "currency_type": "CNY",
    }
    huge = kiosk.send("37", fixed, BV="1E+999990", AO="MAIN", AA="A", BK="h1")
    assert huge.command == "38" and huge.fixed["payment_accepted"] == "N"
    odd = kiosk.send("37", fixed, BV="1.00", AO="MAIN", AA="A", CG="²", BK="h2")
    assert odd.command == "38"
    ranged = kiosk.patron_information("A", summary="  Y       ", BP="²", BQ="9" * 40)
    assert ranged.command == "64"


def test_fee_paid_is_idempotent_by_transaction_id(kiosk: Terminal, library) -> None:
    engine, _clock = library
    assert engine.add_fee("A", 500, kind="damage", description="水渍").ok
    fixed = {
        "transaction_date": NOW,
        "fee_type": "03",
        "payment_type": "00",
        "currency_type": "CNY",
    }
    paid = kiosk.send("37", fixed, BV="2.00", AO="MAIN", AA="A", BK="tx-1")
    assert (
        paid.command == "38" and paid.fixed["payment_accepted"] == "Y" and paid.get("BK") == "tx-1"
    )
    again = kiosk.send("37", fixed, BV="2.00", AO="MAIN", AA="A", BK="tx-1")
    assert again.fixed["payment_accepted"] == "Y"
    reused = kiosk.send("37", fixed, BV="3.00", AO="MAIN", AA="A", BK="tx-1")  # not a resend
    assert reused.fixed["payment_accepted"] == "N" and "tx-1" in screen(reused)
    assert [fee.outstanding for fee in engine.fees_of("A")] == [300]
    assert (
        kiosk.send("37", fixed, BV="10.00", AO="MAIN", AA="A", BK="tx-2").fixed["payment_accepted"]
        == "N"
    )
    dollars = dict(fixed, currency_type="USD")
    assert (
        kiosk.send("37", dollars, BV="1.00", AO="MAIN", AA="A", BK="tx-3").fixed["payment_accepted"]
        == "N"
    )
    assert kiosk.send("37", fixed, BV="abc", AO="MAIN", AA="A").fixed["payment_accepted"] == "N"
    info = kiosk.patron_information("A", summary="   Y      ")
    assert info.fixed["fine_items_count"] == "0001" and info.get("BV") == "3.00"
    assert info.all("AV")[0].split()[1] == "3.00"
    assert info.get("BH") == "CNY"


def test_item_status_update(kiosk: Terminal) -> None:
    updated = kiosk.send("19", {"transaction_date": NOW}, AO="MAIN", AB="W1", CH="RFID:E200341")
    assert updated.command == "20" and updated.fixed["item_properties_ok"] == "1"
    assert kiosk.item_information("W1").get("CH") == "RFID:E200341"
    unknown = kiosk.send("19", {"transaction_date": NOW}, AO="MAIN", AB="nope", CH="x")
    assert unknown.fixed["item_properties_ok"] == "0"


def test_hold_modes(kiosk: Terminal) -> None:
    refused = kiosk.hold("+", "B", AB="W1")  # R2: a copy is on the shelf
    assert refused.fixed["ok"] == "0" and "在架" in screen(refused)
    kiosk.checkout("A", "O1")
    by_title = kiosk.hold("+", "B", AJ="T-ONE")
    assert by_title.fixed["ok"] == "1" and by_title.get("AJ") == "书名T-ONE"
    again = kiosk.hold("+", "B", AJ="main/T-ONE")  # R4: one hold per reader and title
    assert again.fixed["ok"] == "0"
    changed = kiosk.hold("*", "B", AB="O1", BS="somewhere else")
    assert changed.fixed["ok"] == "1" and changed.get("BR") == "1"
    assert "不能更改" in screen(changed)
    cancelled = kiosk.hold("-", "B", AB="O1")
    assert cancelled.fixed["ok"] == "1"
    assert kiosk.hold("-", "B", AB="O1").fixed["ok"] == "0"
    assert kiosk.hold("+", "B").fixed["ok"] == "0"  # neither copy nor title
    assert kiosk.hold("?", "B", AB="O1").fixed["ok"] == "0"


def test_end_patron_session(kiosk: Terminal) -> None:
    ended = kiosk.send("35", {"transaction_date": NOW}, AO="MAIN", AA="A")
    assert ended.command == "36" and ended.fixed["end_session"] == "Y" and ended.get("AA") == "A"


def test_checkout_with_sc_renewal_policy_renews_a_book_already_held(kiosk: Terminal) -> None:
    kiosk.checkout("A", "O1")
    fixed = {"sc_renewal_policy": "Y", "no_block": "N", "transaction_date": NOW}
    again = kiosk.send("11", fixed, AO="MAIN", AA="A", AB="O1", AC="")
    assert again.fixed["ok"] == "1" and again.fixed["renewal_ok"] == "Y"


def test_an_unknown_reader_has_one_wording_everywhere(kiosk: Terminal) -> None:
    from gateway.circulation.reasons import reason

    words = reason("patron_unknown", patron="nobody").zh
    assert words in screen(kiosk.patron_information("nobody"))
    assert words in screen(kiosk.patron_status("nobody"))
    assert words in screen(kiosk.checkout("nobody", "O1"))
    assert words in screen(kiosk.patron_status("nobody", AD="1234"))  # the PIN check too


def test_a_payment_in_another_currency_is_refused_with_the_engine_reason(
    kiosk: Terminal, library
) -> None:
    engine, _clock = library
    assert engine.add_fee("A", 500).ok
    fixed = {
        "transaction_date": NOW,
        "fee_type": "01",
        "payment_type": "00",
        "currency_type": "USD",
    }
    refused = kiosk.send("37", fixed, BV="5.00", AO="MAIN", AA="A", BK="usd-1")
    assert refused.fixed["payment_accepted"] == "N" and "只接受 CNY 缴费" in screen(refused)
    assert engine.patron_summary("A").fees_total == 500


def test_hold_change_reports_the_hold_from_the_engine(kiosk: Terminal) -> None:
    assert kiosk.checkout("A", "O1").fixed["ok"] == "1"
    assert kiosk.hold("+", "B", AB="O1").fixed["ok"] == "1"
    same = kiosk.hold("*", "B", AJ="main/T-ONE")
    assert same.fixed["ok"] == "1" and same.get("BR") == "1" and same.get("AJ") == "书名T-ONE"
    none = kiosk.hold("*", "C", AB="O1")
    assert none.fixed["ok"] == "0" and "有效预约" in screen(none)


def test_an_unknown_copy_has_one_wording_everywhere(kiosk: Terminal) -> None:
    words = reason("item_unknown", item="no-such-copy").zh
    assert words in screen(kiosk.item_information("no-such-copy"))
    assert words in screen(kiosk.checkout("A", "no-such-copy"))
    assert words in screen(kiosk.checkin("no-such-copy"))


def test_a_blocked_card_has_one_wording_everywhere(kiosk: Terminal) -> None:
    words = reason("patron_blocked").zh
    fixed = {"card_retained": "N", "transaction_date": NOW}
    assert screen(kiosk.send("01", fixed, AO="MAIN", AL="card left", AA="B", AC="")) == words
    assert words in screen(kiosk.checkout("B", "O1"))
    assert words in screen(kiosk.patron_status("B"))


def test_a_wrong_pin_discloses_nothing_but_invalid(kiosk: Terminal, library) -> None:
    engine, _clock = library
    assert kiosk.checkout("A", "O1").fixed["ok"] == "1"
    assert engine.add_fee("A", 500, description="水渍").ok
    every_list = "YYYYYY    "
    right = kiosk.patron_information("A", summary=" " * 10, AD="0000")
    assert right.get("AE") == "甲" and right.get("BV") == "5.00"  # what a wrong PIN must not see
    assert right.fixed["charged_items_count"] == "0001"
    unknown_words = reason("patron_unknown", patron="A").zh  # not this either: A is known
    for attempt in range(4):  # wrong, wrong, wrong, then refused during the back-off
        for reply in (
            kiosk.patron_status("A", AD="9999"),
            kiosk.patron_information("A", summary=every_list, AD="9999"),
        ):
            assert reply.get("CQ") == "N"
            assert reply.get("AE") == ""
            assert reply.fixed["patron_status"] == "YYYY          "
            assert [code for code, _ in reply.fields if code in FORBIDDEN] == []
            encoded = kiosk_bytes(reply)
            assert "甲".encode() not in encoded and b"O1" not in encoded and b"5.00" not in encoded
            assert len(reply.all("AF")) == 1 and unknown_words not in screen(reply)
            if reply.command == "64":
                counts = [value for name, value in reply.fixed.items() if name.endswith("_count")]
                assert counts and set(counts) == {"0000"}
        assert ("分钟" in screen(reply)) == (attempt >= 1)  # the third failure starts it


FORBIDDEN = {"BH", "BV", "AS", "AT", "AU", "AV", "BU", "CD", "BZ", "CA", "CB", "BE", "BF", "BD"}


def kiosk_bytes(message) -> bytes:
    return codec.encode(message, "utf-8", sequence=0, error_detection=False)


def test_a_trusted_terminal_keeps_working_while_another_address_guesses(
    store: Store, library
) -> None:
    engine, clock = library
    pins = replace(engine.policy.pins, trusted_networks=("127.0.0.1/32",))
    engine = Engine(store, replace(engine.policy, pins=pins), clock)
    attacker = Terminal(engine, clock, peer="127.0.0.2")
    library_kiosk = Terminal(engine, clock, peer="127.0.0.1")
    stranger_kiosk = Terminal(engine, clock, peer="127.0.0.3")
    desk = Terminal(engine, clock, role="desk", peer="127.0.0.3")
    for terminal in (attacker, library_kiosk, stranger_kiosk, desk):
        assert terminal.login().fixed["ok"] == "1"
    for guess in range(6):
        assert attacker.patron_status("A", AD=f"{guess:04d}9").get("CQ") == "N"
    assert "分钟" in screen(attacker.patron_status("A", AD="0000"))  # the attacker waits
    # The reader at the library's own kiosk, and at any desk, is not locked out ...
    ok = library_kiosk.patron_information("A", AD="0000")
    assert ok.get("CQ") == "Y" and ok.get("AE") == "甲"
    assert library_kiosk.checkout("A", "O1", AD="0000").fixed["ok"] == "1"
    assert desk.patron_status("A", AD="0000").get("CQ") == "Y"
    # ... a kiosk outside the trusted networks shares the reader's back-off (the trade-off) ...
    assert stranger_kiosk.patron_status("A", AD="0000").get("CQ") == "N"
    # ... and the attacker is still waiting.
    assert attacker.patron_status("A", AD="0000").get("CQ") == "N"
