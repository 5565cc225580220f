"""One Z39.50 association's state, sans I/O: APDU bytes in, APDU bytes out.

The adapter hands each framed APDU to `Session.handle`, which decodes it, checks it against
the state table, runs its handler (one per APDU type) and returns the encoded answer with
whether to close the connection. Catalogue work goes through `CatalogueService`, so the
adapter runs `handle` in a thread; nothing here touches a socket or a thread.

Result sets belong to the session (Z39.50 result sets are per association). Each keeps its
query and the record keys of its first hits; a Present past what was kept searches again. At
most `max_result_sets` are kept, least recently used dropped first (yaz-client names each
search's set anew, "1", "2", …): a set dropped so is then "no such result set" (30).
"""

from __future__ import annotations

import logging
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import gateway
from gateway.catalogue.indexes import INDEXES
from gateway.catalogue.query import SortKey
from gateway.retrieval import ResultSet
from gateway.z3950_codec import bib1, oids
from gateway.z3950_codec.ber import BerError
from gateway.z3950_codec.diagnostics import Diagnostic
from gateway.z3950_codec.messages import (
    CLOSE_FINISHED,
    CLOSE_LACK_OF_ACTIVITY,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_SYSTEM_PROBLEM,
    DELETE_NOT_ALL,
    DELETE_NOT_FOUND,
    DELETE_SUCCESS,
    PRESENT_FAILURE,
    PRESENT_PARTIAL_2,
    PRESENT_SUCCESS,
    Close,
    CompSpec,
    DeleteResultSetRequest,
    DeleteResultSetResponse,
    ExtendedServicesResponse,
    InitRequest,
    InitResponse,
    NamePlusRecord,
    OutOfRange,
    PresentRequest,
    PresentResponse,
    Request,
    Response,
    ScanRequest,
    ScanResponse,
    SearchRequest,
    SearchResponse,
    SortKeySpec,
    SortRequest,
    SortResponse,
    Unsupported,
)
from gateway.z3950_codec.schema import ApduError
from z3950 import codec, records, rpn
from z3950.diagnostics import Z3950Error
from z3950.pqf import pqf, term_pqf
from z3950.service import CatalogueService

log = logging.getLogger("libgate.z3950")

IMPLEMENTATION_ID = "libgate"
IMPLEMENTATION_NAME = "libgate Z39.50 target"
OFFERED_OPTIONS = frozenset(
    {"search", "present", "delSet", "scan", "sort", "namedResultSets", "negotiationModel"}
)
RECORD_OVERHEAD = 64  # bytes of BER around one record in a response, for message size sums
RESULT_SET_STATUS_NONE = 3
SORT_SUCCESS, SORT_FAILURE = 0, 2
SCAN_SUCCESS, SCAN_FAILURE = 0, 6
MIN_MESSAGE_SIZE = 4096


@dataclass(frozen=True)
class Limits:
    """The target's side of the negotiation and its per-session limits ([z3950] settings)."""

    preferred_message_size: int = 1024 * 1024
    exceptional_record_size: int = 4 * 1024 * 1024
    max_result_sets: int = 10
    result_set_max_records: int = 100
    max_present: int = 1000  # records in one Present (or piggy-backed Search)
    max_scan_terms: int = 100
    legacy_encoding: str = "gb18030"
    default_sort: str = "record"  # unranked unless a term asks (relation 102), as Zebra


@dataclass(frozen=True)
class Reply:
    data: bytes  # b"" when the APDU needs no answer
    close: bool  # the association ends after `data` is sent
    operation: str  # the request's name, for the log
    outcome: str  # ok | diagnostic N | protocol-error | …
    query: str | None = None  # a Search's query or a Scan's term, as PQF, for the log


# States and the APDUs each accepts: anything else is a protocol error (Close protocolError).
NEW, OPEN, CLOSED = "new", "open", "closed"
OPERATIONS = frozenset(
    {
        "searchRequest",
        "presentRequest",
        "scanRequest",
        "sortRequest",
        "deleteResultSetRequest",
        "extendedServicesRequest",
        "triggerResourceControlRequest",
    }
)
TRANSITIONS: dict[tuple[str, str], str] = {
    (NEW, "initRequest"): OPEN,
    (NEW, "close"): CLOSED,
    (OPEN, "initRequest"): OPEN,  # a re-Init renegotiates (YAZ allows it)
    (OPEN, "close"): CLOSED,
    **{(OPEN, operation): OPEN for operation in OPERATIONS},
}


