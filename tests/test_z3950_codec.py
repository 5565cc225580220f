"""The Z39.50 codec from exact bytes: APDUs yaz-client really sent, answers byte for byte,
and the BER screening in front of asn1tools (framing, indefinite lengths, hostile lengths)."""

from __future__ import annotations

import pytest

from gateway.z3950_codec import ber, oids
from gateway.z3950_codec.diagnostics import Diagnostic
from gateway.z3950_codec.messages import (
    Attribute,
    AttributesPlusTerm,
    CharsetProposal,
    Close,
    DeleteResultSetResponse,
    ExtendedServicesResponse,
    InitRequest,
    InitResponse,
    NamePlusRecord,
    PresentRequest,
    PresentResponse,
    RetrievalRecord,
    RpnOperation,
    RpnQuery,
    ScanEntry,
    ScanRequest,
    ScanResponse,
    SearchRequest,
    SearchResponse,
    SortKeySpec,
    SortRequest,
    SortResponse,
    Unsupported,
)
from tests.conftest import FIXTURES
from z3950 import codec


def captured() -> dict[str, bytes]:
    found = {}
    for line in (FIXTURES / "z3950" / "yaz_client_apdus.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, data = line.split()
            found[name] = bytes.fromhex(data)
    return found


APDUS = captured()


# --- what yaz-client sends ---------------------------------------------------------------------


def test_yaz_client_init_request() -> None:
    request = codec.decode(APDUS["initRequest"])
    assert request == InitRequest(
        versions=frozenset({1, 2, 3}),
        options=frozenset(
            {
                "search",
                "present",
                "delSet",
                "triggerResourceCtrl",
                "scan",
                "sort",
                "extendedServices",
                "namedResultSets",
                "negotiationModel",
            }
        ),
        preferred_message_size=64 * 1024 * 1024,
        exceptional_record_size=64 * 1024 * 1024,
        implementation_id="81",
        implementation_name="YAZ",
        implementation_version="5.34.0 dec0c8a0b762132468cc8264c1b220eae1c67bd7",
        charset_proposal=CharsetProposal(("UTF-8",), (), True),
    )


def test_yaz_client_search_request_keeps_the_term_bytes() -> None:
    request = codec.decode(APDUS["searchRequest"])
    assert isinstance(request, SearchRequest)
    assert request.result_set_name == "1" and request.replace_indicator
    assert request.database_names == ("main",)
    assert (request.small_set_upper_bound, request.large_set_lower_bound) == (0, 1)
    assert request.query == RpnQuery(
        oids.BIB1, AttributesPlusTerm((Attribute(1, 4),), "历史".encode(), "general")
    )


def test_yaz_client_present_scan_sort_close() -> None:
    assert codec.decode(APDUS["presentRequest"]) == PresentRequest(
        result_set_id="1",
        result_set_start_point=1,
        number_of_records_requested=1,
        preferred_record_syntax=oids.UNIMARC,
    )
    assert codec.decode(APDUS["scanRequest"]) == ScanRequest(
        database_names=("main",),
        attribute_set=oids.BIB1,
        term=AttributesPlusTerm((Attribute(1, 1003),), "谭".encode(), "general"),
        step_size=0,
        number_of_terms_requested=20,
        preferred_position_in_response=1,
    )
    assert codec.decode(APDUS["sortRequest"]) == SortRequest(
        input_result_set_names=("1",),
        sorted_result_set_name="1",
        sort_sequence=(
            SortKeySpec(
                "attributes",
                attributes=(Attribute(1, 4),),
                attribute_set=oids.BIB1,
                relation=0,
                case_sensitivity=1,
                missing_value_action="null",
            ),
        ),
    )
    assert codec.decode(APDUS["close"]) == Close(close_reason=0)


# --- what we answer, byte for byte ---------------------------------------------------------------


def test_init_response_bytes() -> None:
    response = InitResponse(
        versions=frozenset({1, 2, 3}),
        options=frozenset(
            {"search", "present", "delSet", "scan", "sort", "namedResultSets", "negotiationModel"}
        ),
        preferred_message_size=1048576,
        exceptional_record_size=4194304,
        result=True,
        implementation_id="libgate",
        implementation_name="libgate Z39.50 target",
        implementation_version="0.1.0",
        selected_charset="UTF-8",
        records_in_selected_charsets=True,
    )
    assert codec.encode(response) == APDUS["initResponse"]


def test_small_answers_bytes() -> None:
    assert codec.encode(
        SearchResponse(
            result_count=1,
            number_of_records_returned=0,
            next_result_set_position=1,
            search_status=True,
        )
    ) == bytes.fromhex("b70c970101980100990101960101")  # TRUE as 0x01, as YAZ writes it
    assert codec.encode(SortResponse(sort_status=0, result_count=1)) == APDUS["sortResponse"]
    assert codec.encode(Close(close_reason=0)) == APDUS["close"]
    # A reference id is echoed first; Close reason 6 = protocolError, with a message.
    encoded = codec.encode(Close(reference_id=b"r1", close_reason=6, diagnostic_information="x"))
    assert encoded == bytes.fromhex("bf300c820272319f81530106830178")


def test_diagnostic_in_a_search_response() -> None:
    encoded = codec.encode(
        SearchResponse(
            result_count=0,
            number_of_records_returned=0,
            next_result_set_position=0,
            search_status=False,
            result_set_status=3,
            present_status=5,
            records=Diagnostic(114, "9999"),
        )
    )
    # [130] nonSurrogateDiagnostic: diagnostic set Bib-1, condition 114, v3 addinfo "9999"
    tail = bytes.fromhex("bf81021206072a8648ce1304010201721b0439393939")
    assert encoded == bytes.fromhex("b7289701009801009901009601009a01039b0105") + tail
    assert codec.encode(
        SearchResponse(
            result_count=0,
            number_of_records_returned=0,
            next_result_set_position=0,
            search_status=False,
            records=Diagnostic(114, "9999"),
        ),
        version=2,
    ).endswith(bytes.fromhex("1a0439393939"))  # version 2: VisibleString addinfo


def test_records_and_surrogates_round_trip_through_the_schema() -> None:
    response = PresentResponse(
        number_of_records_returned=2,
        next_result_set_position=0,
        present_status=0,
        records=(
            NamePlusRecord(
                "main", RetrievalRecord(oids.UNIMARC, octets=b"00024nam0 2200000   450 ")
            ),
            NamePlusRecord("main", Diagnostic(238, "UNIMARC")),
        ),
    )
    name, value = codec.schema().decode("PDU", codec.encode(response))
    assert name == "presentResponse"
    first, second = value["records"][1]
    assert first["name"] == b"main"
    kind, external = first["record"]
    assert kind == "retrievalRecord"
    assert external["direct-reference"] == oids.UNIMARC
    assert external["encoding"] == ("octet-aligned", b"00024nam0 2200000   450 ")
    assert second["record"][1][1]["condition"] == 238


def test_scan_delete_and_extended_services_answers() -> None:
    scan = codec.encode(
        ScanResponse(
            scan_status=0, entries=(ScanEntry("历史", 2),), position_of_term=1, step_size=0
        )
    )
    name, value = codec.schema().decode("PDU", scan)
    assert name == "scanResponse" and value["numberOfEntriesReturned"] == 1
    info = value["entries"]["entries"][0][1]
    assert info["term"] == ("general", "历史".encode()) and info["globalOccurrences"] == 2
    deleted = codec.encode(
        DeleteResultSetResponse(delete_operation_status=9, list_statuses=(("a", 0), ("b", 1)))
    )
    assert codec.schema().decode("PDU", deleted)[1]["deleteListStatuses"] == [
        {"id": b"a", "status": 0},
        {"id": b"b", "status": 1},  # resultSetDidNotExist
    ]
    refusal = codec.schema().decode("PDU", codec.encode(ExtendedServicesResponse()))[1]
    assert refusal["operationStatus"] == 3  # failure
    assert refusal["diagnostics"][0][1]["condition"] == 221


def test_boolean_query_and_unsupported_apdus() -> None:
    rpn = (
        "rpnRpnOp",
        {
            "rpn1": ("op", ("attrTerm", {"attributes": [], "term": ("general", b"a")})),
            "rpn2": ("op", ("resultSet", b"1")),
            "op": ("and-not", None),
        },
    )
    apdu = codec.schema().encode(
        "PDU",
        (
            "searchRequest",
            {
                "smallSetUpperBound": 0,
                "largeSetLowerBound": 1,
                "mediumSetPresentNumber": 0,
                "replaceIndicator": True,
                "resultSetName": b"x",
                "databaseNames": [b"main"],
                "query": ("type-1", {"attributeSet": oids.BIB1, "rpn": rpn}),
            },
        ),
    )
    query = codec.decode(bytes(apdu)).query
    assert isinstance(query.root, RpnOperation) and query.root.operator == "and-not"
    # An access control response (tag 29) is not decoded; its reference id is kept.
    assert codec.decode(bytes.fromhex("bf1d06820268699c00")) == Unsupported(
        29, "accessControlResponse", b"hi"
    )


# --- BER screening ------------------------------------------------------------------------------


def test_framing_finds_whole_apdus_only() -> None:
    close = APDUS["close"]
    assert ber.apdu_length(close + close, 1000) == len(close)
    for cut in range(len(close)):
        assert ber.apdu_length(close[:cut], 1000) is None
    with pytest.raises(ber.BerError):
        ber.apdu_length(b"\xbf\x30\x84\xff\xff\xff\xff", 1000)  # 4 GiB claimed
    with pytest.raises(ber.BerError):
        ber.apdu_length(b"\xbf\x30\x89" + b"\x01" * 9, 1000)  # a 9-byte length field
    with pytest.raises(ber.BerError):
        ber.apdu_length(b"\x30\x00", 1000)  # universal, not an APDU


def test_indefinite_lengths_are_made_definite() -> None:
    # The Close APDU with indefinite outer length: bf30 80 … 0000
    indefinite = bytes.fromhex("bf30809f815301000000")
    assert ber.apdu_length(indefinite + b"more", 1000) == len(indefinite)
    assert ber.normalise(indefinite) == APDUS["close"]
    assert codec.decode(indefinite) == Close(close_reason=0)
    # Nested: a search request whose query and RPN are indefinite decodes like the original.
    original = APDUS["searchRequest"]
    assert ber.normalise(original) is original  # nothing to rewrite: no copy


def test_hostile_nesting_and_lengths_are_refused() -> None:
    deep = b"\xbf\x30\x80" + b"\xa0\x80" * 200 + b"\x00\x00" * 201
    with pytest.raises(ber.BerError, match="nested"):
        ber.apdu_length(deep, 10**6)
    nested = _nest(100)
    with pytest.raises(ber.BerError, match="nested"):
        codec.decode(nested)
    with pytest.raises(ber.BerError):  # inner length runs past the APDU
        codec.decode(bytes.fromhex("bf30059f815305ff"))
    with pytest.raises(ber.BerError):  # primitive with indefinite length
        codec.decode(bytes.fromhex("bf30059f815380"))
    with pytest.raises(codec.ApduError):  # well-formed BER, not a Close
        codec.decode(bytes.fromhex("bf3003020100"))


def _nest(levels: int) -> bytes:
    value = b"\x04\x00"
    for _ in range(levels):
        value = b"\xa0" + ber.encode_length(len(value)) + value
    return b"\xbf\x30" + ber.encode_length(len(value)) + value


# --- response records written without asn1tools ------------------------------------------------


def _asn1tools_encoding(message: SearchResponse | PresentResponse, version: int) -> bytes:
    """What asn1tools writes for the whole response, records included."""
    name, value = codec._WRITERS[type(message)](message, version)
    return bytes(codec.schema().encode("PDU", (name, value)))


def _mixed_records() -> tuple[NamePlusRecord, ...]:
    return (
        NamePlusRecord("main", RetrievalRecord(oids.UNIMARC, octets=b"short")),
        NamePlusRecord("main", RetrievalRecord(oids.USMARC, octets=b"\x1e" * 300)),
        NamePlusRecord("日本", RetrievalRecord(oids.XML_TEXT, octets=b"x" * 70_000)),
        NamePlusRecord(None, Diagnostic(14, "the record has been deleted")),
        NamePlusRecord("main", Diagnostic(238, "UNIMARC")),
        NamePlusRecord("main", RetrievalRecord(oids.SUTRS, asn1=codec.general_string("Title"))),
        NamePlusRecord("main", RetrievalRecord(oids.UNIMARC, octets=b"")),
        NamePlusRecord(None, RetrievalRecord("1.2.840.10003.5.1000.81.2", octets=b"private")),
    )


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("reference", [None, b"ref-1"])
@pytest.mark.parametrize("count", [0, 1, 3, 8])
def test_response_records_are_what_asn1tools_writes(
    version: int, reference: bytes | None, count: int
) -> None:
    chosen = _mixed_records()[:count]
    search = SearchResponse(
        reference_id=reference,
        result_count=123456789,
        number_of_records_returned=count,
        next_result_set_position=count + 1,
        search_status=True,
        present_status=0,
        records=chosen,
    )
    present = PresentResponse(
        reference_id=reference,
        number_of_records_returned=count,
        next_result_set_position=count + 1,
        present_status=2,
        records=chosen,
    )
    for message in (search, present):
        written = codec.encode(message, version)
        assert written == _asn1tools_encoding(message, version)
        assert codec.schema().decode("PDU", written)[0] in ("searchResponse", "presentResponse")
