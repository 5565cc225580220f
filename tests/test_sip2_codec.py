"""SIP2 codec and framing, from exact bytes: checksums, every message round-trip, the frames
real clients send (PyPI `sip2`, berick's pysip2), liberal reading and exact writing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sip2 import codec
from sip2.codec import FrameError, build, checksum, encode, parse
from sip2.framing import OVERSIZE, Framer
from sip2.spec import ANSWERED_BY, REQUESTS, RESPONSES, SPECS

SHANGHAI = timezone(timedelta(hours=8))

# (bytes through AZ, checksum): the 3M guide's example and the frames verified in
# ../shared/docs/research/sip2.md §1.3.
CHECKSUM_VECTORS = [
    (b"990 402.00AY1AZ", "FCB4"),
    (b"9300CNsc1|COpw|CPdesk-1|AY0AZ", "F6B2"),
    (b"941AY0AZ", "FDFD"),
    (b"96AZ", "FEF6"),
    (b"97AZ", "FEF5"),
    (b"9900802.00AY1AZ", "FCA0"),
]


@pytest.mark.parametrize(("data", "expected"), CHECKSUM_VECTORS)
def test_checksum_vectors(data: bytes, expected: str) -> None:
    assert checksum(data) == expected
    assert (sum(data) + int(expected, 16)) & 0xFFFF == 0


def test_every_request_has_its_response_in_the_table() -> None:
    assert {spec.command for spec in REQUESTS} - {"97"} == set(ANSWERED_BY)
    assert set(ANSWERED_BY.values()) <= {spec.command for spec in RESPONSES}
    assert len(ANSWERED_BY) == 15  # + 97 and 96: the 16 pairs of SIP 2.00


def _sample(command: str) -> codec.Message:
    """A message of this command with every fixed and variable field filled."""
    spec = SPECS[command]
    fixed = {}
    for field in spec.fixed:
        if field.kind == "date":
            fixed[field.name] = "20261130    101500"
        elif field.kind in ("count", "code"):
            fixed[field.name] = "7".rjust(field.width, "0")
        elif field.kind == "flag":
            fixed[field.name] = "Y"
        else:
            fixed[field.name] = "x" * field.width
    fields: list[tuple[str, str]] = []
    for var in spec.fields:
        fields.append((var.code, f"{var.code}值-中文"))
        if var.repeat:
            fields.append((var.code, f"{var.code} second"))
    return codec.Message(command, fixed, fields)


@pytest.mark.parametrize("command", sorted(SPECS))
@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_every_message_round_trips(command: str, encoding: str) -> None:
    message = _sample(command)
    data = encode(message, encoding, sequence=4, error_detection=True)
    assert data.endswith(b"\r")
    received = parse(data[:-1], encoding)
    assert received.checksum_ok is True
    assert received.message.command == command
    assert received.message.fixed == message.fixed
    assert received.message.fields == message.fields
    expected_sequence = None if command in ("96", "97") else 4
    assert received.message.sequence == expected_sequence


def test_96_and_97_carry_a_checksum_but_never_a_sequence_number() -> None:
    assert encode(build("96", {}), "utf-8", sequence=3, error_detection=True) == b"96AZFEF6\r"
    assert encode(build("97", {}), "utf-8", sequence=3, error_detection=True) == b"97AZFEF5\r"


def test_login_response_bytes() -> None:
    data = encode(build("94", {"ok": "1"}), "utf-8", sequence=0, error_detection=True)
    assert data == b"941AY0AZFDFD\r"
    assert encode(build("94", {"ok": "1"}), "utf-8") == b"941\r"


def test_checksum_is_over_the_encoded_bytes() -> None:
    message = build(
        "24", {"patron_status": " " * 14, "language": "019"}, AO="MAIN", AA="P1", AE="张伟"
    )
    for encoding in ("utf-8", "gb18030"):
        data = encode(message, encoding, sequence=1, error_detection=True)[:-1]
        assert "张伟".encode(encoding) in data
        assert (sum(data[:-4]) + int(data[-4:], 16)) & 0xFFFF == 0


def test_required_fields_are_always_written_and_values_are_cleaned() -> None:
    message = build(
        "12",
        {"ok": "0", "renewal_ok": "N", "magnetic_media": "N", "desensitize": "N"},
        AO="MAIN",
        AF=["line|one\r\nline two"],
    )
    data = encode(message, "utf-8")
    # AA, AB, AJ, AH are required in 12: present even though empty, in the spec's order.
    assert data == b"120NNN" + b" " * 18 + b"AOMAIN|AA|AB|AJ|AH|AFline one  line two|\r"


def test_values_are_capped_at_255_bytes_on_a_character_boundary() -> None:
    message = build("18", {}, AB="1", AJ="书" * 200)
    data = encode(message, "utf-8")
    title = data.split(b"AJ", 1)[1].split(b"|", 1)[0]
    assert len(title) == 255 and title.decode("utf-8") == "书" * 85


# --- frames real clients send (research note §4.1 and §4.3) --------------------------------

PYPI_SIP2_FRAMES = [
    b"9300CNsc1|COpw|CPdesk-1|AY0AZF6B2",
    b"9900802.00AY1AZFCA0",
    b"6300020261123    194514  Y       AOMAIN|AA12345|AD0000|BP1|BQ5|AY2AZF06C",
    b"11NN20261123    194514                  AOMAIN|AA12345|AB0001|AC|AD0000|BON|BIN|AY3AZECB2",
    b"09N20261123    19451420261123    194514APdesk-1|AOMAIN|AB0001|AC|AY4AZEF4B",
    b"3520261123    194514AOMAIN|AA12345|AD0000|AY5AZF4F6",
    b"2300020261123    194529AOMAIN|AA12345|AC|AD0000|AY1AZF367",
    b"65AOMAIN|AA12345|AD0000|BON|AY4AZF6E2",
    b"15+20261123    194535BSMAIN|BY2|AOMAIN|AA12345|AD0000|AB0001|BON|AY5AZEE30",
    b"3720261123    1945370100EURBV2.50|AOMAIN|AA12345|AD0000|AY6AZF168",
    b"01N20261123    194537AOMAIN|ALcard left in machine|AA12345|AC|AY9AZED0D",
    b"97AZFEF5",
]


@pytest.mark.parametrize("frame", PYPI_SIP2_FRAMES)
def test_frames_of_the_pypi_sip2_client_parse_with_valid_checksums(frame: bytes) -> None:
    received = parse(frame, "utf-8")
    assert received.checksum_ok is True


def test_liberal_reading_of_real_client_quirks() -> None:
    renew_all = parse(PYPI_SIP2_FRAMES[7], "utf-8").message  # no transaction date
    assert renew_all.fixed["transaction_date"] == ""
    assert renew_all.get("AO") == "MAIN" and renew_all.get("AA") == "12345"
    checkout = parse(PYPI_SIP2_FRAMES[3], "utf-8").message  # 18 blanks as nb due date
    assert checkout.fixed["nb_due_date"].strip() == ""
    assert checkout.get("AB") == "0001" and checkout.get("AC") == ""
    info = parse(PYPI_SIP2_FRAMES[2], "utf-8").message
    assert info.fixed["summary"] == "  Y       " and info.get("BQ") == "5"
    hold = parse(PYPI_SIP2_FRAMES[8], "utf-8").message
    assert hold.fixed["hold_mode"] == "+" and hold.get("BY") == "2"
    fee = parse(PYPI_SIP2_FRAMES[9], "utf-8").message
    assert (fee.fixed["fee_type"], fee.fixed["payment_type"], fee.fixed["currency_type"]) == (
        "01",
        "00",
        "EUR",
    )
    assert fee.get("BV") == "2.50"


def test_berick_pysip2_frames_without_error_detection() -> None:
    login = parse(b"9300CNsc1|COpw|CPdesk-1|", "utf-8")
    assert login.checksum_ok is None and login.message.get("CO") == "pw"
    status = parse(b"9901002.00", "utf-8").message
    assert status.fixed == {
        "status_code": "0",
        "max_print_width": "100",
        "protocol_version": "2.00",
    }
    # AO before AP, no AC: fields in any order, a missing one reads as empty.
    checkin = parse(b"09N20261123    19451420261123    194514AOMAIN|APdesk-1|AB0001|", "utf-8")
    assert checkin.message.get("AP") == "desk-1" and checkin.message.get("AC") == ""


def test_a_wrong_checksum_is_detected() -> None:
    assert parse(b"9900802.00AY1AZFCA1", "utf-8").checksum_ok is False
    assert parse(b"9900802.00AY1AZFCA0", "utf-8").checksum_ok is True


def test_three_digit_checksums_of_the_pypi_client_are_read() -> None:
    # Its _crc_calc does not pad: a checksum below 0x1000 goes out as 3 hex digits.
    name = "张"
    while True:
        body = b"2300020261123    194514AOMAIN|AA1|AE" + name.encode() + b"|AY1AZ"
        if 0 < int(checksum(body), 16) < 0x1000:
            break
        name += "A"
    value = int(checksum(body), 16)
    assert parse(body + f"{value:X}".encode(), "utf-8").checksum_ok is True


@pytest.mark.parametrize("junk", [b"", b"X", b"ab", b"\x16\x03\x01\x02\x00\x01", "中文".encode()])
def test_what_is_not_sip2_raises_frame_error(junk: bytes) -> None:
    with pytest.raises(FrameError):
        parse(junk, "utf-8")


def test_dates() -> None:
    moment = datetime(2026, 11, 30, 2, 15, 0, tzinfo=UTC)
    assert codec.format_date(moment, SHANGHAI) == "20261130    101500"
    assert codec.parse_date("20261130    101500", SHANGHAI) == moment
    assert codec.parse_date("20261130   Z021500", SHANGHAI) == moment
    assert codec.parse_date(" " * 18, SHANGHAI) is None
    assert codec.parse_date("2026113x    101500", SHANGHAI) is None


# --- framing -------------------------------------------------------------------------------


def test_framing_cr_crlf_leading_junk_and_split_reads() -> None:
    framer = Framer(64)
    assert framer.feed(b"\x00\n 9900802.00\r\n9300CNa|COb|\r") == [b"9900802.00", b"9300CNa|COb|"]
    assert framer.feed(b"99008") == []
    assert framer.pending == 5
    assert framer.feed(b"02.00\r") == [b"9900802.00"]
    assert framer.feed(b"\r\n\r") == []  # empty lines are not frames


def test_an_oversize_frame_is_reported_once_and_the_stream_recovers() -> None:
    framer = Framer(16)
    assert framer.feed(b"9" * 10) == []
    assert framer.feed(b"9" * 10) == [OVERSIZE]
    assert framer.feed(b"9" * 1000) == []  # still the same frame: dropped, memory bounded
    assert framer.pending == 0
    assert framer.feed(b"999\r9900802.00\r") == [b"9900802.00"]
    assert framer.feed(b"1" * 20 + b"\r") == [OVERSIZE]  # a whole long frame in one read
