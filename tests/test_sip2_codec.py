"""SIP2 codec and framing, from exact bytes: checksums, every message round-trip, the frames
real clients send (PyPI `sip2`, berick's pysip2), liberal reading and exact writing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sip2 import codec
from sip2.codec import FrameError, build, checksum, encode, parse
from sip2.framing import OVERSIZE, Framer
from sip2.spec import ANSWERED_BY, REQUESTS, RESPONSES, Terminator

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


# --- the two checksum readings: bytes and characters ------------------------------------------


def byte_sum_checksum(data: bytes) -> bytes:
    return f"{(-sum(data)) & 0xFFFF:04X}".encode("ascii")


def character_sum_checksum(text: str) -> bytes:
    """What the PyPI `sip2` client sends: the code points of the text, not its bytes."""
    return f"{(-sum(ord(character) for character in text)) & 0xFFFF:04X}".encode("ascii")


# Requests a Chinese library's terminals send, up to and including AZ: a desk login whose
# location is Chinese, patron status and information with a Chinese patron id, item
# information and a checkout with Chinese identifiers.
NON_ASCII_REQUESTS = [
    "9300CN借书处一号|CO口令|CP一楼借书处|AY0AZ",
    "2300020260302    090000AO中心馆|AA读者甲|AC|AD1234|AY1AZ",
    "6300020260302    090000  Y       AO中心馆|AA读者甲|AD1234|BP1|BQ5|AY2AZ",
    "1720260302    090000AO中心馆|AB图书一号|AY3AZ",
    "11NN20260302    090000                  AO中心馆|AA读者甲|AB图书一号|AC|AY4AZ",
]


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
@pytest.mark.parametrize("text", NON_ASCII_REQUESTS)
def test_a_checksum_over_the_bytes_or_over_the_characters_is_accepted(
    text: str, encoding: str
) -> None:
    data = text.encode(encoding)
    by_bytes, by_characters = byte_sum_checksum(data), character_sum_checksum(text)
    assert by_bytes != by_characters  # the two client kinds really send different AZ values
    for stated in (by_bytes, by_characters):
        received = parse(data + stated, encoding)
        assert received.checksum_ok is True, stated
        assert received.message.command == text[:2]
        assert all(value in text for _code, value in received.message.fields)  # decoded whole
    wrong = f"{(int(by_bytes, 16) + 1) & 0xFFFF:04X}".encode("ascii")
    assert wrong != by_characters
    assert parse(data + wrong, encoding).checksum_ok is False


def test_the_decoded_fields_are_the_chinese_text() -> None:
    text = NON_ASCII_REQUESTS[0]
    for encoding in ("utf-8", "gb18030"):
        data = text.encode(encoding)
        login = parse(data + character_sum_checksum(text), encoding).message
        assert (login.get("CN"), login.get("CO"), login.get("CP")) == (
            "借书处一号",
            "口令",
            "一楼借书处",
        )
        assert login.sequence == 0


def test_a_character_sum_counts_only_in_the_charset_the_bytes_are_in() -> None:
    # GB18030 bytes are not UTF-8: read as a UTF-8 account's frame, only the byte sum can
    # match, so a character sum over the intended text is a corrupt frame here (96).
    text = NON_ASCII_REQUESTS[0]
    data = text.encode("gb18030")
    assert parse(data + character_sum_checksum(text), "utf-8").checksum_ok is False
    assert parse(data + byte_sum_checksum(data), "utf-8").checksum_ok is True


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_answers_carry_the_byte_sum(encoding: str) -> None:
    message = build(
        "24", {"patron_status": " " * 14, "language": "019"}, AO="中心馆", AA="读者甲", AE="张伟"
    )
    data = encode(message, encoding, sequence=1, error_detection=True)[:-1]
    through_az, stated = data[:-4], data[-4:]
    assert stated == byte_sum_checksum(through_az)
    assert stated != character_sum_checksum(through_az.decode(encoding))


# --- every response, byte for byte, from the spec text (h11's SIMPLE_CASES style) ----------
#
# Each case is a message as a handler builds it and the exact bytes the 3M Standard Interchange
# Protocol 2.00 (3M SelfCheck System SIP2 Developer's Guide) says it is written as. The
# expected bytes are spelled out here from each message's layout in the guide, quoted above
# the case, with the widths it gives: never from sip2/spec.py. Fixed fields come first, in the
# layout's order and at its widths; then every variable field as its two-letter id, value and
# `|`, in the layout's order. AY/AZ are added below by `spec_trailer`, computed from the
# guide's own definition of the checksum.

TD = "20260302    090000"  # "18-char, fixed-length required field: YYYYMMDDZZZZHHMMSS"
W = TD.encode("ascii")
BX = "Y" * 16  # 16 Y/N flags, one per message the ACS supports


def spec_trailer(body: bytes, sequence: int | None) -> bytes:
    """Guide, "Error Detection": the sequence number field `AY` (one digit) and the checksum
    field `AZ` end the message (the definition as the PyPI `sip2` client's docstring quotes
    it): "The checksum is four ASCII character digits representing the
    binary sum of the characters including the first character of the transmission and up to
    and including the checksum field identifier characters. To calculate the checksum add each
    character as an unsigned binary number, take the lower 16 bits of the total and perform a
    2's complement." The characters are the bytes on the wire."""
    head = body + (b"" if sequence is None else b"AY" + str(sequence).encode("ascii")) + b"AZ"
    total = 0
    for octet in head:
        total += octet
    twos_complement = (0x10000 - (total & 0xFFFF)) & 0xFFFF
    return head + f"{twos_complement:04X}".encode("ascii")


