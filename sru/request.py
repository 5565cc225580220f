"""HTTP parameters → a typed SRU request, or the diagnostic that refuses it. No I/O.

`decode_parameters` turns the raw query string or form body into text parameters;
`parse_request` negotiates the version, finds the operation (1.x: `operation`; 2.0: from which
parameters are present) and validates every parameter against what that operation and version
define. Anything wrong raises `RequestRefused`, which says in which version and as which
operation's response to answer. Values the server lowers (maximumRecords, maximumTerms) are
kept as non-fatal diagnostics in `warnings`, so a client is always told.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl

from gateway.cql import ast
from gateway.records.schemas import RecordSchema, find_schema
from sru.diagnostics import Diagnostic, SruError
from sru.versions import HIGHEST, Version, negotiate

EXPLAIN = "explain"
SEARCH_RETRIEVE = "searchRetrieve"
SCAN = "scan"
OPERATIONS = {"explain": EXPLAIN, "searchretrieve": SEARCH_RETRIEVE, "scan": SCAN}

MAX_PARAMETERS = 64  # a form with more fields is not an SRU request
MAX_VALUE_CHARACTERS = 8192

_COMMON = {"version", "operation", "stylesheet"}
_SR_1 = {"query", "startRecord", "maximumRecords", "recordPacking", "recordSchema", "resultSetTTL"}
# Which parameters each operation defines, per version (SRU 1.1, 1.2; OASIS SRU 2.0).
ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    (EXPLAIN, "1.1"): frozenset(_COMMON | {"recordPacking"}),
    (EXPLAIN, "1.2"): frozenset(_COMMON | {"recordPacking"}),
    (EXPLAIN, "2.0"): frozenset(
        _COMMON | {"recordPacking", "recordXMLEscaping", "httpAccept", "responseType"}
    ),
    (SEARCH_RETRIEVE, "1.1"): frozenset(_COMMON | _SR_1 | {"sortKeys", "recordXPath"}),
    (SEARCH_RETRIEVE, "1.2"): frozenset(_COMMON | _SR_1),
    (SEARCH_RETRIEVE, "2.0"): frozenset(
        _COMMON
        | _SR_1
        | {"queryType", "recordXMLEscaping", "sortKeys", "renderedBy", "httpAccept"}
        | {"responseType"}
    ),
    (SCAN, "1.1"): frozenset(_COMMON | {"scanClause", "responsePosition", "maximumTerms"}),
    (SCAN, "1.2"): frozenset(_COMMON | {"scanClause", "responsePosition", "maximumTerms"}),
    (SCAN, "2.0"): frozenset(
        _COMMON | {"scanClause", "responsePosition", "maximumTerms", "httpAccept"}
    ),
}
XML_MEDIA_TYPES = ("application/sru+xml", "application/xml", "text/xml", "*/*", "application/*")
# A stylesheet reference goes into a processing instruction: nothing that could end it or
# break out of its quoted pseudo-attribute.
_STYLESHEET = re.compile(r"^[!#-&(-;=?-\[\]-~]{1,1024}$")  # printable ASCII but space " ' < > \
_INTEGER = re.compile(r"^[0-9]{1,9}$")
_DIGITS = re.compile(r"^[0-9]+$")
_LARGEST = 2**31 - 1


@dataclass(frozen=True)
class Limits:
    """The server's side of the request: defaults and caps from `[sru]`."""

    default_records: int = 10
    max_records: int = 100
    default_schema: str = "auto"  # each record in its own MARC schema (NATURAL_SCHEMAS)
    default_terms: int = 20
    max_terms: int = 100
    max_result_set_ttl: int = 300
    default_sort: str = "relevance"  # when the query has no sortBy: relevance | record


