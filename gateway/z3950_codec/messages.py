"""Z39.50 APDUs as frozen dataclasses: what the codec reads from a peer and what the session
answers. Field names follow the standard's (ANSI/NISO Z39.50-2003 §3.2); only what libgate
reads or sends is modelled. Text the peer sends as InternationalString stays `bytes` where its
character set matters (search and scan terms) and is decoded leniently elsewhere (names).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.z3950_codec.diagnostics import Diagnostic

# --- integers --------------------------------------------------------------------------------

INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # what an INTEGER from a peer may be


class OutOfRange(int):
    """An INTEGER from a peer outside 32 bits, as the codec hands it on: just past the range
    on its side (so every range check refuses it) and "out of range" as text (so a diagnostic
    names it without printing thousands of digits, which Python refuses beyond 4300)."""

    def __str__(self) -> str:
        return "out of range"

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def bounded(value: int) -> int:
    """`value`, or OutOfRange just past the 32-bit limit it exceeds."""
    if value > INT_MAX:
        return OutOfRange(INT_MAX + 1)
    if value < INT_MIN:
        return OutOfRange(INT_MIN - 1)
    return value


# --- Init ----------------------------------------------------------------------------------

# Options bits by name (the standard's Options BIT STRING).
OPTION_BITS: dict[str, int] = {
    "search": 0,
    "present": 1,
    "delSet": 2,
    "resourceReport": 3,
    "triggerResourceCtrl": 4,
    "resourceCtrl": 5,
    "accessCtrl": 6,
    "scan": 7,
    "sort": 8,
    "extendedServices": 10,
    "level-1Segmentation": 11,
    "level-2Segmentation": 12,
    "concurrentOperations": 13,
    "namedResultSets": 14,
    "encapsulation": 15,
    "resultCount": 16,
    "negotiationModel": 17,
    "duplicateDetection": 18,
    "queryType104": 19,
    "pQESCorrection": 20,
    "stringSchema": 21,
}


@dataclass(frozen=True)
class CharsetProposal:
    """What an origin proposed in CharSetandLanguageNegotiation-3 (in its order)."""

    charsets: tuple[str, ...]  # "UTF-8", "UCS-2", a private name, or "ISO 2022"
    languages: tuple[str, ...] = ()
    records_in_selected_charsets: bool | None = None


@dataclass(frozen=True, kw_only=True)
class InitRequest:
    reference_id: bytes | None = None
    versions: frozenset[int]  # 1, 2, 3 as the protocolVersion bits say
    options: frozenset[str]
    preferred_message_size: int
    exceptional_record_size: int
    implementation_id: str = ""
    implementation_name: str = ""
    implementation_version: str = ""
    charset_proposal: CharsetProposal | None = None


@dataclass(frozen=True, kw_only=True)
class InitResponse:
    reference_id: bytes | None = None
    versions: frozenset[int]
    options: frozenset[str]
    preferred_message_size: int
    exceptional_record_size: int
    result: bool
    implementation_id: str
    implementation_name: str
    implementation_version: str
    selected_charset: str | None = None  # "UTF-8" when negotiated; None: no negotiation answer
    records_in_selected_charsets: bool | None = None


# --- Type-1 (RPN) query ------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribute:
    """One AttributeElement: type and value (a complex value keeps its first string or
    number, and `complex` says it was one)."""

    type: int
    value: int | str
    attribute_set: str | None = None  # overrides the query's set for this attribute
    complex: bool = False


@dataclass(frozen=True)
class AttributesPlusTerm:
    attributes: tuple[Attribute, ...]
    term: bytes | int | None
    term_type: str = "general"  # general | characterString | numeric | oid | dateTime | …


@dataclass(frozen=True)
class ResultSetOperand:
    name: str


@dataclass(frozen=True)
class RestrictionOperand:
    """resultAttr: a result set restricted by attributes (query type 101 only)."""

    name: str
    attributes: tuple[Attribute, ...]


@dataclass(frozen=True)
class RpnOperation:
    operator: str  # and | or | and-not | prox
    left: RpnNode
    right: RpnNode


RpnNode = AttributesPlusTerm | ResultSetOperand | RestrictionOperand | RpnOperation


@dataclass(frozen=True)
class RpnQuery:
    attribute_set: str
    root: RpnNode


@dataclass(frozen=True)
class OtherQuery:
    """A query type libgate does not run (0, 2, 100, 101, 102, 104): diagnostic 107."""

    query_type: str


# --- Search and Present ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SearchRequest:
    reference_id: bytes | None = None
    small_set_upper_bound: int
    large_set_lower_bound: int
    medium_set_present_number: int
    replace_indicator: bool
    result_set_name: str
    database_names: tuple[str, ...]
    small_set_element_set_names: str | None = None
    medium_set_element_set_names: str | None = None
    preferred_record_syntax: str | None = None
    query: RpnQuery | OtherQuery


@dataclass(frozen=True, kw_only=True)
class PresentRequest:
    reference_id: bytes | None = None
    result_set_id: str
    result_set_start_point: int
    number_of_records_requested: int
    additional_ranges: tuple[tuple[int, int], ...] = ()
    element_set_name: str | None = None
    comp_spec: CompSpec | None = None
    preferred_record_syntax: str | None = None


@dataclass(frozen=True)
class CompSpec:
    """The parts of a complex record composition libgate honours: a generic element set name
    and a record syntax list; `unsupported` names anything else it carried."""

    element_set_name: str | None
    record_syntaxes: tuple[str, ...]
    select_alternative_syntax: bool
    unsupported: str | None = None


@dataclass(frozen=True)
class RetrievalRecord:
    """A record as an EXTERNAL: `octets` for octet-aligned encodings (ISO 2709, XML) or
    `asn1` for a pre-encoded single-ASN1-type value (OPAC, SUTRS)."""

    syntax: str
    octets: bytes | None = None
    asn1: bytes | None = None


@dataclass(frozen=True)
class NamePlusRecord:
    database: str | None
    record: RetrievalRecord | Diagnostic


@dataclass(frozen=True, kw_only=True)
class SearchResponse:
    reference_id: bytes | None = None
    result_count: int
    number_of_records_returned: int
    next_result_set_position: int
    search_status: bool
    result_set_status: int | None = None  # 1 subset, 2 interim, 3 none (when status false)
    present_status: int | None = None
    records: tuple[NamePlusRecord, ...] | Diagnostic | None = None


@dataclass(frozen=True, kw_only=True)
class PresentResponse:
    reference_id: bytes | None = None
    number_of_records_returned: int
    next_result_set_position: int
    present_status: int  # 0 success … 5 failure
    records: tuple[NamePlusRecord, ...] | Diagnostic | None = None


PRESENT_SUCCESS = 0
PRESENT_PARTIAL_2 = 2  # not all the records: the rest would exceed the message size
PRESENT_FAILURE = 5


# --- Scan --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ScanRequest:
    reference_id: bytes | None = None
    database_names: tuple[str, ...]
    attribute_set: str | None = None
    term: AttributesPlusTerm
    step_size: int | None = None
    number_of_terms_requested: int
    preferred_position_in_response: int | None = None


@dataclass(frozen=True)
class ScanEntry:
    term: str
    occurrences: int


@dataclass(frozen=True, kw_only=True)
class ScanResponse:
    reference_id: bytes | None = None
    scan_status: int  # 0 success, 6 failure
    entries: tuple[ScanEntry, ...] = ()
    position_of_term: int | None = None
    step_size: int | None = None
    diagnostic: Diagnostic | None = None


# --- Sort ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SortKeySpec:
    """One sort key. `kind`: sortfield (a name), attributes (Bib-1 use attribute list),
    elementSpec or databaseSpecific (not supported)."""

    kind: str
    field: str = ""
    attributes: tuple[Attribute, ...] = ()
    attribute_set: str | None = None
    relation: int = 0  # 0 ascending, 1 descending, 3/4 by frequency
    case_sensitivity: int = 1
    missing_value_action: str | None = None  # abort | null | missingValueData


@dataclass(frozen=True, kw_only=True)
class SortRequest:
    reference_id: bytes | None = None
    input_result_set_names: tuple[str, ...]
    sorted_result_set_name: str
    sort_sequence: tuple[SortKeySpec, ...]


@dataclass(frozen=True, kw_only=True)
class SortResponse:
    reference_id: bytes | None = None
    sort_status: int  # 0 success, 2 failure
    result_set_status: int | None = None
    diagnostics: tuple[Diagnostic, ...] = ()
    result_count: int | None = None


# --- Delete, Close, the rest -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DeleteResultSetRequest:
    reference_id: bytes | None = None
    delete_all: bool
    result_set_list: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class DeleteResultSetResponse:
    reference_id: bytes | None = None
    delete_operation_status: int  # 0 success, 1 resultSetDidNotExist, … 9 notAllRequested…
    list_statuses: tuple[tuple[str, int], ...] = ()


DELETE_SUCCESS = 0
DELETE_NOT_FOUND = 1
DELETE_NOT_ALL = 9

CLOSE_FINISHED = 0
CLOSE_SHUTDOWN = 1
CLOSE_SYSTEM_PROBLEM = 2
CLOSE_RESOURCES = 4
CLOSE_PROTOCOL_ERROR = 6
CLOSE_LACK_OF_ACTIVITY = 7


@dataclass(frozen=True, kw_only=True)
class Close:
    reference_id: bytes | None = None
    close_reason: int
    diagnostic_information: str = ""


@dataclass(frozen=True, kw_only=True)
class ExtendedServicesResponse:
    """Only ever a refusal: libgate offers no extended services."""

    reference_id: bytes | None = None
    diagnostic: Diagnostic = field(default_factory=lambda: Diagnostic(221))


@dataclass(frozen=True)
class Unsupported:
    """A well-formed APDU of a kind libgate does not serve (access or resource control,
    extended services, segment, duplicate detection)."""

    tag: int
    name: str
    reference_id: bytes | None = None


Request = (
    InitRequest
    | SearchRequest
    | PresentRequest
    | ScanRequest
    | SortRequest
    | DeleteResultSetRequest
    | Close
    | Unsupported
)
Response = (
    InitResponse
    | SearchResponse
    | PresentResponse
    | ScanResponse
    | SortResponse
    | DeleteResultSetResponse
    | Close
    | ExtendedServicesResponse
)
