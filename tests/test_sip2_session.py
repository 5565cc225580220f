"""SIP2 session rules, sans I/O: login first, error detection, 96/97, replay of retransmitted
requests, status before login, encodings and terminators; and a fuzz test of the whole path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.circulation.clock import FixedClock
from gateway.circulation.engine import Engine
from gateway.config import SIP2_ERROR_DETECTION, SIP2_ROLES, SIP2_TERMINATORS, Sip2Account
from gateway.store import Store, open_store
from gateway.store.migrate import migrate
from sip2 import codec
from sip2.accounts import Sip2Role, role_of
from sip2.session import Dispatch
from sip2.spec import ANSWERED_BY, ErrorDetection, Terminator
from tests.circulation_support import build_library
from tests.sip2_support import NOW, Terminal

Library = tuple[Engine, FixedClock]

REQUEST_SC_RESEND = b"96AZFEF6\r"


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'sip2.db'}")
    migrate(opened)
    yield opened
    opened.close()


@pytest.fixture
def library(sqlite_store: Store, tmp_path: Path) -> tuple[Engine, FixedClock]:
    return build_library(sqlite_store, tmp_path)


def borrower(engine: Engine, barcode: str) -> str | None:
    item = engine.item_info(barcode)
    assert item is not None
    return item.loan_patron_barcode


def events(engine: Engine) -> int:
    with engine.store.read() as tx:
        row = tx.one("SELECT COUNT(*) FROM circulation_events")
    assert row is not None
    return int(row[0])


def test_login_comes_first_and_three_strikes_close(library: Library) -> None:
    terminal = Terminal(*library)
    assert terminal.send_raw(terminal.frame("17", {"transaction_date": NOW}, AO="M", AB="O1")) == (
        REQUEST_SC_RESEND
    )
    assert terminal.login(password="wrong").fixed["ok"] == "0"
    assert not terminal.closed
    assert terminal.login(password="wrong again").fixed["ok"] == "0"
    assert terminal.closed  # the third failure (a request before login counts too)


def test_a_good_login_resets_the_strikes_and_a_bad_one_logs_out(library: Library) -> None:
    terminal = Terminal(*library)
    terminal.login(password="wrong")
    assert terminal.login().fixed["ok"] == "1"
    assert terminal.item_information("O1").command == "18"
    assert terminal.login(password="wrong").fixed["ok"] == "0"
    frame = terminal.frame("17", {"transaction_date": NOW}, AO="M", AB="O1")
    assert terminal.send_raw(frame) == REQUEST_SC_RESEND


def test_allowed_addresses_and_status_before_login(library: Library) -> None:
    account = Sip2Account(
        login="sc",
        password="pw",
        allowed_addresses=("10.1.0.0/16",),
        status_before_login=True,
    )
    inside = Terminal(*library, accounts=(account,), peer="10.1.2.3")
    status = inside.send(
        "99", {"status_code": "0", "max_print_width": "080", "protocol_version": "2.00"}
    )
    assert status.command == "98"
    outside = Terminal(*library, accounts=(account,), peer="192.168.1.9")
    assert outside.send_raw(outside.frame("99", {"status_code": "0"})) == REQUEST_SC_RESEND
    assert outside.login().fixed["ok"] == "0"  # right password, wrong network
    assert inside.login().fixed["ok"] == "1"


def test_hashed_account_passwords(library: Library) -> None:
    from gateway.circulation.pins import hash_pin

    account = Sip2Account(login="sc", password=hash_pin("s3cret"))
    terminal = Terminal(*library, accounts=(account,))
    assert terminal.login(password=hash_pin("s3cret")).fixed["ok"] == "0"  # the hash is no password
    assert terminal.login(password="s3cret").fixed["ok"] == "1"


def test_bad_checksum_gets_96_and_97_resends_the_last_response(library: Library) -> None:
    terminal = Terminal(*library)
    terminal.login()
    frame = terminal.frame("17", {"transaction_date": NOW}, AO="M", AB="O1")
    corrupted = frame[:-4] + (b"0000" if frame[-4:] != b"0000" else b"0001")
    assert terminal.send_raw(corrupted) == REQUEST_SC_RESEND
    answer = terminal.send_raw(frame)
    assert answer.startswith(b"18")
    assert terminal.send_raw(b"97AZFEF5") == answer
    assert terminal.send_raw(b"97") == answer  # 97 without error detection too


def test_97_before_any_response_gets_96(library: Library) -> None:
    terminal = Terminal(*library)
    assert terminal.send_raw(b"97AZFEF5") == REQUEST_SC_RESEND


def test_a_retransmitted_checkout_is_answered_again_not_done_again(library: Library) -> None:
    engine, _clock = library
    terminal = Terminal(*library)
    terminal.login()
    frame = terminal.frame(
        "11",
        {"sc_renewal_policy": "N", "no_block": "N", "transaction_date": NOW},
        AO="M",
        AA="A",
        AB="O1",
    )
    first = terminal.send_raw(frame)
    before = events(engine)
    assert terminal.send_raw(frame) == first  # same AY and AZ: the kiosk missed our answer
    assert events(engine) == before
    assert codec.parse(first[:-1], "utf-8").message.fixed["ok"] == "1"


def test_a_resend_after_a_failed_handler_is_carried_out(library: Library) -> None:
    engine, _clock = library
    terminal = Terminal(*library)
    terminal.login()
    frame = terminal.frame(
        "11",
        {"sc_renewal_policy": "N", "no_block": "N", "transaction_date": NOW},
        AO="M",
        AA="A",
        AB="O1",
    )
    step = terminal.session.receive(frame)
    assert isinstance(step, Dispatch)
    assert terminal.session.failed(step) == REQUEST_SC_RESEND
    answer = terminal.send_raw(frame)  # the SC sends it again, as 96 asked
    assert codec.parse(answer[:-1], "utf-8").message.fixed["ok"] == "1"
    assert borrower(engine, "O1") == "A"


def test_only_the_very_same_bytes_are_replayed(library: Library) -> None:
    engine, _clock = library
    terminal = Terminal(*library)
    terminal.login()
    fixed = {"sc_renewal_policy": "N", "no_block": "N", "transaction_date": NOW}
    first = terminal.frame("11", fixed, AO="M", AA="D", AB="X1")
    # Another checkout with the same AY and the same checksum: "W2" sums to what "X1" does.
    other = first.replace(b"ABX1|", b"ABW2|")
    assert other != first and codec.parse(other, "utf-8").checksum_ok is True
    terminal.send_raw(first)
    terminal.send_raw(other)
    assert borrower(engine, "X1") == "D"
    assert borrower(engine, "W2") == "D"
    # A status request in between: the old checkout's bytes are no longer "the previous".
    terminal.send_raw(terminal.frame("99", {"status_code": "0"}))
    again = terminal.send_raw(first)
    assert codec.parse(again[:-1], "utf-8").message.command == "12"


def test_junk_before_login_closes_after_three(library: Library) -> None:
    terminal = Terminal(*library)
    assert terminal.send_raw(b"97") == REQUEST_SC_RESEND
    assert terminal.send_raw(b"\x16\x03garbage") == REQUEST_SC_RESEND
    assert not terminal.closed
    assert terminal.send_raw(b"9x") == REQUEST_SC_RESEND
    assert terminal.closed


def test_error_detection_required_and_off(library: Library) -> None:
    strict = Terminal(*library, error_detection="required")
    strict.login()
    plain = codec.encode(codec.build("17", {"transaction_date": NOW}, AO="M", AB="O1"), "utf-8")
    assert strict.send_raw(plain[:-1]) == REQUEST_SC_RESEND
    relaxed = Terminal(*library, error_detection="off")
    relaxed.login()
    frame = relaxed.frame("17", {"transaction_date": NOW}, AO="M", AB="O1")
    answer = relaxed.send_raw(frame[:-4] + b"0000")  # a wrong checksum is not checked
    assert answer.startswith(b"18") and b"AZ" not in answer


def test_responses_echo_the_sequence_number_and_checksum_only_when_asked(library: Library) -> None:
    terminal = Terminal(*library)
    terminal.sequence = 7
    assert terminal.send_raw(terminal.frame("93", {}, CN="sc", CO="pw")) == b"941AY7AZFDF6\r"
    plain = codec.encode(codec.build("93", {}, CN="sc", CO="pw"), "utf-8")
    assert terminal.send_raw(plain[:-1]) == b"941\r"


def test_account_encoding_and_crlf_terminator(library: Library) -> None:
    terminal = Terminal(*library, encoding="gb18030", terminator="CRLF")
    terminal.login()
    info = terminal.send_raw(terminal.frame("17", {"transaction_date": NOW}, AO="M", AB="O1"))
    assert info.endswith(b"|AY1AZ" + info[-6:-2] + b"\r\n")
    assert "书名T-ONE".encode("gb18030") in info
    assert codec.parse(info[:-2], "gb18030").checksum_ok is True


# --- fuzz: random and mutated frames never crash; the answer is SIP2 or a clean close --------

VALID_BODIES = [
    b"9300CNsc|COpw|CPdesk|AY0AZ",
    b"9900802.00AY1AZ",
    b"11NN20260302    090000                  AOMAIN|AAA|ABO1|AC|AY3AZ",
    b"09N20260302    09000020260302    090000APdesk|AOMAIN|ABO1|AC|AY4AZ",
    b"6300020260302    090000  Y       AOMAIN|AAA|BP1|BQ5|AY2AZ",
    b"15+20260302    090000AOMAIN|AAB|ABO1|AY5AZ",
    b"3720260302    0900000100CNYBV1.00|AOMAIN|AAA|BKt|AY6AZ",
    b"65AOMAIN|AAA|AY4AZ",
]
VALID_FRAMES = [body + codec.checksum(body).encode() for body in VALID_BODIES]


def _mutated(draw_data: st.DataObject) -> bytes:
    frame = bytearray(draw_data.draw(st.sampled_from(VALID_FRAMES)))
    for _ in range(draw_data.draw(st.integers(1, 6))):
        kind = draw_data.draw(st.sampled_from(["flip", "insert", "delete", "truncate", "pipe"]))
        at = draw_data.draw(st.integers(0, max(0, len(frame) - 1)))
        if kind == "flip" and frame:
            frame[at] = draw_data.draw(st.integers(0, 255))
        elif kind == "insert":
            frame[at:at] = draw_data.draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and frame:
            del frame[at]
        elif kind == "truncate":
            del frame[at:]
        elif kind == "pipe":
            frame[at:at] = b"|"
    return bytes(frame).replace(b"\r", b"")


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzzed_frames_never_crash_the_session(library: Library, data: st.DataObject) -> None:
    terminal = Terminal(*library)
    terminal.login()
    if data.draw(st.booleans()):
        frame = data.draw(st.binary(min_size=1, max_size=300)).replace(b"\r", b"")
    else:
        frame = _mutated(data)
    if not frame:
        return
    answer = terminal.send_raw(frame)
    assert answer.endswith(b"\r")
    command = answer[:2].decode("ascii")
    # 96, or the answer to a request we read: a response command of the table, nothing else.
    assert command in {"96"} | set(ANSWERED_BY.values()), answer
    assert codec.parse(answer[:-1], "utf-8").message.command == command


# --- a login whose location is Chinese, from both kinds of client ----------------------------


def _summed(text: str, encoding: str, over: str) -> bytes:
    """`text` (through AZ) as a client sends it: its bytes in `encoding`, then the checksum
    over those bytes (byte-oriented clients) or over its characters (the PyPI `sip2` client)."""
    data = text.encode(encoding)
    total = sum(data) if over == "bytes" else sum(ord(character) for character in text)
    return data + f"{(-total) & 0xFFFF:04X}".encode("ascii")


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
@pytest.mark.parametrize("over", ["bytes", "characters"])
def test_a_desk_whose_location_is_chinese_logs_in(
    library: Library, encoding: str, over: str
) -> None:
    desk = Sip2Account(
        login="desk", password="pw", role="desk", location="一楼借书处", encoding=encoding
    )
    terminal = Terminal(*library, accounts=(desk,))
    login = _summed("9300CNdesk|COpw|CP一楼借书处|AY0AZ", encoding, over)
    assert terminal.send_raw(login).startswith(b"941AY0AZ")
    item = _summed("1720260302    090000AO中心馆|AB图书一号|AY1AZ", encoding, over)
    answer = terminal.send_raw(item)
    assert answer.startswith(b"18") and "AB图书一号|".encode(encoding) in answer
    assert codec.parse(answer[:-1], encoding).checksum_ok is True
    # Error detection still works: one byte changed in transit matches neither sum.
    assert terminal.send_raw(login.replace(b"COpw", b"COpx")) == REQUEST_SC_RESEND


def test_an_unknown_login_is_refused_like_a_wrong_password_whatever_its_charset(
    library: Library,
) -> None:
    # A character sum over GB18030 text only checks out when the frame is read as GB18030:
    # an unknown login must still get 94 with 0 (as a wrong password does), not 96, or the
    # answer would tell which logins exist.
    accounts = (
        Sip2Account(login="desk", password="pw", role="desk", encoding="gb18030"),
        Sip2Account(login="kiosk", password="pw"),
    )
    terminal = Terminal(*library, accounts=accounts)
    for login in ("desk", "nobody"):
        frame = _summed(f"9300CN{login}|COwrong|CP一楼借书处|AY0AZ", "gb18030", "characters")
        assert terminal.send_raw(frame).startswith(b"940AY0AZ"), login


def test_the_role_terminator_and_error_detection_types_hold_the_config_values() -> None:
    assert {role.value for role in Sip2Role} == set(SIP2_ROLES)
    assert {terminator.value for terminator in Terminator} == set(SIP2_TERMINATORS)
    assert {mode.value for mode in ErrorDetection} == set(SIP2_ERROR_DETECTION)
    assert role_of(Sip2Account(login="d", password="p", role="desk")) is Sip2Role.DESK
