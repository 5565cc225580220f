"""SRU diagnostics (`info:srw/diagnostic/1/N`): the table, and how our errors map onto it.

A `Diagnostic` is what goes on the wire. `SruError` carries one that ends the request (a fatal
diagnostic); non-fatal ones travel in the response next to its records or terms. Messages are
the standard English names from the SRU diagnostics list; `details` says which parameter or
value, and is what clients show.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.catalogue.query import QueryError
from gateway.cql.lexer import CQLSyntaxError

PREFIX = "info:srw/diagnostic/1/"

MESSAGES: dict[int, str] = {
    1: "General system error",
    2: "System temporarily unavailable",
    4: "Unsupported operation",
    5: "Unsupported version",
    6: "Unsupported parameter value",
    7: "Mandatory parameter not supplied",
    8: "Unsupported parameter",
    10: "Query syntax error",
    11: "Unsupported query type",
    12: "Too many characters in query",
    15: "Unsupported context set",
    16: "Unsupported index",
    19: "Unsupported relation",
    20: "Unsupported relation modifier",
    22: "Unsupported combination of relation and index",
    23: "Too many characters in term",
    26: "Non special character escaped in term",
    27: "Empty term unsupported",
    28: "Masking character not supported",
    31: "Anchoring character not supported",
    35: "Term contains only stopwords",
    36: "Term in invalid format for index or relation",
    37: "Unsupported boolean operator",
    38: "Too many boolean operators in query",
    39: "Proximity not supported",
    46: "Unsupported boolean modifier",
    47: "Cannot process query; reason unknown",
    48: "Query feature unsupported",
    50: "Result sets not supported",
    51: "Result set does not exist",
    55: "Combination of result sets with search terms not supported",
    59: "Result set created with valid partial results available",
    61: "First record position out of range",
    64: "Record temporarily unavailable",
    66: "Unknown schema for retrieval",
    67: "Record not available in this schema",
    71: "Unsupported record packing",
    72: "XPath retrieval unsupported",
    80: "Sort not supported",
    81: "Unsupported sort type",
    88: "Unsupported path for sort",
    91: "Unsupported case",
    92: "Unsupported missing value action",
    110: "Stylesheets not supported",
    111: "Unsupported stylesheet",
    120: "Response position out of range",
    121: "Too many terms requested",
}


@dataclass(frozen=True)
class Diagnostic:
    number: int
    details: str = ""
    message: str = ""  # defaults to the standard name

    @property
    def uri(self) -> str:
        return f"{PREFIX}{self.number}"

    @property
    def text(self) -> str:
        return self.message or MESSAGES.get(self.number, "")


class SruError(Exception):
    """The request cannot be answered; the response is this diagnostic alone."""

    def __init__(self, number: int, details: str = "", message: str = "") -> None:
        self.diagnostic = Diagnostic(number, details, message)
        super().__init__(f"{self.diagnostic.uri} {self.diagnostic.text}: {details}")


# Our query errors (gateway/catalogue/query.py, gateway/cql/to_query.py) by stable code.
QUERY_ERROR_DIAGNOSTICS: dict[str, int] = {
    "unknown_index": 16,
    "unknown_prefix": 15,
    "unsupported_relation": 19,
    "unsupported_modifier": 20,
    "unsupported_boolean_modifier": 46,
    "unsupported_truncation": 28,
    "unsupported_anchoring": 31,
    "needless_escape": 26,
    "unsupported_boolean": 37,
    "unsupported_proximity": 39,
    "term_too_long": 23,
    "empty_term": 27,
    "invalid_value": 36,
    "too_complex": 38,
    "unsupported_sort": 88,
    "unsupported_sort_modifier": 81,
}

SYNTAX_ERROR_DIAGNOSTICS: dict[str, int] = {"syntax": 10, "too_long": 12, "too_deep": 38}


def from_query_error(error: QueryError) -> SruError:
    number = QUERY_ERROR_DIAGNOSTICS.get(error.code, 47)
    details = error.value or error.index or ""
    return SruError(number, details, str(error))


def from_syntax_error(error: CQLSyntaxError) -> SruError:
    number = SYNTAX_ERROR_DIAGNOSTICS.get(error.kind, 10)
    return SruError(number, str(error.position), error.message)