@dataclass(frozen=True, kw_only=True)
class ExplainRequest:
    version: Version
    record_escaping: str = "xml"  # xml: the record is XML inside recordData; string: escaped
    stylesheet: str | None = None
    warnings: tuple[Diagnostic, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SearchRetrieveRequest:
    version: Version
    query: str
    start_record: int = 1  # 1-based
    maximum_records: int = 10  # after capping; the cap, if applied, is in `warnings`
    record_schema: RecordSchema | None  # None: each record in its own MARC schema
    record_escaping: str = "xml"
    result_set_ttl: int = 0  # seconds granted; 0 = no result set
    sort_keys: tuple[ast.SortKey, ...] = ()  # from sortKeys (1.1, 2.0), as CQL sort keys
    stylesheet: str | None = None
    warnings: tuple[Diagnostic, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ScanRequest:
    version: Version
    scan_clause: str
    response_position: int = 1
    maximum_terms: int = 20
    stylesheet: str | None = None
    warnings: tuple[Diagnostic, ...] = ()


Request = ExplainRequest | SearchRetrieveRequest | ScanRequest


class RequestRefused(SruError):
    """A request answered by a diagnostic alone, in `version`, as `operation`'s response."""

    def __init__(
        self,
        number: int,
        details: str = "",
        message: str = "",
        *,
        version: Version = HIGHEST,
        operation: str = SEARCH_RETRIEVE,
        stylesheet: str | None = None,
    ) -> None:
        super().__init__(number, details, message)
        self.version = version
        self.operation = operation
        self.stylesheet = stylesheet


AUTO_SCHEMA = "auto"  # no recordSchema asked: MARC21 records as MARCXML, UNIMARC as marcxchange


def decode_parameters(raw: bytes) -> dict[str, list[str]]:
    """`application/x-www-form-urlencoded` (a query string or a POST body) → parameters.

    Percent-escapes must decode to UTF-8 (SRU's only encoding), and so must raw bytes (clients
    that post `query=红楼梦` unescaped); anything else is refused as a diagnostic, never guessed
    at."""
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_PARAMETERS,
        )
    except UnicodeDecodeError:
        raise RequestRefused(6, "", "parameters must be UTF-8, percent-encoded") from None
    except ValueError:
        raise RequestRefused(6, "", f"more than {MAX_PARAMETERS} parameters") from None
    parameters: dict[str, list[str]] = {}
    for name, value in pairs:
        parameters.setdefault(name, []).append(value)
    return parameters


def parse_request(parameters: Mapping[str, Sequence[str]], limits: Limits) -> Request:
    """Validate the parameters of one request; raises RequestRefused."""
    single = _singles(parameters)
    version, acceptable = negotiate(single.get("version"))
    operation = _operation(single, version)
    stylesheet = single.get("stylesheet")
    # An unknown or missing operation is answered as searchRetrieve (or scan, when asked for).
    answer_as = operation
    if operation not in (EXPLAIN, SEARCH_RETRIEVE, SCAN):
        answer_as = SCAN if "scanClause" in single and "query" not in single else SEARCH_RETRIEVE

    def refuse(number: int, details: str = "", message: str = "") -> RequestRefused:
        return RequestRefused(
            number,
            details,
            message,
            version=version,
            operation=answer_as,
            stylesheet=stylesheet if stylesheet and _STYLESHEET.match(stylesheet) else None,
        )

    if not acceptable:
        raise refuse(5, HIGHEST.text, "supported versions: 1.1, 1.2, 2.0")
    if operation.startswith("?"):
        raise refuse(4, operation[1:][:100])
    if operation == "!":
        raise refuse(7, "operation")
    duplicated = [name for name, values in parameters.items() if len(values) > 1]
    if duplicated:
        raise refuse(6, duplicated[0], "the parameter is given more than once")
    allowed = ALLOWED[(operation, version.text)]
    for name, value in single.items():
        if name not in allowed and not name.startswith("x-"):
            raise refuse(8, name[:100])
        if len(value) > MAX_VALUE_CHARACTERS:
            raise refuse(6, name, f"longer than {MAX_VALUE_CHARACTERS} characters")
    if stylesheet is not None and not _STYLESHEET.match(stylesheet):
        raise refuse(111, stylesheet[:100])
    for name in ("httpAccept", "responseType"):
        if name in single and not any(t in single[name] for t in XML_MEDIA_TYPES):
            raise refuse(6, name, "responses are XML (application/sru+xml)")
    escaping = _escaping(single, version, refuse)
    if operation == EXPLAIN:
        return ExplainRequest(version=version, record_escaping=escaping, stylesheet=stylesheet)
    if operation == SCAN:
        return _scan(single, version, limits, stylesheet, refuse)
    return _search_retrieve(single, version, limits, escaping, stylesheet, refuse)


class Refuse(Protocol):
    """Builds the refusal of this request for a diagnostic number, in its version and as the
    operation it is answered as (see `parse_request`)."""

    def __call__(self, number: int, details: str = "", message: str = "") -> RequestRefused: ...


def _singles(parameters: Mapping[str, Sequence[str]]) -> dict[str, str]:
    return {name: values[0] for name, values in parameters.items() if values}


def _operation(single: Mapping[str, str], version: Version) -> str:
    """The operation, or "?name" for an unknown one, or "!" when 1.x leaves it out."""
    named = single.get("operation")
    if named is not None:
        found = OPERATIONS.get(named.strip().lower())
        return found if found else "?" + named
    if version.is_2:  # OASIS: the parameters present say which operation
        if "query" in single:
            return SEARCH_RETRIEVE
        return SCAN if "scanClause" in single else EXPLAIN
    # SRU 1.x: `operation` is mandatory, but a bare base URL is answered with explain.
    return "!" if "query" in single or "scanClause" in single else EXPLAIN


def _escaping(single: Mapping[str, str], version: Version, refuse: Refuse) -> str:
    if not version.is_2:
        packing = single.get("recordPacking", "xml").strip().lower()
        if packing not in ("xml", "string"):
            raise refuse(71, single["recordPacking"][:100])
        return packing
    escaping = single.get("recordXMLEscaping")
    given_packing = single.get("recordPacking")
    if given_packing is not None:
        packing = given_packing.strip().lower()
        if packing in ("xml", "string") and escaping is None:
            escaping = packing  # a 1.x habit in a 2.0 request: read it as recordXMLEscaping
        elif packing == "unpacked":
            raise refuse(71, "unpacked", "records are sent packed (inside recordData)")
        elif packing not in ("packed", "xml", "string"):
            raise refuse(71, single["recordPacking"][:100])
    escaping = (escaping or "xml").strip().lower()
    if escaping not in ("xml", "string"):
        raise refuse(71, escaping[:100])
    return escaping


def _integer(
    single: Mapping[str, str], name: str, default: int, minimum: int, refuse: Refuse
) -> int:
    text = single.get(name)
    if text is None:
        return default
    text = text.strip()
    if not _INTEGER.match(text) or int(text) < minimum:
        raise refuse(6, name, f"{text[:20]!r} is not a whole number of at least {minimum}")
    return int(text)


def _count(single: Mapping[str, str], name: str, default: int, minimum: int, refuse: Refuse) -> int:
    """A number of records or terms wanted: any size, as the caller caps it (clients send
    2147483647 for "all"). Past the largest 32-bit value it reads as that value, so no giant
    integer is ever built from hostile digits."""
    text = single.get(name)
    if text is None:
        return default
    text = text.strip()
    wrong = f"{text[:20]!r} is not a whole number of at least {minimum}"
    if not _DIGITS.match(text):
        raise refuse(6, name, wrong)
    digits = text.lstrip("0") or "0"
    value = min(int(digits), _LARGEST) if len(digits) <= 10 else _LARGEST
    if value < minimum:
        raise refuse(6, name, wrong)
    return value


def _search_retrieve(
    single: Mapping[str, str],
    version: Version,
    limits: Limits,
    escaping: str,
    stylesheet: str | None,
    refuse: Refuse,
) -> SearchRetrieveRequest:
    query = single.get("query", "")
    if not query.strip():
        raise refuse(7, "query")
    query_type = single.get("queryType", "cql").strip().lower()
    if query_type not in ("cql", "cql2"):
        raise refuse(11, single["queryType"][:100], "the only query type is cql")
    if single.get("renderedBy", "client").strip().lower() != "client":
        raise refuse(6, "renderedBy", "the server does not render responses")
    if "recordXPath" in single:
        raise refuse(72, "recordXPath")
    warnings: list[Diagnostic] = []
    start = _integer(single, "startRecord", 1, 1, refuse)
    maximum = _count(single, "maximumRecords", limits.default_records, 0, refuse)
    if maximum > limits.max_records:
        warnings.append(
            Diagnostic(
                6,
                "maximumRecords",
                f"at most {limits.max_records} records per response: {limits.max_records}"
                f" sent instead of {maximum}",
            )
        )
        maximum = limits.max_records
    schema_name = single.get("recordSchema", limits.default_schema)
    schema = None if schema_name == AUTO_SCHEMA else find_schema(schema_name)
    if schema is None and schema_name != AUTO_SCHEMA:
        raise refuse(66, schema_name[:200])
    ttl = _integer(single, "resultSetTTL", 0, 0, refuse)
    if ttl and not limits.max_result_set_ttl:
        warnings.append(Diagnostic(50, "resultSetTTL", "this server keeps no result sets"))
    ttl = min(ttl, limits.max_result_set_ttl)
    sort_keys = parse_sort_keys(single["sortKeys"], refuse) if "sortKeys" in single else ()
    return SearchRetrieveRequest(
        version=version,
        query=query,
        start_record=start,
        maximum_records=maximum,
        record_schema=schema,
        record_escaping=escaping,
        result_set_ttl=ttl,
        sort_keys=sort_keys,
        stylesheet=stylesheet,
        warnings=tuple(warnings),
    )


# sortKeys' missingValue → the CQL sort modifier that means the same ("abort" is refused: 92).
MISSING_VALUE_MODIFIERS: dict[str, str | None] = {
    "": None,
    "highvalue": "missingHigh",
    "lowvalue": "missingLow",
    "omit": "missingOmit",
}


def parse_sort_keys(text: str, refuse: Refuse) -> tuple[ast.SortKey, ...]:
    """SRU 1.1 / 2.0 `sortKeys`: space-separated `path,schema,ascending,caseSensitive,missing`,
    as the CQL sort keys they mean (so one translation serves both)."""
    keys: list[ast.SortKey] = []
    for spec in text.split():
        parts = (spec.split(",") + [""] * 5)[:5]
        path, _schema, ascending, case_sensitive, missing = parts
        if not path or len(spec.split(",")) > 5:
            raise refuse(6, "sortKeys", f"{spec[:100]!r} is not path,schema,ascending,...")
        modifiers = []
        if ascending not in ("", "0", "1"):
            raise refuse(6, "sortKeys", f"ascending must be 0 or 1, not {ascending[:20]!r}")
        modifiers.append(ast.Modifier("sort.descending" if ascending == "0" else "sort.ascending"))
        if case_sensitive not in ("", "0"):
            raise refuse(91, "caseSensitive", "sorting ignores case")
        if missing.lower() not in MISSING_VALUE_MODIFIERS:
            raise refuse(92, missing[:100])
        action = MISSING_VALUE_MODIFIERS[missing.lower()]
        if action:
            modifiers.append(ast.Modifier("sort." + action))
        keys.append(ast.SortKey(path, tuple(modifiers)))
    if not keys:
        raise refuse(6, "sortKeys", "no sort key given")
    return tuple(keys)


def _scan(
    single: Mapping[str, str],
    version: Version,
    limits: Limits,
    stylesheet: str | None,
    refuse: Refuse,
) -> ScanRequest:
    clause = single.get("scanClause")
    if clause is None:
        raise refuse(7, "scanClause")
    warnings: list[Diagnostic] = []
    maximum = _count(single, "maximumTerms", limits.default_terms, 1, refuse)
    if maximum > limits.max_terms:
        warnings.append(
            Diagnostic(
                121,
                "maximumTerms",
                f"at most {limits.max_terms} terms per response: {limits.max_terms} sent"
                f" instead of {maximum}",
            )
        )
        maximum = limits.max_terms
    position = _integer(single, "responsePosition", 1, 0, refuse)
    if position > maximum + 1:
        raise refuse(120, str(position), f"responsePosition must be 0..{maximum + 1}")
    return ScanRequest(
        version=version,
        scan_clause=clause,
        response_position=position,
        maximum_terms=maximum,
        stylesheet=stylesheet,
        warnings=tuple(warnings),
    )


__all__ = [
    "ExplainRequest",
    "Limits",
    "Request",
    "RequestRefused",
    "ScanRequest",
    "SearchRetrieveRequest",
    "decode_parameters",
    "parse_request",
]
