"""The union clients without a network: the origin's codec against our target's codec, the
session's state table, the Twisted adapter over an in-memory transport and a fake clock, and
the SRU response parser on what partners send (both namespaces, escaped records, hostile XML).
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from gateway.catalogue.query import Query, Term
from gateway.z3950_codec import oids
from gateway.z3950_codec.diagnostics import Diagnostic
from gateway.z3950_codec.messages import (
    AttributesPlusTerm,
    Close,
    InitRequest,
    InitResponse,
    NamePlusRecord,
    RetrievalRecord,
    RpnQuery,
    SearchRequest,
    SearchResponse,
)
from gateway.z3950_codec.origin import (
    PresentAnswer,
    ReceivedDiagnostic,
    ReceivedRecord,
    SearchAnswer,
    decode_response,
)
from gateway.z3950_codec.schema import schema
from union.errors import TargetProtocolError, TargetTimeout, TargetUnreachable
from union.sru_response import SruDiagnostic, SruRecord, SruResponseError, parse_search_retrieve
from union.z3950_client import Z3950Origin
from union.z3950_session import (
    CLOSED,
    OPEN,
    OriginSession,
    SessionError,
    UnexpectedAnswer,
)
from z3950 import codec

INIT_OK = InitResponse(
    versions=frozenset({2, 3}),
    options=frozenset({"search", "present"}),
    preferred_message_size=1 << 20,
    exceptional_record_size=1 << 20,
    result=True,
    implementation_id="t",
    implementation_name="target",
    implementation_version="1",
    selected_charset="UTF-8",
)
QUERY = Query(Term("title", "all", "猫"))


def opened(**options: Any) -> OriginSession:
    session = OriginSession("main", **options)
    session.init()
    session.receive(codec.encode(INIT_OK))
    return session


# --- the origin's codec, read by our target and reading our target -----------------------------


def test_init_request_proposes_utf8_and_our_target_reads_it() -> None:
    session = OriginSession("main", negotiate_utf8=True)
    request = codec.decode(session.init())
    assert isinstance(request, InitRequest)
    assert request.versions == {2, 3} and {"search", "present"} <= request.options
    assert request.charset_proposal is not None
    assert request.charset_proposal.charsets == ("UTF-8",)
    plain = codec.decode(OriginSession("main").init())
    assert isinstance(plain, InitRequest) and plain.charset_proposal is None


def test_init_response_with_the_selected_charset() -> None:
    session = OriginSession("main", encoding="gbk", negotiate_utf8=True)
    session.init()
    (answer,) = session.receive(codec.encode(INIT_OK))
    assert isinstance(answer, InitResponse) and answer.selected_charset == "UTF-8"
    # The target took UTF-8: terms go as UTF-8 though the target is configured as GBK.
    request = codec.decode(session.search(QUERY))
    assert isinstance(request, SearchRequest)
    assert isinstance(request.query, RpnQuery)
    assert isinstance(request.query.root, AttributesPlusTerm)
    assert request.query.root.term == "猫".encode()


def test_search_response_records_and_surrogate_diagnostics() -> None:
    records = (
        NamePlusRecord("main", RetrievalRecord(oids.UNIMARC, octets=b"00024nam  2200025   4500")),
        NamePlusRecord("main", Diagnostic(238, "UNIMARC")),
    )
    data = codec.encode(
        SearchResponse(
            result_count=2,
            number_of_records_returned=2,
            next_result_set_position=3,
            search_status=True,
            records=records,
        )
    )
    answer = decode_response(data)
    assert isinstance(answer, SearchAnswer) and answer.result_count == 2
    assert answer.records == (
        ReceivedRecord(oids.UNIMARC, b"00024nam  2200025   4500", "main"),
        ReceivedDiagnostic(238, "UNIMARC", oids.DIAG_BIB1),
    )


def test_a_non_surrogate_diagnostic_of_a_number_we_never_send() -> None:
    # Our Diagnostic type holds only conditions libgate sends; a partner's may be any number,
    # in any diagnostic set.
    diagnostic = {"diagnosticSetId": "1.2.3.4", "condition": 999, "addinfo": ("v2Addinfo", "x")}
    value = {
        "numberOfRecordsReturned": 0,
        "nextResultSetPosition": 1,
        "presentStatus": 5,
        "records": ("nonSurrogateDiagnostic", diagnostic),
    }
    answer = decode_response(bytes(schema().encode("PDU", ("presentResponse", value))))
    assert isinstance(answer, PresentAnswer)
    (received,) = answer.diagnostics
    assert (received.condition, received.addinfo, received.diagnostic_set) == (999, "x", "1.2.3.4")
    assert received.message == "diagnostic 999 (1.2.3.4)"
    assert ReceivedDiagnostic(999).message == "Bib-1 diagnostic 999"


# --- the state table -------------------------------------------------------------------------


def test_requests_only_in_the_states_that_allow_them() -> None:
    session = OriginSession("main")
    with pytest.raises(SessionError):
        session.search(QUERY)
    session.init()
    with pytest.raises(SessionError):
        session.init()
    session.receive(codec.encode(INIT_OK))
    assert session.state == OPEN
    session.search(QUERY)
    with pytest.raises(SessionError):  # one operation at a time
        session.present(1, 1, "unimarc")


def test_an_answer_out_of_turn_is_the_targets_error() -> None:
    session = opened()
    session.search(QUERY)
    with pytest.raises(UnexpectedAnswer):
        session.receive(codec.encode(INIT_OK))
    with pytest.raises(UnexpectedAnswer):
        opened().receive(b"\x30\x03\x02\x01\x00")  # BER, but no APDU


def test_answers_split_anywhere_and_a_close_from_the_target() -> None:
    session = opened()
    session.search(QUERY)
    data = codec.encode(
        SearchResponse(
            result_count=7,
            number_of_records_returned=0,
            next_result_set_position=1,
            search_status=True,
        )
    )
    assert session.receive(data[:3]) == []
    (answer,) = session.receive(data[3:])
    assert isinstance(answer, SearchAnswer) and answer.result_count == 7
    session.search(QUERY)
    (close,) = session.receive(codec.encode(Close(close_reason=2)))
    assert isinstance(close, Close) and session.state == CLOSED


def test_a_refused_init_closes_the_session() -> None:
    session = OriginSession("main")
    session.init()
    refused = InitResponse(**{**INIT_OK.__dict__, "result": False})
    session.receive(codec.encode(refused))
    assert session.state == CLOSED


# --- the Twisted adapter over an in-memory transport and a fake clock ------------------------


def adapter() -> tuple[Z3950Origin, StringTransport, Clock]:
    clock = Clock()
    origin = Z3950Origin(OriginSession("main"), clock, "example:210/main")
    transport = StringTransport()
    origin.makeConnection(transport)
    return origin, transport, clock


def watch(deferred: Any) -> list[Any]:
    """The list the Deferred's result (or Failure) will be appended to."""
    results: list[Any] = []
    deferred.addBoth(results.append)
    return results