def u(text: str) -> bytes:
    return text.encode("utf-8")


def g(text: str) -> bytes:
    return text.encode("gb18030")


RESPONSE_CASES: list[tuple[str, codec.Message, str, bytes]] = [
    # Login Response: 94<ok>  (ok: 1-char, 0 or 1)
    ("94", build("94", {"ok": "1"}), "utf-8", b"94" + b"1"),
    # Request SC Resend: 96  (no fields at all)
    ("96", build("96", {}), "utf-8", b"96"),
    # ACS Status: 98<on-line status><checkin ok><checkout ok><ACS renewal policy>
    #   <status update ok><off-line ok><timeout period><retries allowed><date / time sync>
    #   <protocol version><institution id><library name><supported messages>
    #   <terminal location><screen message><print line>
    #   1,1,1,1,1,1-char, 3-char, 3-char, 18-char, 4-char, AO, AM, BX, AN, AF, AG
    (
        "98",
        build(
            "98",
            {
                "online_status": "Y",
                "checkin_ok": "Y",
                "checkout_ok": "Y",
                "acs_renewal_policy": "N",
                "status_update_ok": "Y",
                "offline_ok": "N",
                "timeout_period": "050",
                "retries_allowed": "003",
                "date_time_sync": TD,
                "protocol_version": "2.00",
            },
            AO="MAIN",
            AM="中心图书馆",
            BX=BX,
            AN="一楼借书处",
            AF=["欢迎"],
        ),
        "utf-8",
        b"98"
        + b"YYYNYN"
        + b"050"
        + b"003"
        + W
        + b"2.00"
        + b"AOMAIN|"
        + u("AM中心图书馆|")
        + b"BX"
        + BX.encode()
        + b"|"
        + u("AN一楼借书处|")
        + u("AF欢迎|"),
    ),
    # Patron Status Response: 24<patron status><language><transaction date><institution id>
    #   <patron identifier><personal name><valid patron><valid patron password>
    #   <currency type><fee amount><screen message><print line>
    #   14-char, 3-char, 18-char, AO, AA, AE, BL, CQ, BH, BV, AF, AG
    (
        "24",
        build(
            "24",
            {"patron_status": "  Y           ", "language": "019", "transaction_date": TD},
            AO="MAIN",
            AA="读者甲",
            AE="张伟",
            BL="Y",
            CQ="Y",
            BH="CNY",
            BV="2.50",
            AF=["有逾期图书"],
        ),
        "utf-8",
        b"24"
        + b"  Y           "
        + b"019"
        + W
        + b"AOMAIN|"
        + u("AA读者甲|AE张伟|")
        + b"BLY|CQY|BHCNY|BV2.50|"
        + u("AF有逾期图书|"),
    ),
    # The same in GB18030: the widths and ids are the same, the values are that charset's bytes.
    (
        "24-gb18030",
        build(
            "24",
            {"patron_status": " " * 14, "language": "019", "transaction_date": TD},
            AO="MAIN",
            AA="读者甲",
            AE="张伟",
            BL="Y",
        ),
        "gb18030",
        b"24" + b" " * 14 + b"019" + W + b"AOMAIN|" + g("AA读者甲|AE张伟|") + b"BLY|",
    ),
    # Checkin Response: 10<ok><resensitize><magnetic media><alert><transaction date>
    #   <institution id><item identifier><permanent location><title identifier><sort bin>
    #   <patron identifier><media type><item properties><screen message><print line>
    #   1,1,1,1-char, 18-char, AO, AB, AQ, AJ, CL, AA, CK, CH, AF, AG
    (
        "10",
        build(
            "10",
            {
                "ok": "1",
                "resensitize": "Y",
                "magnetic_media": "N",
                "alert": "N",
                "transaction_date": TD,
            },
            AO="MAIN",
            AB="54122100600051",
            AQ="二楼书库",
            AJ="红楼梦",
            CL="2",
            AA="P0001",
            CK="001",
            CH="精装",
        ),
        "utf-8",
        b"10"
        + b"1YNN"
        + W
        + b"AOMAIN|AB54122100600051|"
        + u("AQ二楼书库|AJ红楼梦|")
        + b"CL2|AAP0001|CK001|"
        + u("CH精装|"),
    ),
    # Checkin Response with the 3M SIP2 Extensions' fields (doc rev 1.20): CR collection code,
    # CS call number, CT destination location, CV alert type, CY hold patron id, DA hold patron
    # name. The extensions fix no position; ours: after the 2.00 data fields, before AF/AG.
    (
        "10-extensions",
        build(
            "10",
            {
                "ok": "1",
                "resensitize": "N",
                "magnetic_media": "N",
                "alert": "Y",
                "transaction_date": TD,
            },
            AO="MAIN",
            AB="B1",
            AQ="MAIN",
            CS="I242.4/C36",
            CT="一楼借书处",
            CV="01",
            CY="P0002",
            DA="王芳",
            AF=["预约到书"],
        ),
        "utf-8",
        b"10"
        + b"1NNY"
        + W
        + b"AOMAIN|ABB1|AQMAIN|CSI242.4/C36|"
        + u("CT一楼借书处|")
        + b"CV01|CYP0002|"
        + u("DA王芳|AF预约到书|"),
    ),
    # Checkout Response: 12<ok><renewal ok><magnetic media><desensitize><transaction date>
    #   <institution id><patron identifier><item identifier><title identifier><due date>
    #   <fee type><security inhibit><currency type><fee amount><media type><item properties>
    #   <transaction id><screen message><print line>
    #   1,1,1,1-char, 18-char, AO, AA, AB, AJ, AH, BT, CI, BH, BV, CK, CH, BK, AF, AG
    (
        "12",
        build(
            "12",
            {
                "ok": "1",
                "renewal_ok": "N",
                "magnetic_media": "N",
                "desensitize": "Y",
                "transaction_date": TD,
            },
            AO="MAIN",
            AA="读者甲",
            AB="54122100600051",
            AJ="红楼梦",
            AH="20260330    235900",
            BT="01",
            CI="N",
            BH="CNY",
            BV="0.00",
            CK="001",
            CH="附光盘",
            BK="T1",
            AF=["借书成功"],
            AG=["打印"],
        ),
        "utf-8",
        b"12"
        + b"1NNY"
        + W
        + b"AOMAIN|"
        + u("AA读者甲|")
        + b"AB54122100600051|"
        + u("AJ红楼梦|")
        + b"AH20260330    235900|BT01|CIN|BHCNY|BV0.00|CK001|"
        + u("CH附光盘|")
        + b"BKT1|"
        + u("AF借书成功|AG打印|"),
    ),
    # Patron Information Response: 64<patron status><language><transaction date>
    #   <hold items count><overdue items count><charged items count><fine items count>
    #   <recall items count><unavailable holds count><institution id><patron identifier>
    #   <personal name><hold items limit><overdue items limit><charged items limit>
    #   <valid patron><valid patron password><currency type><fee amount><fee limit>
    #   <hold items><overdue items><charged items><fine items><recall items>
    #   <unavailable hold items><home address><e-mail address><home phone number>
    #   <screen message><print line>
    #   14-char, 3-char, 18-char, 4-char ×6, AO, AA, AE, BZ, CA, CB, BL, CQ, BH, BV, CC,
    #   AS, AT, AU, AV, BU, CD (each repeated per item), BD, BE, BF, AF, AG
    (
        "64",
        build(
            "64",
            {
                "patron_status": " " * 14,
                "language": "019",
                "transaction_date": TD,
                "hold_items_count": "0001",
                "overdue_items_count": "0000",
                "charged_items_count": "0002",
                "fine_items_count": "0000",
                "recall_items_count": "0000",
                "unavailable_holds_count": "0000",
            },
            AO="MAIN",
            AA="读者甲",
            AE="张伟",
            BZ="0005",
            CA="0003",
            CB="0010",
            BL="Y",
            CQ="Y",
            BH="CNY",
            BV="0.00",
            CC="10.00",
            AU=["红楼梦", "西游记"],
            BD="北京市海淀区",
            BE="zw@example.org",
            BF="010-12345678",
        ),
        "utf-8",
        b"64"
        + b" " * 14
        + b"019"
        + W
        + b"0001"
        + b"0000"
        + b"0002"
        + b"0000"
        + b"0000"
        + b"0000"
        + b"AOMAIN|"
        + u("AA读者甲|AE张伟|")
        + b"BZ0005|CA0003|CB0010|BLY|CQY|BHCNY|BV0.00|CC10.00|"
        + u("AU红楼梦|AU西游记|BD北京市海淀区|")
        + b"BEzw@example.org|BF010-12345678|",
    ),
    # Item Information Response: 18<circulation status><security marker><fee type>
    #   <transaction date><hold queue length><due date><recall date><hold pickup date>
    #   <item identifier><title identifier><owner><currency type><fee amount><media type>
    #   <permanent location><current location><item properties><screen message><print line>
    #   2-char, 2-char, 2-char, 18-char, CF, AH, CJ, CM, AB, AJ, BG, BH, BV, CK, AQ, AP, CH,
    #   AF, AG
    (
        "18",
        build(
            "18",
            {
                "circulation_status": "04",
                "security_marker": "02",
                "fee_type": "01",
                "transaction_date": TD,
            },
            CF="1",
            AH="20260330    235900",
            AB="图书一号",
            AJ="红楼梦",
            BG="中心馆",
            CK="001",
            AQ="二楼书库",
            AP="一楼借书处",
        ),
        "utf-8",
        b"18"
        + b"04"
        + b"02"
        + b"01"
        + W
        + b"CF1|AH20260330    235900|"
        + u("AB图书一号|AJ红楼梦|BG中心馆|")
        + b"CK001|"
        + u("AQ二楼书库|AP一楼借书处|"),
    ),
    # Renew Response: 30, the Checkout Response's layout:
    #   1,1,1,1-char, 18-char, AO, AA, AB, AJ, AH, BT, CI, BH, BV, CK, CH, BK, AF, AG
    (
        "30",
        build(
            "30",
            {
                "ok": "0",
                "renewal_ok": "N",
                "magnetic_media": "U",
                "desensitize": "U",
                "transaction_date": TD,
            },
            AO="MAIN",
            AA="P0001",
            AB="B1",
            AJ="红楼梦",
            AH="",
            AF=["该书已被预约, 不能续借"],
        ),
        "utf-8",
        b"30"
        + b"0NUU"
        + W
        + b"AOMAIN|AAP0001|ABB1|"
        + u("AJ红楼梦|")
        + b"AH|"
        + u("AF该书已被预约, 不能续借|"),
    ),
    # Renew All Response: 66<ok><renewed count><unrenewed count><transaction date>
    #   <institution id><renewed items><unrenewed items><screen message><print line>
    #   1-char, 4-char, 4-char, 18-char, AO, BM (per item), BN (per item), AF, AG
    (
        "66",
        build(
            "66",
            {"ok": "1", "renewed_count": "0002", "unrenewed_count": "0001", "transaction_date": TD},
            AO="MAIN",
            BM=["B1", "B2"],
            BN=["B3"],
        ),
        "utf-8",
        b"66" + b"1" + b"0002" + b"0001" + W + b"AOMAIN|BMB1|BMB2|BNB3|",
    ),
    # Hold Response: 16<ok><available><transaction date><expiration date><queue position>
    #   <pickup location><institution id><patron identifier><item identifier>
    #   <title identifier><screen message><print line>
    #   1-char, 1-char, 18-char, BW, BR, BS, AO, AA, AB, AJ, AF, AG
    (
        "16",
        build(
            "16",
            {"ok": "1", "available": "N", "transaction_date": TD},
            BW="20260401    235900",
            BR="1",
            BS="一楼借书处",
            AO="MAIN",
            AA="读者甲",
            AB="B1",
            AJ="红楼梦",
        ),
        "utf-8",
        b"16"
        + b"1N"
        + W
        + b"BW20260401    235900|BR1|"
        + u("BS一楼借书处|")
        + b"AOMAIN|"
        + u("AA读者甲|")
        + b"ABB1|"
        + u("AJ红楼梦|"),
    ),
    # End Session Response: 36<end session><transaction date><institution id>
    #   <patron identifier><screen message><print line>   1-char, 18-char, AO, AA, AF, AG
    (
        "36",
        build("36", {"end_session": "Y", "transaction_date": TD}, AO="MAIN", AA="读者甲"),
        "utf-8",
        b"36" + b"Y" + W + b"AOMAIN|" + u("AA读者甲|"),
    ),
    # Fee Paid Response: 38<payment accepted><transaction date><institution id>
    #   <patron identifier><transaction id><screen message><print line>
    #   1-char, 18-char, AO, AA, BK, AF, AG
    (
        "38",
        build(
            "38",
            {"payment_accepted": "Y", "transaction_date": TD},
            AO="MAIN",
            AA="读者甲",
            BK="T-1",
            AF=["已收款 2.50 元"],
        ),
        "utf-8",
        b"38" + b"Y" + W + b"AOMAIN|" + u("AA读者甲|") + b"BKT-1|" + u("AF已收款 2.50 元|"),
    ),
    # Item Status Update Response: 20<item properties ok><transaction date><item identifier>
    #   <title identifier><item properties><screen message><print line>
    #   1-char, 18-char, AB, AJ, CH, AF, AG
    (
        "20",
        build(
            "20",
            {"item_properties_ok": "1", "transaction_date": TD},
            AB="B1",
            AJ="红楼梦",
            CH="附光盘",
        ),
        "utf-8",
        b"20" + b"1" + W + b"ABB1|" + u("AJ红楼梦|CH附光盘|"),
    ),
    # Patron Enable Response: 26<patron status><language><transaction date><institution id>
    #   <patron identifier><personal name><valid patron><valid patron password>
    #   <screen message><print line>   14-char, 3-char, 18-char, AO, AA, AE, BL, CQ, AF, AG
    (
        "26",
        build(
            "26",
            {"patron_status": " " * 14, "language": "019", "transaction_date": TD},
            AO="MAIN",
            AA="读者甲",
            AE="张伟",
            BL="Y",
            CQ="N",
        ),
        "utf-8",
        b"26" + b" " * 14 + b"019" + W + b"AOMAIN|" + u("AA读者甲|AE张伟|") + b"BLY|CQN|",
    ),
]