def decoder(legacy_encoding: str, utf8: bool = False) -> Callable[[bytes], str]:
    """Term bytes → text. With UTF-8 negotiated (`utf8`), strictly UTF-8: other bytes are a
    malformed term (125). Without, as clients that negotiate nothing send: UTF-8 when they
    are UTF-8 (most such clients send it today) unless they read better in the configured
    legacy encoding (see `_reads_better_as_legacy`: short GBK terms are often valid UTF-8,
    学习 as "ѧϰ"), else the legacy encoding (GB18030: older Chinese clients send GBK), else
    Latin-1, which reads any bytes."""

    if utf8:

        def strict(data: bytes) -> str:
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError as error:
                raise Z3950Error(125, f"not UTF-8 at byte {error.start}") from None

        return strict

    def decode(data: bytes) -> str:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if text.isascii():
                return text
            legacy = _legacy(data, legacy_encoding)
            if legacy is not None and _reads_better_as_legacy(text, legacy):
                return legacy
            return text
        legacy = _legacy(data, legacy_encoding)
        return legacy if legacy is not None else data.decode("latin-1")

    return decode


def _legacy(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _is_cjk(char: str) -> bool:
    """Han, kana, bopomofo, Hangul, CJK punctuation and full-width forms."""
    code = ord(char)
    return (
        0x2E80 <= code <= 0x9FFF
        or 0xAC00 <= code <= 0xD7AF
        or 0xF900 <= code <= 0xFAFF
        or 0xFE30 <= code <= 0xFE4F
        or 0xFF00 <= code <= 0xFFEF
        or 0x20000 <= code <= 0x3FFFF
    )


def _alphabet(char: str) -> str | None:
    """The script of a letter ("LATIN", "CYRILLIC", "GREEK", …), None for anything else."""
    if not unicodedata.category(char).startswith("L"):
        return None
    return unicodedata.name(char, "?").split()[0]


def _a_word(text: str, wide: list[str]) -> bool:
    """Does `text` (its non-ASCII characters: `wide`) look like a word of one alphabet:
    Latin letters among ASCII ones ("café"), or at least three letters of another alphabet
    cased as words are ("Москва", "Ελλάδα", "שלום")?"""
    alphabets = {_alphabet(c) for c in wide}
    if len(alphabets) != 1 or None in alphabets:
        return False
    (alphabet,) = alphabets
    if alphabet == "LATIN":
        return any(c.isascii() and c.isalpha() for c in text)
    if sum(1 for c in text if _alphabet(c) == alphabet) < 3:
        return False
    return all(_cased_as_a_word(word) for word in text.split())


def _cased_as_a_word(word: str) -> bool:
    """Cased as a word is: "Пушкин", "ПУШКИН", "пушкин" or uncased ("שלום"); not "пУшКин"."""
    letters = [c for c in word if c.isalpha()]
    return (
        all(c.islower() for c in letters[1:])
        or all(c.isupper() for c in letters)
        or all(unicodedata.category(c) == "Lo" for c in letters)  # no case: Hebrew, Arabic
    )


def _reads_better_as_legacy(utf8: str, legacy: str) -> bool:
    """Bytes valid as both UTF-8 and GBK: GBK when the UTF-8 reading has no CJK and only
    two-byte characters (U+0080-U+07FF: Latin, Greek, Cyrillic, Hebrew, Arabic…, what a GBK
    pair reads as) while the GBK reading is all CJK and ASCII, unless the UTF-8 reading looks
    like a word (`_a_word`). A GBK character reads as a character of a near-random script
    ("学习" as Cyrillic and Greek "ѧϰ", "猫" as a lone "è"); "café", "Müller" and "Москва"
    (which GBK reads as "caf茅", "M眉ller" and "袦芯褋泻胁邪") do not."""
    wide = [c for c in utf8 if ord(c) >= 0x80]
    if not wide or any(ord(c) > 0x7FF for c in wide):
        return False
    if not all(ord(c) < 0x80 or _is_cjk(c) for c in legacy):
        return False
    return not _a_word(utf8, wide)


class Session:
    def __init__(self, service: CatalogueService, limits: Limits, peer: str = "?") -> None:
        self.service = service
        self.limits = limits
        self.peer = peer
        self.state = NEW
        self.version = 3
        self.preferred_message_size = limits.preferred_message_size
        self.exceptional_record_size = limits.exceptional_record_size
        self.decode_term = decoder(limits.legacy_encoding)
        self.client = ""  # implementation name and version, for the log
        self.result_sets: OrderedDict[str, ResultSet] = OrderedDict()

    # --- the one entry point ---------------------------------------------------------------

    def handle(self, apdu: bytes) -> Reply:
        try:
            request = codec.decode(apdu)
        except (ApduError, BerError) as error:
            log.info("z3950 peer=%s malformed APDU: %s", self.peer, error)
            return self._close(CLOSE_PROTOCOL_ERROR, f"malformed APDU: {error}"[:200], "?")
        operation = _operation_name(request)
        following = TRANSITIONS.get((self.state, operation))
        if following is None:
            if isinstance(request, Unsupported) and self.state == OPEN:
                detail = f"{request.name} is not offered by this target"
            else:
                detail = (
                    f"{operation} is not allowed {'before Init' if self.state == NEW else 'now'}"
                )
            return self._close(CLOSE_PROTOCOL_ERROR, detail, operation)
        self.state = following
        try:
            response, outcome = self._dispatch(request)
            data = b"" if response is None else codec.encode(response, self.version)
        except Exception:  # noqa: BLE001 - our bug or the database gone: Close, and the log
            log.exception("z3950 peer=%s %s failed", self.peer, operation)
            return self._close(
                CLOSE_SYSTEM_PROBLEM, "system error; see the target's log", operation
            )
        return Reply(data, self.state == CLOSED, operation, outcome, self._query_of(request))

    def _query_of(self, request: Request) -> str | None:
        if isinstance(request, SearchRequest):
            return pqf(request.query, self.decode_term)
        if isinstance(request, ScanRequest):
            return term_pqf(request.term, self.decode_term)
        return None

    def _close(self, reason: int, detail: str, operation: str) -> Reply:
        self.state = CLOSED
        message = Close(close_reason=reason, diagnostic_information=detail)
        outcome = "protocol-error" if reason == CLOSE_PROTOCOL_ERROR else "system-error"
        return Reply(codec.encode(message, self.version), True, operation, outcome)

    def _dispatch(self, request: Request) -> tuple[Response | None, str]:
        if isinstance(request, Unsupported):
            if request.name == "extendedServicesRequest":
                return ExtendedServicesResponse(reference_id=request.reference_id), "diagnostic 221"
            return None, "ignored"  # triggerResourceControlRequest has no response APDU
        handler = HANDLERS[type(request)]
        try:
            return handler(self, request), "ok"
        except Z3950Error as error:
            return _refusal(request, error.diagnostic), f"diagnostic {error.diagnostic.condition}"

    # --- Init ------------------------------------------------------------------------------

    def init(self, request: InitRequest) -> InitResponse:
        common = request.versions & {1, 2, 3}
        accepted = bool(common)
        if not accepted:  # no version in common: refuse, and the association ends
            self.state = CLOSED
        self.version = 3 if 3 in common else 2
        self.preferred_message_size = max(
            MIN_MESSAGE_SIZE,
            min(request.preferred_message_size, self.limits.preferred_message_size),
        )
        self.exceptional_record_size = max(
            self.preferred_message_size,
            min(request.exceptional_record_size, self.limits.exceptional_record_size),
        )
        self.client = " ".join(
            v for v in (request.implementation_name, request.implementation_version) if v
        )[:100]
        options = OFFERED_OPTIONS & request.options
        selected = None
        records_in_charset = None
        proposal = request.charset_proposal
        # A proposal without UTF-8 gets no negotiation answer: none is in force, and terms
        # are read as UTF-8 or the legacy encoding, whichever reads better (`decoder`).
        if (
            proposal is not None
            and self.version >= 3
            and any(name.replace("-", "").upper() == "UTF8" for name in proposal.charsets)
        ):
            selected = "UTF-8"
            records_in_charset = proposal.records_in_selected_charsets
        if selected is None:
            options = options - {"negotiationModel"}
        self.decode_term = decoder(self.limits.legacy_encoding, utf8=selected == "UTF-8")
        log.info(
            "z3950 peer=%s init client=%r version=%d charset=%s message-size=%d",
            self.peer,
            self.client,
            self.version,
            selected or "-",
            self.preferred_message_size,
        )
        return InitResponse(
            reference_id=request.reference_id,
            versions=frozenset(common or {1, 2, 3}),
            options=options,
            preferred_message_size=self.preferred_message_size,
            exceptional_record_size=self.exceptional_record_size,
            result=accepted,
            implementation_id=IMPLEMENTATION_ID,
            implementation_name=IMPLEMENTATION_NAME,
            implementation_version=gateway.__version__,
            selected_charset=selected,
            records_in_selected_charsets=records_in_charset,
        )

    # --- Search ----------------------------------------------------------------------------

    def search(self, request: SearchRequest) -> SearchResponse:
        name = request.result_set_name or "default"
        if name in self.result_sets and not request.replace_indicator:
            raise Z3950Error(21, name)
        database = self.service.database(request.database_names)
        query = rpn.translate(request.query, self.decode_term)
        if self.limits.default_sort != "relevance" and not rpn.asks_for_relevance(request.query):
            query = replace(query, sort=(SortKey(self.limits.default_sort),))
        self.result_sets.pop(name, None)  # a failed search must not leave the old set behind
        found = self.service.search(name, query, database, self.limits.result_set_max_records)
        self._keep(found)
        count, element_set = _piggy_back(request, found.total)
        count = min(count, self.limits.max_present)
        response = SearchResponse(
            reference_id=request.reference_id,
            result_count=found.total,
            number_of_records_returned=0,
            next_result_set_position=1 if found.total else 0,
            search_status=True,
        )
        if count == 0:
            return response
        try:
            spec = records.RecordSpec.resolve(request.preferred_record_syntax, element_set)
        except Z3950Error as error:  # the search stands; its records are the diagnostic
            return replace(response, present_status=PRESENT_FAILURE, records=error.diagnostic)
        returned, status = self._records(found, 1, count, spec)
        return replace(
            response,
            number_of_records_returned=len(returned),
            next_result_set_position=_next_position(1, len(returned), found.total),
            present_status=status,
            records=tuple(returned),
        )

    def _keep(self, result_set: ResultSet) -> None:
        """Keep a new set as the most recently used, dropping the least recently used sets
        over `max_result_sets`."""
        self.result_sets.pop(result_set.name, None)
        while len(self.result_sets) >= self.limits.max_result_sets:
            dropped, _ = self.result_sets.popitem(last=False)
            log.info(
                "z3950 peer=%s result set %r dropped (least recently used)", self.peer, dropped
            )
        self.result_sets[result_set.name] = result_set

    def _use(self, name: str) -> ResultSet:
        """A set by name, now the most recently used; 30 when there is none (never created,
        deleted, or dropped to make room)."""
        result_set = self.result_sets.get(name)
        if result_set is None:
            raise Z3950Error(30, name)
        self.result_sets.move_to_end(name)
        return result_set

    # --- Present ---------------------------------------------------------------------------

    def present(self, request: PresentRequest) -> PresentResponse:
        result_set = self._use(request.result_set_id)
        if request.additional_ranges:
            raise Z3950Error(243)
        syntax, element_set = request.preferred_record_syntax, request.element_set_name
        if request.comp_spec is not None:
            syntax, element_set = _from_comp_spec(request.comp_spec, syntax)
        spec = records.RecordSpec.resolve(syntax, element_set)
        start, wanted = request.result_set_start_point, request.number_of_records_requested
        if wanted < 0:
            raise Z3950Error(13, str(wanted))
        if wanted == 0:
            if isinstance(start, OutOfRange):
                raise Z3950Error(13, str(start))
            return PresentResponse(
                reference_id=request.reference_id,
                number_of_records_returned=0,
                next_result_set_position=start,
                present_status=PRESENT_SUCCESS,
            )
        if start < 1 or start > result_set.total:
            raise Z3950Error(13, str(start))
        count = min(wanted, result_set.total - start + 1, self.limits.max_present)
        returned, status = self._records(result_set, start, count, spec)
        return PresentResponse(
            reference_id=request.reference_id,
            number_of_records_returned=len(returned),
            next_result_set_position=_next_position(start, len(returned), result_set.total),
            present_status=status,
            records=tuple(returned),
        )

    def _records(
        self, result_set: ResultSet, start: int, count: int, spec: records.RecordSpec
    ) -> tuple[list[NamePlusRecord], int]:
        """Records `start … start+count-1` of a set within the negotiated message size: as
        many whole records as fit (at least one, if it is within the exceptional record
        size), with present status partial-2 when some had to stay behind."""
        pks = self.service.page(result_set, start, count)
        built = self.service.retrieve(pks, spec)
        returned: list[NamePlusRecord] = []
        size = 0
        status = PRESENT_SUCCESS
        for database, record in built:
            if isinstance(record, Diagnostic):
                returned.append(NamePlusRecord(database or None, record))
                continue
            length = len(record.octets or record.asn1 or b"") + RECORD_OVERHEAD
            if length > self.exceptional_record_size:
                returned.append(NamePlusRecord(database, Diagnostic(17, str(length))))
                continue
            if returned and size + length > self.preferred_message_size:
                status = PRESENT_PARTIAL_2
                break
            if not returned and length > self.preferred_message_size:
                # one record over the preferred size but within the exceptional size goes
                # alone (the standard's exception for large records)
                returned.append(NamePlusRecord(database, record))
                if len(built) > 1:
                    status = PRESENT_PARTIAL_2
                break
            size += length
            returned.append(NamePlusRecord(database, record))
        return returned, status

    # --- Scan ------------------------------------------------------------------------------

    def scan(self, request: ScanRequest) -> ScanResponse:
        database = self.service.database(request.database_names)
        values = rpn.attribute_values(request.term.attributes, request.attribute_set or oids.BIB1)
        index = rpn.use_index(values)
        if not INDEXES[index].browse:
            browsable = ", ".join(
                str(n) for n, i in bib1.USE_ATTRIBUTES.items() if INDEXES[i].browse and n < 9000
            )
            raise Z3950Error(114, f"{values.get(1, 'none')} (scan lists: use {browsable})")
        if request.step_size not in (None, 0):
            raise Z3950Error(205, str(request.step_size))
        count = request.number_of_terms_requested
        if count < 0:
            raise Z3950Error(228, str(count))
        count = min(count, self.limits.max_scan_terms)
        position = request.preferred_position_in_response
        position = 1 if position is None else position
        if position < 0 or position > count + 1:
            raise Z3950Error(233, str(position))
        start = rpn.term_text(request.term, self.decode_term)
        entries, found_at = self.service.scan(database, index, start, count, position)
        return ScanResponse(
            reference_id=request.reference_id,
            scan_status=SCAN_SUCCESS,
            entries=tuple(entries),
            position_of_term=found_at,
            step_size=0,
        )

    # --- Sort ------------------------------------------------------------------------------

    def sort(self, request: SortRequest) -> SortResponse:
        if not request.sorted_result_set_name:
            raise Z3950Error(208)
        if len(request.input_result_set_names) != 1:
            raise Z3950Error(230, str(len(request.input_result_set_names)))
        source = self._use(request.input_result_set_names[0])
        keys = tuple(_sort_key(spec) for spec in request.sort_sequence)
        if not keys:
            raise Z3950Error(207, "no sort keys")
        if len(keys) > 3:
            raise Z3950Error(211, "3")
        if len({k.key for k in keys}) != len(keys):
            raise Z3950Error(207, "a key named twice")
        target = request.sorted_result_set_name
        query = replace(source.query, sort=keys)
        found = self.service.search(
            target, query, source.database, self.limits.result_set_max_records
        )
        self._keep(found)
        return SortResponse(
            reference_id=request.reference_id,
            sort_status=SORT_SUCCESS,
            result_count=found.total,
        )

    # --- Delete, Close -------------------------------------------------------------------------

    def delete(self, request: DeleteResultSetRequest) -> DeleteResultSetResponse:
        if request.delete_all:
            self.result_sets.clear()
            return DeleteResultSetResponse(
                reference_id=request.reference_id, delete_operation_status=DELETE_SUCCESS
            )
        statuses = []
        for name in request.result_set_list:
            found = self.result_sets.pop(name, None)
            statuses.append((name, DELETE_SUCCESS if found else DELETE_NOT_FOUND))
        failed = [s for _, s in statuses if s != DELETE_SUCCESS]
        if not failed:
            overall = DELETE_SUCCESS
        elif len(statuses) == 1:
            overall = failed[0]
        else:
            overall = DELETE_NOT_ALL
        return DeleteResultSetResponse(
            reference_id=request.reference_id,
            delete_operation_status=overall,
            list_statuses=tuple(statuses),
        )

    def close(self, request: Close) -> Close:
        """A Close is answered with a Close (reason finished), then the connection ends."""
        return Close(reference_id=request.reference_id, close_reason=CLOSE_FINISHED)

    def timed_out(self, detail: str = "idle") -> bytes:
        """The Close (lackOfActivity) the adapter sends when the association has been idle too
        long, or no Init came in time."""
        self.state = CLOSED
        return codec.encode(
            Close(close_reason=CLOSE_LACK_OF_ACTIVITY, diagnostic_information=detail), self.version
        )


# Each handler takes the request type it is keyed by; a dict cannot say that per entry, so the
# request parameter is Any here and `handle` looks the handler up by the request's own type.
HANDLERS: dict[type, Callable[[Session, Any], Response]] = {
    InitRequest: Session.init,
    SearchRequest: Session.search,
    PresentRequest: Session.present,
    ScanRequest: Session.scan,
    SortRequest: Session.sort,
    DeleteResultSetRequest: Session.delete,
    Close: Session.close,
}


def _operation_name(request: Request) -> str:
    if isinstance(request, Unsupported):
        return request.name
    return {
        InitRequest: "initRequest",
        SearchRequest: "searchRequest",
        PresentRequest: "presentRequest",
        ScanRequest: "scanRequest",
        SortRequest: "sortRequest",
        DeleteResultSetRequest: "deleteResultSetRequest",
        Close: "close",
    }[type(request)]


def _refusal(request: Request, diagnostic: Diagnostic) -> Response:
    """The APDU that answers `request` with a diagnostic."""
    reference = getattr(request, "reference_id", None)
    if isinstance(request, SearchRequest):
        return SearchResponse(
            reference_id=reference,
            result_count=0,
            number_of_records_returned=0,
            next_result_set_position=0,
            search_status=False,
            result_set_status=RESULT_SET_STATUS_NONE,
            present_status=PRESENT_FAILURE,
            records=diagnostic,
        )
    if isinstance(request, PresentRequest):
        return PresentResponse(
            reference_id=reference,
            number_of_records_returned=0,
            next_result_set_position=0,
            present_status=PRESENT_FAILURE,
            records=diagnostic,
        )
    if isinstance(request, ScanRequest):
        return ScanResponse(reference_id=reference, scan_status=SCAN_FAILURE, diagnostic=diagnostic)
    if isinstance(request, SortRequest):
        return SortResponse(
            reference_id=reference, sort_status=SORT_FAILURE, diagnostics=(diagnostic,)
        )
    raise AssertionError(f"no refusal for {type(request).__name__}")  # Init/Delete never refuse


def _piggy_back(request: SearchRequest, total: int) -> tuple[int, str | None]:
    """How many records go with the search response, and in which element set (the small,
    medium and large set rules of the standard, §3.2.2.1.4)."""
    if total == 0:
        return 0, None
    if total <= request.small_set_upper_bound:
        return total, request.small_set_element_set_names
    if total < request.large_set_lower_bound:
        count = max(0, min(request.medium_set_present_number, total))
        return count, request.medium_set_element_set_names
    return 0, None


def _next_position(start: int, returned: int, total: int) -> int:
    following = start + returned
    return following if following <= total else 0


def _from_comp_spec(comp_spec: CompSpec, syntax: str | None) -> tuple[str | None, str | None]:
    if comp_spec.unsupported:
        raise Z3950Error(244, comp_spec.unsupported)
    for candidate in comp_spec.record_syntaxes:
        if candidate in records.SUPPORTED_SYNTAXES:
            return candidate, comp_spec.element_set_name
    if comp_spec.record_syntaxes and not comp_spec.select_alternative_syntax:
        raise Z3950Error(239, oids.name_of(comp_spec.record_syntaxes[0]))
    return syntax, comp_spec.element_set_name


def _sort_key(spec: SortKeySpec) -> SortKey:
    if spec.kind == "sortfield":
        key = bib1.SORT_FIELDS.get(spec.field.strip().lower())
        if key is None:
            raise Z3950Error(207, spec.field)
    elif spec.kind == "attributes":
        values = rpn.attribute_values(spec.attributes, spec.attribute_set)
        use = values.get(1)
        key = bib1.SORT_KEYS.get(use) if use is not None else None
        if key is None:
            raise Z3950Error(207, f"1={use}")
    elif spec.kind == "databaseSpecific":
        raise Z3950Error(210)
    else:
        raise Z3950Error(207, spec.kind)
    if spec.relation not in (0, 1):
        raise Z3950Error(214, str(spec.relation))
    return SortKey(key, descending=spec.relation == 1)
