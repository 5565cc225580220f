"""The target's side of the Z39.50 codec, sans I/O: request APDUs → `messages`, response
messages → APDUs. (The origin's side is gateway/z3950_codec/origin.py.)

The shared schema (`gateway.z3950_codec.schema`) is compiled once by asn1tools (BER);
`gateway.z3950_codec.ber` frames and screens every APDU
before asn1tools decodes it. Reading is liberal where the standard lets clients differ (element
set names given per database, complex attribute values, names in any character set); anything
that is not a well-formed APDU is an `ApduError`, which the session answers with Close
(protocolError). Writing is exact.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from gateway.z3950_codec import ber, oids
from gateway.z3950_codec.diagnostics import Diagnostic
from gateway.z3950_codec.messages import (
    OPTION_BITS,
    Attribute,
    AttributesPlusTerm,
    CharsetProposal,
    Close,
    CompSpec,
    DeleteResultSetRequest,
    DeleteResultSetResponse,
    ExtendedServicesResponse,
    InitRequest,
    InitResponse,
    NamePlusRecord,
    OtherQuery,
    PresentRequest,
    PresentResponse,
    Request,
    Response,
    RestrictionOperand,
    ResultSetOperand,
    RetrievalRecord,
    RpnNode,
    RpnOperation,
    RpnQuery,
    ScanRequest,
    ScanResponse,
    SearchRequest,
    SearchResponse,
    SortKeySpec,
    SortRequest,
    SortResponse,
    Unsupported,
    bounded,
)
from gateway.z3950_codec.schema import (
    APDU_NAMES,
    VERSION_BITS,
    ApduError,
    bit_string,
    read_bits,
    schema,
    text,
)

DECODED_REQUESTS = frozenset({20, 22, 24, 26, 35, 43, 48})
ISO10646_NAMES = {
    oids.ISO10646_UTF8: "UTF-8",
    oids.ISO10646_UCS2: "UCS-2",
    oids.ISO10646_UCS4: "UCS-4",
    oids.ISO10646_UTF16: "UTF-16",
}


# --- reading -----------------------------------------------------------------------------------


def decode(apdu: bytes) -> Request:
    """One framed APDU → a request message. Raises ApduError (or ber.BerError) when the bytes
    are not one."""
    clean = ber.normalise(apdu)
    tag, children = ber.top_level(clean)
    if tag not in DECODED_REQUESTS:
        reference = next((body for h, body in children if h.tag_class == 2 and h.tag == 2), None)
        return Unsupported(tag, APDU_NAMES.get(tag, f"[{tag}]"), reference)
    try:
        name, value = schema().decode("PDU", clean)
        return _READERS[name](_bounded(value))
    except (ber.BerError, ApduError):
        raise
    except Exception as error:  # noqa: BLE001 - asn1tools raises many kinds on bad input
        raise ApduError(f"{APDU_NAMES[tag]}: {type(error).__name__}: {error}") from None


def _bounded(value: Any) -> Any:
    """The decoded APDU with every INTEGER outside 32 bits made `OutOfRange`: the one place
    where a peer's numbers are checked, so no handler meets a number it cannot print.
    (Recursion is bounded: asn1tools decoded at most ber.MAX_DEPTH levels.)"""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return bounded(value)
    if isinstance(value, dict):
        return {key: _bounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_bounded(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_bounded(item) for item in value)
    return value


def _init_request(value: dict[str, Any]) -> InitRequest:
    versions = frozenset(int(v) for v in read_bits(value["protocolVersion"], VERSION_BITS))
    return InitRequest(
        reference_id=value.get("referenceId"),
        versions=versions,
        options=read_bits(value["options"], OPTION_BITS),
        preferred_message_size=value["preferredMessageSize"],
        exceptional_record_size=value["exceptionalRecordSize"],
        implementation_id=text(value.get("implementationId")),
        implementation_name=text(value.get("implementationName")),
        implementation_version=text(value.get("implementationVersion")),
        charset_proposal=_charset_proposal(value.get("otherInfo") or []),
    )


def _charset_proposal(other_info: list[dict[str, Any]]) -> CharsetProposal | None:
    for unit in other_info:
        kind, information = unit["information"]
        if kind != "externallyDefinedInfo":
            continue
        if information.get("direct-reference") != oids.CHARSET_NEGOTIATION_3:
            continue
        encoding, data = information["encoding"]
        if encoding != "single-ASN1-type":
            continue
        choice, proposal = schema().decode("CharSetandLanguageNegotiation", data)
        if choice != "proposal":
            continue
        charsets = []
        for kind_of_set, proposed in proposal.get("proposedCharSets") or []:
            if kind_of_set == "iso10646":
                level = proposed["encodingLevel"]
                charsets.append(ISO10646_NAMES.get(level, f"ISO 10646 {level}"))
            elif kind_of_set == "private":
                how, detail = proposed
                if how == "externallySpecified" and detail["encoding"][0] == "octet-aligned":
                    charsets.append(text(detail["encoding"][1]))
                elif how == "viaOid":
                    charsets.extend(f"private {oid}" for oid in detail)
                else:
                    charsets.append("private")
            else:
                charsets.append("ISO 2022")
        return CharsetProposal(
            tuple(charsets),
            tuple(text(code) for code in proposal.get("proposedlanguages") or []),
            proposal.get("recordsInSelectedCharSets"),
        )
    return None


def _element_set_names(value: tuple[str, Any] | None) -> str | None:
    if value is None:
        return None
    kind, names = value
    if kind == "genericElementSetName":
        return text(names)
    # Database-specific names: libgate searches one database at a time, so the first applies.
    return text(names[0]["esn"]) if names else None


def _attribute(element: dict[str, Any]) -> Attribute:
    kind, value = element["attributeValue"]
    attribute_set = element.get("attributeSet")
    if kind == "numeric":
        return Attribute(element["attributeType"], value, attribute_set)
    items = value["list"]
    first: int | str = ""
    if items:
        item_kind, item = items[0]
        first = text(item) if item_kind == "string" else item
    return Attribute(element["attributeType"], first, attribute_set, complex=True)


def _attributes_plus_term(value: dict[str, Any]) -> AttributesPlusTerm:
    kind, term = value["term"]
    if kind in ("general", "characterString", "dateTime"):
        term = bytes(term)
    elif kind != "numeric":
        term = None
    return AttributesPlusTerm(tuple(_attribute(a) for a in value["attributes"]), term, kind)


def _rpn(structure: tuple[str, Any]) -> RpnNode:
    kind, value = structure
    if kind == "op":
        operand_kind, operand = value
        if operand_kind == "attrTerm":
            return _attributes_plus_term(operand)
        if operand_kind == "resultSet":
            return ResultSetOperand(text(operand))
        return RestrictionOperand(
            text(operand["resultSet"]), tuple(_attribute(a) for a in operand["attributes"])
        )
    operator = value["op"][0]
    return RpnOperation(operator, _rpn(value["rpn1"]), _rpn(value["rpn2"]))


def _search_request(value: dict[str, Any]) -> SearchRequest:
    query_type, query = value["query"]
    parsed: RpnQuery | OtherQuery
    if query_type == "type-1":
        parsed = RpnQuery(query["attributeSet"], _rpn(query["rpn"]))
    else:
        parsed = OtherQuery(query_type)
    return SearchRequest(
        reference_id=value.get("referenceId"),
        small_set_upper_bound=value["smallSetUpperBound"],
        large_set_lower_bound=value["largeSetLowerBound"],
        medium_set_present_number=value["mediumSetPresentNumber"],
        replace_indicator=value["replaceIndicator"],
        result_set_name=text(value["resultSetName"]),
        database_names=tuple(text(name) for name in value["databaseNames"]),
        small_set_element_set_names=_element_set_names(value.get("smallSetElementSetNames")),
        medium_set_element_set_names=_element_set_names(value.get("mediumSetElementSetNames")),
        preferred_record_syntax=value.get("preferredRecordSyntax"),
        query=parsed,
    )


def _comp_spec(value: dict[str, Any]) -> CompSpec:
    element_set = None
    unsupported = None
    generic = value.get("generic")
    if value.get("dbSpecific"):
        unsupported = "dbSpecific"
    if generic is not None:
        if "schema" in generic:
            unsupported = "schema"
        spec = generic.get("elementSpec")
        if spec is not None:
            if spec[0] == "elementSetName":
                element_set = text(spec[1])
            else:
                unsupported = "externalEspec"
    return CompSpec(
        element_set,
        tuple(value.get("recordSyntax") or ()),
        value["selectAlternativeSyntax"],
        unsupported,
    )


def _present_request(value: dict[str, Any]) -> PresentRequest:
    composition = value.get("recordComposition")
    element_set = None
    comp_spec = None
    if composition is not None:
        if composition[0] == "simple":
            element_set = _element_set_names(composition[1])
        else:
            comp_spec = _comp_spec(composition[1])
    return PresentRequest(
        reference_id=value.get("referenceId"),
        result_set_id=text(value["resultSetId"]),
        result_set_start_point=value["resultSetStartPoint"],
        number_of_records_requested=value["numberOfRecordsRequested"],
        additional_ranges=tuple(
            (r["startingPosition"], r["numberOfRecords"])
            for r in value.get("additionalRanges") or ()
        ),
        element_set_name=element_set,
        comp_spec=comp_spec,
        preferred_record_syntax=value.get("preferredRecordSyntax"),
    )


def _scan_request(value: dict[str, Any]) -> ScanRequest:
    return ScanRequest(
        reference_id=value.get("referenceId"),
        database_names=tuple(text(name) for name in value["databaseNames"]),
        attribute_set=value.get("attributeSet"),
        term=_attributes_plus_term(value["termListAndStartPoint"]),
        step_size=value.get("stepSize"),
        number_of_terms_requested=value["numberOfTermsRequested"],
        preferred_position_in_response=value.get("preferredPositionInResponse"),
    )


def _sort_key(value: dict[str, Any]) -> SortKeySpec:
    kind, element = value["sortElement"]
    missing = value.get("missingValueAction")
    common = {
        "relation": value["sortRelation"],
        "case_sensitivity": value["caseSensitivity"],
        "missing_value_action": missing[0] if missing else None,
    }
    if kind != "generic":
        return SortKeySpec("databaseSpecific", **common)
    key_kind, key = element
    if key_kind == "sortfield":
        return SortKeySpec("sortfield", field=text(key), **common)
    if key_kind == "sortAttributes":
        return SortKeySpec(
            "attributes",
            attributes=tuple(_attribute(a) for a in key["list"]),
            attribute_set=key["id"],
            **common,
        )
    return SortKeySpec("elementSpec", **common)


def _sort_request(value: dict[str, Any]) -> SortRequest:
    return SortRequest(
        reference_id=value.get("referenceId"),
        input_result_set_names=tuple(text(n) for n in value["inputResultSetNames"]),
        sorted_result_set_name=text(value["sortedResultSetName"]),
        sort_sequence=tuple(_sort_key(k) for k in value["sortSequence"]),
    )


def _delete_request(value: dict[str, Any]) -> DeleteResultSetRequest:
    return DeleteResultSetRequest(
        reference_id=value.get("referenceId"),
        delete_all=value["deleteFunction"] in (1, "all"),  # asn1tools: named numbers as ints
        result_set_list=tuple(text(n) for n in value.get("resultSetList") or ()),
    )


CLOSE_REASONS = (
    "finished",
    "shutdown",
    "systemProblem",
    "costLimit",
    "resources",
    "securityViolation",
    "protocolError",
    "lackOfActivity",
    "peerAbort",
    "unspecified",
)


def _close(value: dict[str, Any]) -> Close:
    reason = value["closeReason"]
    return Close(
        reference_id=value.get("referenceId"),
        close_reason=CLOSE_REASONS.index(reason) if isinstance(reason, str) else int(reason),
        diagnostic_information=text(value.get("diagnosticInformation")),
    )


_READERS: dict[str, Callable[[dict[str, Any]], Request]] = {
    "initRequest": _init_request,
    "searchRequest": _search_request,
    "presentRequest": _present_request,
    "deleteResultSetRequest": _delete_request,
    "scanRequest": _scan_request,
    "sortRequest": _sort_request,
    "close": _close,
}


# --- writing -----------------------------------------------------------------------------------


def diag_rec(diagnostic: Diagnostic, version: int = 3) -> tuple[str, dict[str, Any]]:
    """A DiagRec: the CHOICE of its `defaultFormat`."""
    return ("defaultFormat", _default_diag_format(diagnostic, version))


def _default_diag_format(diagnostic: Diagnostic, version: int) -> dict[str, Any]:
    addinfo: tuple[str, Any]
    if version >= 3:
        addinfo = ("v3Addinfo", diagnostic.addinfo.encode("utf-8"))
    else:  # version 2: VisibleString, so ASCII only
        addinfo = ("v2Addinfo", diagnostic.addinfo.encode("ascii", "replace").decode("ascii"))
    return {
        "diagnosticSetId": oids.DIAG_BIB1,
        "condition": diagnostic.condition,
        "addinfo": addinfo,
    }


def _external(record: RetrievalRecord) -> dict[str, Any]:
    if record.asn1 is not None:
        return {"direct-reference": record.syntax, "encoding": ("single-ASN1-type", record.asn1)}
    return {"direct-reference": record.syntax, "encoding": ("octet-aligned", record.octets or b"")}


def _records(records: tuple[NamePlusRecord, ...] | Diagnostic, version: int) -> tuple[str, Any]:
    if isinstance(records, Diagnostic):
        return ("nonSurrogateDiagnostic", _default_diag_format(records, version))
    out = []
    for item in records:
        entry: dict[str, Any] = {}
        if item.database is not None:
            entry["name"] = item.database.encode("utf-8")
        if isinstance(item.record, Diagnostic):
            entry["record"] = ("surrogateDiagnostic", diag_rec(item.record, version))
        else:
            entry["record"] = ("retrievalRecord", _external(item.record))
        out.append(entry)
    return ("responseRecords", out)


def _with_reference(message: Any, value: dict[str, Any]) -> dict[str, Any]:
    if message.reference_id is not None:
        value["referenceId"] = message.reference_id
    return value


def _encode_init(message: InitResponse, version: int) -> tuple[str, dict[str, Any]]:
    value: dict[str, Any] = {
        "protocolVersion": bit_string(frozenset(str(v) for v in message.versions), VERSION_BITS),
        "options": bit_string(message.options, OPTION_BITS),
        "preferredMessageSize": message.preferred_message_size,
        "exceptionalRecordSize": message.exceptional_record_size,
        "result": message.result,
        "implementationId": message.implementation_id.encode("utf-8"),
        "implementationName": message.implementation_name.encode("utf-8"),
        "implementationVersion": message.implementation_version.encode("utf-8"),
    }
    if message.selected_charset == "UTF-8":
        response: dict[str, Any] = {
            "selectedCharSets": ("iso10646", {"encodingLevel": oids.ISO10646_UTF8})
        }
        if message.records_in_selected_charsets is not None:
            response["recordsInSelectedCharSets"] = message.records_in_selected_charsets
        negotiation = schema().encode("CharSetandLanguageNegotiation", ("response", response))
        value["otherInfo"] = [
            {
                "information": (
                    "externallyDefinedInfo",
                    {
                        "direct-reference": oids.CHARSET_NEGOTIATION_3,
                        "encoding": ("single-ASN1-type", bytes(negotiation)),
                    },
                )
            }
        ]
    return "initResponse", _with_reference(message, value)


def _encode_search(message: SearchResponse, version: int) -> tuple[str, dict[str, Any]]:
    value: dict[str, Any] = {
        "resultCount": message.result_count,
        "numberOfRecordsReturned": message.number_of_records_returned,
        "nextResultSetPosition": message.next_result_set_position,
        "searchStatus": message.search_status,
    }
    if message.result_set_status is not None:
        value["resultSetStatus"] = message.result_set_status
    if message.present_status is not None:
        value["presentStatus"] = message.present_status
    if message.records is not None:
        value["records"] = _records(message.records, version)
    return "searchResponse", _with_reference(message, value)


def _encode_present(message: PresentResponse, version: int) -> tuple[str, dict[str, Any]]:
    value: dict[str, Any] = {
        "numberOfRecordsReturned": message.number_of_records_returned,
        "nextResultSetPosition": message.next_result_set_position,
        "presentStatus": message.present_status,
    }
    if message.records is not None:
        value["records"] = _records(message.records, version)
    return "presentResponse", _with_reference(message, value)


def _encode_scan(message: ScanResponse, version: int) -> tuple[str, dict[str, Any]]:
    value: dict[str, Any] = {
        "scanStatus": message.scan_status,
        "numberOfEntriesReturned": len(message.entries),
    }
    if message.step_size is not None:
        value["stepSize"] = message.step_size
    if message.position_of_term is not None:
        value["positionOfTerm"] = message.position_of_term
    entries: dict[str, Any] = {}
    if message.entries:
        entries["entries"] = [
            (
                "termInfo",
                {
                    "term": ("general", entry.term.encode("utf-8")),
                    "globalOccurrences": entry.occurrences,
                },
            )
            for entry in message.entries
        ]
    if message.diagnostic is not None:
        entries["nonsurrogateDiagnostics"] = [diag_rec(message.diagnostic, version)]
    if entries:
        value["entries"] = entries
    return "scanResponse", _with_reference(message, value)


def _encode_sort(message: SortResponse, version: int) -> tuple[str, dict[str, Any]]:
    value: dict[str, Any] = {"sortStatus": message.sort_status}
    if message.result_set_status is not None:
        value["resultSetStatus"] = message.result_set_status
    if message.diagnostics:
        value["diagnostics"] = [diag_rec(d, version) for d in message.diagnostics]
    if message.result_count is not None:
        value["resultCount"] = message.result_count
    return "sortResponse", _with_reference(message, value)


def _encode_delete(message: DeleteResultSetResponse, version: int) -> tuple[str, dict[str, Any]]:
    value: dict[str, Any] = {"deleteOperationStatus": message.delete_operation_status}
    if message.list_statuses:
        value["deleteListStatuses"] = [
            {"id": name.encode("utf-8"), "status": status} for name, status in message.list_statuses
        ]
    return "deleteResultSetResponse", _with_reference(message, value)


def _encode_close(message: Close, version: int) -> tuple[str, dict[str, Any]]:
    value: dict[str, Any] = {"closeReason": message.close_reason}
    if message.diagnostic_information:
        value["diagnosticInformation"] = message.diagnostic_information.encode("utf-8")
    return "close", _with_reference(message, value)


def _encode_extended(message: ExtendedServicesResponse, version: int) -> tuple[str, dict[str, Any]]:
    value = {"operationStatus": 3, "diagnostics": [diag_rec(message.diagnostic, version)]}
    return "extendedServicesResponse", _with_reference(message, value)


_WRITERS: dict[type, Any] = {
    InitResponse: _encode_init,
    SearchResponse: _encode_search,
    PresentResponse: _encode_present,
    ScanResponse: _encode_scan,
    SortResponse: _encode_sort,
    DeleteResultSetResponse: _encode_delete,
    Close: _encode_close,
    ExtendedServicesResponse: _encode_extended,
}


def encode(message: Response, version: int = 3) -> bytes:
    """A response message → one APDU. `version` is the protocol version in force (2 writes
    diagnostics' addinfo as VisibleString).

    Response records are written here rather than by asn1tools, whose encoder walked every
    record's every byte through Python calls (most of a piggy-backed Search's cost): the
    response is encoded without them, and the records (`records` is the last element either
    response writes) are appended to its contents, the outer length written again.
    tests/test_z3950_codec.py holds the result equal to asn1tools' own encoding."""
    name, value = _WRITERS[type(message)](message, version)
    records = value.get("records")
    if records is None or records[0] != "responseRecords":
        return bytes(schema().encode("PDU", (name, value)))
    del value["records"]
    without = bytes(schema().encode("PDU", (name, value)))
    header = ber.read_header(without, 0, len(without))
    assert header is not None and header.length is not None  # our own definite encoding
    written = _records_tlv(records[1])
    first = without[: header.size - len(ber.encode_length(header.length))]
    return (
        first + ber.encode_length(header.length + len(written)) + without[header.size :] + written
    )