def test_the_deadline_fails_the_operation_and_drops_the_connection() -> None:
    origin, transport, clock = adapter()
    pending = watch(origin.init(5))
    assert transport.value()  # the InitRequest went out
    clock.advance(4.9)
    assert pending == []
    clock.advance(0.2)
    (failure,) = pending
    assert isinstance(failure, Failure) and failure.check(TargetTimeout)
    assert transport.disconnecting or transport.disconnected
    # A late answer on the aborted connection settles nothing.
    origin.dataReceived(codec.encode(INIT_OK))


def test_an_answer_in_time_cancels_the_deadline() -> None:
    origin, _transport, clock = adapter()
    pending = watch(origin.init(5))
    origin.dataReceived(codec.encode(INIT_OK))
    assert isinstance(pending[0], InitResponse)
    assert not clock.getDelayedCalls()


def test_garbage_and_hang_ups_fail_the_pending_operation() -> None:
    origin, _transport, _clock = adapter()
    pending = watch(origin.init(5))
    origin.dataReceived(b"\x1f\xff\xff\xff\xff\xff")  # a tag too long to be BER
    assert pending[0].check(TargetProtocolError)
    origin, _transport, _clock = adapter()
    pending = watch(origin.init(5))
    origin.connectionLost(Failure(ConnectionResetError()))
    assert pending[0].check(TargetUnreachable)


