"""The origin's side of the Z39.50 codec, sans I/O: request messages → APDUs, response APDUs →
what the origin received. (The target's side is z3950/codec.py; both read one schema.)

What a partner sends is read leniently and never trusted: its diagnostics may carry any
condition in any diagnostic set (`ReceivedDiagnostic`, unlike our own `Diagnostic`, which only
holds conditions libgate sends), records are kept as the bytes the partner sent with their
syntax OID (decoding them to MARC is `marc/`'s job), and bytes that are not an APDU we can
read are an `ApduError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.z3950_codec import ber, oids
from gateway.z3950_codec.diagnostics import message_of
from gateway.z3950_codec.messages import (
    OPTION_BITS,
    AttributesPlusTerm,
    Close,
    InitRequest,
    InitResponse,
    PresentRequest,
    ResultSetOperand,
    RpnNode,
    RpnOperation,
    RpnQuery,
    SearchRequest,
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

OriginRequest = InitRequest | SearchRequest | PresentRequest | Close
RPN_OPERATORS = frozenset({"and", "or", "and-not"})


# --- what the origin receives ------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedDiagnostic:
    """A partner's diagnostic, as sent: `diagnostic_set` None when it was not in the default
    format (an externally defined DiagRec, a record fragment we do not reassemble)."""

    condition: int
    addinfo: str = ""
    diagnostic_set: str | None = oids.DIAG_BIB1

    @property
    def message(self) -> str:
        if self.diagnostic_set == oids.DIAG_BIB1:
            return message_of(self.condition)
        return f"diagnostic {self.condition} ({self.diagnostic_set or 'not in default format'})"


@dataclass(frozen=True)
class ReceivedRecord:
    """One retrieval record: `data` is the octet-aligned bytes (ISO 2709, XML) or, for a
    single-ASN1-type record (OPAC, SUTRS, GRS-1), the BER of that value."""

    syntax: str | None  # the record syntax OID (direct-reference)
    data: bytes
    database: str | None = None


ResponseRecords = tuple[ReceivedRecord | ReceivedDiagnostic, ...]


@dataclass(frozen=True, kw_only=True)
class SearchAnswer:
    """A SearchResponse: `diagnostics` are the non-surrogate ones (the search failed or the
    piggy-backed records could not be sent); `records` holds piggy-backed records, each a
    record or its surrogate diagnostic."""

    reference_id: bytes | None = None
    result_count: int
    number_of_records_returned: int
    next_result_set_position: int
    search_status: bool
    result_set_status: int | None = None
    present_status: int | None = None
    records: ResponseRecords = ()
    diagnostics: tuple[ReceivedDiagnostic, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PresentAnswer:
    reference_id: bytes | None = None
    number_of_records_returned: int
    next_result_set_position: int
    present_status: int
    records: ResponseRecords = ()
    diagnostics: tuple[ReceivedDiagnostic, ...] = ()


Answer = InitResponse | SearchAnswer | PresentAnswer | Close | Unsupported


# --- writing requests --------------------------------------------------------------------------


def _charset_proposal(charsets: tuple[str, ...], records_too: bool | None) -> dict[str, Any]:
    proposed: list[tuple[str, Any]] = []
    for name in charsets:
        if name.upper() == "UTF-8":
            proposed.append(("iso10646", {"encodingLevel": oids.ISO10646_UTF8}))
        else:  # a legacy set by name, as YAZ proposes one
            external = {"encoding": ("octet-aligned", name.encode("ascii"))}
            proposed.append(("private", ("externallySpecified", external)))
    proposal: dict[str, Any] = {"proposedCharSets": proposed}
    if records_too is not None:
        proposal["recordsInSelectedCharSets"] = records_too
    negotiation = schema().encode("CharSetandLanguageNegotiation", ("proposal", proposal))
    information = {
        "direct-reference": oids.CHARSET_NEGOTIATION_3,
        "encoding": ("single-ASN1-type", bytes(negotiation)),
    }
    return {"information": ("externallyDefinedInfo", information)}


def _with_reference(message: Any, value: dict[str, Any]) -> dict[str, Any]:
    if message.reference_id is not None:
        value["referenceId"] = message.reference_id
    return value


def _init(message: InitRequest) -> tuple[str, dict[str, Any]]:
    value: dict[str, Any] = {
        "protocolVersion": bit_string(frozenset(str(v) for v in message.versions), VERSION_BITS),
        "options": bit_string(message.options, OPTION_BITS),
        "preferredMessageSize": message.preferred_message_size,
        "exceptionalRecordSize": message.exceptional_record_size,
        "implementationId": message.implementation_id.encode("utf-8"),
        "implementationName": message.implementation_name.encode("utf-8"),
        "implementationVersion": message.implementation_version.encode("utf-8"),
    }
    proposal = message.charset_proposal
    if proposal is not None and proposal.charsets:
        value["otherInfo"] = [
            _charset_proposal(proposal.charsets, proposal.records_in_selected_charsets)
        ]
    return "initRequest", _with_reference(message, value)


def _rpn(root: RpnNode) -> tuple[str, Any]:
    """The RPN tree as asn1tools values, without recursion (a deep tree cannot overflow)."""
    built: dict[int, tuple[str, Any]] = {}
    pending: list[tuple[RpnNode, bool]] = [(root, False)]
    while pending:
        node, children_done = pending.pop()
        if isinstance(node, AttributesPlusTerm):
            built[id(node)] = ("op", ("attrTerm", _attributes_plus_term(node)))
        elif isinstance(node, ResultSetOperand):
            built[id(node)] = ("op", ("resultSet", node.name.encode("utf-8")))
        elif isinstance(node, RpnOperation):
            if node.operator not in RPN_OPERATORS:
                raise ValueError(f"RPN operator {node.operator!r} is not written")
            if not children_done:
                pending += [(node, True), (node.right, False), (node.left, False)]
                continue
            operation = {
                "rpn1": built.pop(id(node.left)),
                "rpn2": built.pop(id(node.right)),
                "op": (node.operator, None),
            }
            built[id(node)] = ("rpnRpnOp", operation)
        else:
            raise ValueError(f"{type(node).__name__} is not written in a type-1 query")
    return built[id(root)]


def _attributes_plus_term(node: AttributesPlusTerm) -> dict[str, Any]:
    attributes = []
    for attribute in node.attributes:
        if not isinstance(attribute.value, int):
            raise ValueError("only numeric attribute values are written")
        element: dict[str, Any] = {
            "attributeType": attribute.type,
            "attributeValue": ("numeric", attribute.value),
        }
        if attribute.attribute_set is not None:
            element["attributeSet"] = attribute.attribute_set
        attributes.append(element)
    if isinstance(node.term, bytes):
        term: tuple[str, Any] = ("general", node.term)
    elif isinstance(node.term, int):
        term = ("numeric", node.term)
    else:
        raise ValueError("a term is bytes (general) or an integer (numeric)")
    return {"attributes": attributes, "term": term}


def _element_set(name: str) -> tuple[str, bytes]:
    return ("genericElementSetName", name.encode("utf-8"))


def _search(message: SearchRequest) -> tuple[str, dict[str, Any]]:
    query = message.query
    if not isinstance(query, RpnQuery):
        raise ValueError("an origin sends type-1 (RPN) queries only")
    value: dict[str, Any] = {
        "smallSetUpperBound": message.small_set_upper_bound,
        "largeSetLowerBound": message.large_set_lower_bound,
        "mediumSetPresentNumber": message.medium_set_present_number,
        "replaceIndicator": message.replace_indicator,
        "resultSetName": message.result_set_name.encode("utf-8"),
        "databaseNames": [name.encode("utf-8") for name in message.database_names],
        "query": ("type-1", {"attributeSet": query.attribute_set, "rpn": _rpn(query.root)}),
    }
    if message.small_set_element_set_names is not None:
        value["smallSetElementSetNames"] = _element_set(message.small_set_element_set_names)
    if message.medium_set_element_set_names is not None:
        value["mediumSetElementSetNames"] = _element_set(message.medium_set_element_set_names)
    if message.preferred_record_syntax is not None:
        value["preferredRecordSyntax"] = message.preferred_record_syntax
    return "searchRequest", _with_reference(message, value)


def _present(message: PresentRequest) -> tuple[str, dict[str, Any]]:
    value: dict[str, Any] = {
        "resultSetId": message.result_set_id.encode("utf-8"),
        "resultSetStartPoint": message.result_set_start_point,
        "numberOfRecordsRequested": message.number_of_records_requested,
    }
    if message.element_set_name is not None:
        value["recordComposition"] = ("simple", _element_set(message.element_set_name))
    if message.preferred_record_syntax is not None:
        value["preferredRecordSyntax"] = message.preferred_record_syntax
    return "presentRequest", _with_reference(message, value)


def _close(message: Close) -> tuple[str, dict[str, Any]]:
    value: dict[str, Any] = {"closeReason": message.close_reason}
    if message.diagnostic_information:
        value["diagnosticInformation"] = message.diagnostic_information.encode("utf-8")
    return "close", _with_reference(message, value)


_WRITERS: dict[type, Callable[[Any], tuple[str, dict[str, Any]]]] = {
    InitRequest: _init,
    SearchRequest: _search,
    PresentRequest: _present,
    Close: _close,
}


def encode_request(message: OriginRequest) -> bytes:
    """A request message → one APDU. Raises ValueError for what an origin does not send."""
    name, value = _WRITERS[type(message)](message)
    return bytes(schema().encode("PDU", (name, value)))


# --- reading responses -------------------------------------------------------------------------


def _diagnostic(value: dict[str, Any]) -> ReceivedDiagnostic:
    _kind, addinfo = value.get("addinfo") or ("v3Addinfo", b"")
    info = addinfo if isinstance(addinfo, str) else text(addinfo)
    return ReceivedDiagnostic(bounded(value["condition"]), info, value["diagnosticSetId"])


def _diag_rec(choice: tuple[str, Any]) -> ReceivedDiagnostic:
    kind, value = choice
    if kind == "defaultFormat":
        return _diagnostic(value)
    return ReceivedDiagnostic(0, "externally defined diagnostic", value.get("direct-reference"))


def _record(entry: dict[str, Any]) -> ReceivedRecord | ReceivedDiagnostic:
    database = text(entry["name"]) if "name" in entry else None
    kind, value = entry["record"]
    if kind == "surrogateDiagnostic":
        return _diag_rec(value)
    if kind != "retrievalRecord":  # segmentation fragments: we never ask for segmentation
        return ReceivedDiagnostic(0, f"record {kind} not read", None)
    encoding, data = value["encoding"]
    if encoding == "arbitrary":
        data = data[0]
    return ReceivedRecord(value.get("direct-reference"), bytes(data), database)


def _records(value: dict[str, Any]) -> tuple[ResponseRecords, tuple[ReceivedDiagnostic, ...]]:
    records = value.get("records")
    if records is None:
        return (), ()
    kind, content = records
    if kind == "responseRecords":
        return tuple(_record(entry) for entry in content), ()
    if kind == "nonSurrogateDiagnostic":
        return (), (_diagnostic(content),)
    return (), tuple(_diag_rec(item) for item in content)


def _init_response(value: dict[str, Any]) -> InitResponse:
    return InitResponse(
        reference_id=value.get("referenceId"),
        versions=frozenset(int(v) for v in read_bits(value["protocolVersion"], VERSION_BITS)),
        options=read_bits(value["options"], OPTION_BITS),
        preferred_message_size=value["preferredMessageSize"],
        exceptional_record_size=value["exceptionalRecordSize"],
        result=value["result"],
        implementation_id=text(value.get("implementationId")),
        implementation_name=text(value.get("implementationName")),
        implementation_version=text(value.get("implementationVersion")),
        selected_charset=_selected_charset(value.get("otherInfo") or []),
    )


def _selected_charset(other_info: list[dict[str, Any]]) -> str | None:
    """ "UTF-8" when the target answered our negotiation with it, the name of a private set
    it chose, else None (no answer: terms and records are in whatever the target uses)."""
    for unit in other_info:
        kind, information = unit["information"]
        if kind != "externallyDefinedInfo":
            continue
        if information.get("direct-reference") != oids.CHARSET_NEGOTIATION_3:
            continue
        encoding, data = information["encoding"]
        if encoding != "single-ASN1-type":
            continue
        choice, response = schema().decode("CharSetandLanguageNegotiation", data)
        if choice != "response" or "selectedCharSets" not in response:
            continue
        kind_of_set, selected = response["selectedCharSets"]
        if kind_of_set == "iso10646":
            return "UTF-8" if selected["encodingLevel"] == oids.ISO10646_UTF8 else None
        if kind_of_set == "private" and selected[0] == "externallySpecified":
            return text(selected[1]["encoding"][1])
    return None


def _search_response(value: dict[str, Any]) -> SearchAnswer:
    records, diagnostics = _records(value)
    return SearchAnswer(
        reference_id=value.get("referenceId"),
        result_count=value["resultCount"],
        number_of_records_returned=value["numberOfRecordsReturned"],
        next_result_set_position=value["nextResultSetPosition"],
        search_status=value["searchStatus"],
        result_set_status=value.get("resultSetStatus"),
        present_status=value.get("presentStatus"),
        records=records,
        diagnostics=diagnostics,
    )


def _present_response(value: dict[str, Any]) -> PresentAnswer:
    records, diagnostics = _records(value)
    return PresentAnswer(
        reference_id=value.get("referenceId"),
        number_of_records_returned=value["numberOfRecordsReturned"],
        next_result_set_position=value["nextResultSetPosition"],
        present_status=value["presentStatus"],
        records=records,
        diagnostics=diagnostics,
    )


def _close_response(value: dict[str, Any]) -> Close:
    reason = value["closeReason"]
    return Close(
        reference_id=value.get("referenceId"),
        close_reason=reason if isinstance(reason, int) else 9,
        diagnostic_information=text(value.get("diagnosticInformation")),
    )


_READERS: dict[str, Callable[[dict[str, Any]], Answer]] = {
    "initResponse": _init_response,
    "searchResponse": _search_response,
    "presentResponse": _present_response,
    "close": _close_response,
}
DECODED_RESPONSES = frozenset({21, 23, 25, 48})


def decode_response(apdu: bytes) -> Answer:
    """One framed APDU from a target → what it says. An APDU of a kind an origin of ours never
    asked for is `Unsupported`; bytes that are not an APDU raise ApduError (or BerError)."""
    clean = ber.normalise(apdu)
    tag, children = ber.top_level(clean)
    if tag not in DECODED_RESPONSES:
        reference = next((body for h, body in children if h.tag_class == 2 and h.tag == 2), None)
        return Unsupported(tag, APDU_NAMES.get(tag, f"[{tag}]"), reference)
    try:
        name, value = schema().decode("PDU", clean)
        return _READERS[name](value)
    except (ber.BerError, ApduError):
        raise
    except Exception as error:  # noqa: BLE001 - asn1tools raises many kinds on bad input
        raise ApduError(f"{APDU_NAMES[tag]}: {type(error).__name__}: {error}") from None


__all__ = [
    "Answer",
    "PresentAnswer",
    "ReceivedDiagnostic",
    "ReceivedRecord",
    "SearchAnswer",
    "decode_response",
    "encode_request",
]