def test_the_table_covers_every_response_we_send() -> None:
    assert {message.command for _name, message, _encoding, _data in RESPONSE_CASES} == {
        spec.command for spec in RESPONSES
    }


@pytest.mark.parametrize(
    ("message", "encoding", "data"),
    [case[1:] for case in RESPONSE_CASES],
    ids=[case[0] for case in RESPONSE_CASES],
)
def test_each_response_is_written_as_the_spec_lays_it_out(
    message: codec.Message, encoding: str, data: bytes
) -> None:
    assert encode(message, encoding) == data + b"\r"
    # "This message should never include a sequence number field" (96 and 97).
    sequence = None if message.command == "96" else 7
    assert encode(message, encoding, sequence=7, error_detection=True) == (
        spec_trailer(data, sequence) + b"\r"
    )
    assert encode(message, encoding, terminator=Terminator.CRLF) == data + b"\r\n"


@pytest.mark.parametrize(
    ("message", "encoding", "data"),
    [case[1:] for case in RESPONSE_CASES],
    ids=[case[0] for case in RESPONSE_CASES],
)
def test_each_response_reads_back_as_the_same_message(
    message: codec.Message, encoding: str, data: bytes
) -> None:
    received = parse(spec_trailer(data, 3), encoding)
    assert received.checksum_ok is True
    assert received.message.command == message.command
    assert received.message.fixed == message.fixed
    assert sorted(received.message.fields) == sorted(message.fields)


def test_the_guide_s_checksum_example() -> None:
    # The guide's worked example (an SC Status message, p. 26 as Koha's and Evergreen's
    # checksum tests cite it): byte sum 0x034C, checksum FCB4.
    assert spec_trailer(b"990 402.00", 1) == b"990 402.00AY1AZFCB4"


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