def test_close_never_fails_for_what_the_target_does() -> None:
    origin, transport, clock = adapter()
    origin.init(5)
    origin.dataReceived(codec.encode(INIT_OK))
    closing = watch(origin.close(1))
    clock.advance(2)  # the target never answers Close
    assert closing == [None]
    assert transport.disconnecting or transport.disconnected


# --- SRU responses ---------------------------------------------------------------------------

SRU_12 = b"""<?xml version="1.0"?>
<zs:searchRetrieveResponse xmlns:zs="http://www.loc.gov/zing/srw/">
  <zs:version>1.2</zs:version><zs:numberOfRecords>3</zs:numberOfRecords>
  <zs:records>
    <zs:record><zs:recordSchema>info:srw/schema/1/marcxml-v1.1</zs:recordSchema>
      <zs:recordPacking>string</zs:recordPacking>
      <zs:recordData>&lt;record xmlns="http://www.loc.gov/MARC21/slim"&gt;&lt;controlfield tag="001"&gt;\xe7\x8c\xab&lt;/controlfield&gt;&lt;/record&gt;</zs:recordData>
      <zs:recordPosition>1</zs:recordPosition></zs:record>
    <zs:record><zs:recordSchema>info:srw/schema/1/diagnostics-v1.1</zs:recordSchema>
      <zs:recordPacking>xml</zs:recordPacking>
      <zs:recordData><diagnostic xmlns="http://www.loc.gov/zing/srw/diagnostic/">
        <uri>info:srw/diagnostic/1/65</uri><message>Record deleted by another user</message>
      </diagnostic></zs:recordData><zs:recordPosition>2</zs:recordPosition></zs:record>
  </zs:records>
  <zs:nextRecordPosition>3</zs:nextRecordPosition>
</zs:searchRetrieveResponse>"""

SRU_20_DIAGNOSTIC = b"""<searchRetrieveResponse
    xmlns="http://docs.oasis-open.org/ns/search-ws/sruResponse">
  <numberOfRecords>0</numberOfRecords>
  <diagnostics><diag:diagnostic xmlns:diag="http://docs.oasis-open.org/ns/search-ws/diagnostic">
    <diag:uri>info:srw/diagnostic/1/16</diag:uri><diag:details>dc.nosuch</diag:details>
    <diag:message>Unsupported index</diag:message></diag:diagnostic></diagnostics>
</searchRetrieveResponse>"""


def test_sru_12_records_packed_as_strings_and_surrogate_diagnostics() -> None:
    answer = parse_search_retrieve(SRU_12)
    assert (answer.version, answer.hits, answer.next_position) == ("1.2", 3, 3)
    record, surrogate = answer.records
    assert isinstance(record, SruRecord) and record.position == 1
    assert "猫" in record.data.decode("utf-8") and record.data.startswith(b"<record")
    assert surrogate == SruDiagnostic(
        "info:srw/diagnostic/1/65", "", "Record deleted by another user"
    )


def test_sru_20_namespace_and_a_diagnostic() -> None:
    answer = parse_search_retrieve(SRU_20_DIAGNOSTIC)
    assert answer.version == "2.0" and answer.hits == 0 and answer.records == ()
    (diagnostic,) = answer.diagnostics
    assert (diagnostic.number, diagnostic.details) == (16, "dc.nosuch")


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
        b"<searchRetrieveResponse><numberOfRecords>&b;</numberOfRecords>"
        b"</searchRetrieveResponse>",
        b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
        b"not xml at all",
        b"<html><body>502 Bad Gateway</body></html>",
    ],
)
def test_sru_what_is_no_response_is_refused(body: bytes) -> None:
    with pytest.raises(SruResponseError):
        parse_search_retrieve(body)


def test_close_during_an_operation_hangs_up_without_a_close() -> None:
    origin, transport, _clock = adapter()
    watch(origin.init(5))
    sent = transport.value()
    closing = watch(origin.close(1))
    assert closing == [None] and transport.value() == sent
    assert transport.disconnecting or transport.disconnected