_RESPONSE_RECORDS = b"\xbc"  # [28] IMPLICIT SEQUENCE OF NamePlusRecord (constructed)


def _tlv(tag: bytes, content: bytes) -> bytes:
    return tag + ber.encode_length(len(content)) + content


@functools.cache
def _oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER TLV."""
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return _tlv(b"\x06", bytes(body))


def _records_tlv(entries: list[dict[str, Any]]) -> bytes:
    out = []
    for entry in entries:
        record = entry["record"]
        encoding = record[1].get("encoding") if record[0] == "retrievalRecord" else None
        if encoding is None or encoding[0] != "octet-aligned":
            out.append(bytes(schema().encode("NamePlusRecord", entry)))  # diagnostics, ASN.1
            continue
        # External: [UNIVERSAL 8] {direct-reference OID, octet-aligned [1] IMPLICIT OCTETS},
        # under retrievalRecord [1] under record [1], both explicit.
        external = _tlv(b"\x28", _oid(record[1]["direct-reference"]) + _tlv(b"\x81", encoding[1]))
        body = _tlv(b"\xa1", _tlv(b"\xa1", external))
        if "name" in entry:
            body = _tlv(b"\x80", entry["name"]) + body
        out.append(_tlv(b"\x30", body))
    return _tlv(_RESPONSE_RECORDS, b"".join(out))


def encode_value(type_name: str, value: Any) -> bytes:
    """One value of a type in z3950.asn (OPACRecord for OPAC records)."""
    return bytes(schema().encode(type_name, value))


def general_string(text: str) -> bytes:
    """A GeneralString TLV holding `text` as UTF-8 (SUTRS records)."""
    data = text.encode("utf-8")
    return b"\x1b" + ber.encode_length(len(data)) + data


__all__ = ["ApduError", "decode", "encode", "encode_value", "general_string", "schema"]
