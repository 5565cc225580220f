"""Bib-1 diagnostics (diagnostic set 1.2.840.10003.4.1): the numbers libgate sends, one table,
and the error that carries one from wherever a request is refused to the reply.

A refused request is always answered with its diagnostic in the APDU the request expects
(non-surrogate diagnostic in a Search or Present response, a Scan or Sort response with status
failure, a surrogate diagnostic in place of one record): never a dropped connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.catalogue.query import QueryError

# Condition → meaning, as in the Bib-1 diagnostic registry (only the ones libgate sends).
BIB1: dict[int, str] = {
    1: "Permanent system error",
    2: "Temporary system error",
    3: "Unsupported search",
    5: "Too many argument words",
    6: "Too many boolean operators",
    11: "Too many characters in search statement",
    13: "Present request out of range",
    14: "System error in presenting records",
    16: "Record exceeds preferred-message-size",
    17: "Record exceeds exceptional-record-size",
    18: "Result set not supported as a search term",
    21: "Result set exists and replace indicator off",
    23: "Specified combination of databases not supported",
    25: "Specified element set name not valid for specified database",
    28: "Result set is in use",
    30: "Specified result set does not exist",
    100: "Unspecified error",
    107: "Query type not supported",
    108: "Malformed query",
    109: "Database unavailable",
    110: "Operator unsupported",
    111: "Too many databases specified",
    113: "Unsupported attribute type",
    114: "Unsupported Use attribute",
    116: "Use attribute required but not supplied",
    117: "Unsupported Relation attribute",
    118: "Unsupported Structure attribute",
    119: "Unsupported Position attribute",
    120: "Unsupported Truncation attribute",
    121: "Unsupported Attribute Set",
    122: "Unsupported Completeness attribute",
    123: "Unsupported attribute combination",
    125: "Malformed search term",
    126: "Illegal term value for attribute",
    128: "Illegal result set name",
    205: "Only zero step size supported for Scan",
    207: "Cannot sort according to sequence",
    208: "No result set name supplied on Sort",
    210: "Database specific sort not supported",
    211: "Too many sort keys",
    213: "Unsupported missing data action",
    214: "Illegal sort relation",
    221: "ES: extended service type not supported",
    228: "Scan: malformed scan",
    229: "Term type not supported",
    230: "Sort: too many input results",
    233: "Scan: unsupported value of position-in-response",
    235: "Database does not exist",
    237: "Sort: illegal sort",
    238: "Record not available in requested syntax",
    239: "Record syntax not supported",
    243: "Present: additional-ranges parameter not supported",
    244: "Present: comp-spec parameter not supported",
    245: "Type-1 query: restriction ('resultAttr') operand not supported",
    246: "Type-1 query: 'complex' attributeValue not supported",
    1001: "Malformed APDU",
}


@dataclass(frozen=True)
class Diagnostic:
    """A Bib-1 diagnostic: `condition` from BIB1, `addinfo` names what was refused (an
    attribute value, a database, a syntax) as YAZ-based clients print it."""

    condition: int
    addinfo: str = ""

    def __post_init__(self) -> None:
        if self.condition not in BIB1:
            raise ValueError(f"Bib-1 diagnostic {self.condition} is not in the table")

    @property
    def message(self) -> str:
        return BIB1[self.condition]


class Z3950Error(Exception):
    """A request refused with a Bib-1 diagnostic (the peer asked for something we do not do)."""

    def __init__(self, condition: int, addinfo: str = "") -> None:
        self.diagnostic = Diagnostic(condition, addinfo[:200])
        super().__init__(f"{condition} {BIB1[condition]}: {addinfo}")


# The catalogue's typed query errors (gateway.catalogue.query and gateway.cql.to_query codes)
# → Bib-1. Attribute-level problems are caught earlier by the RPN translator with the exact
# attribute in addinfo; these cover what only the planner finds.
QUERY_ERROR_CONDITIONS: dict[str, int] = {
    "unknown_index": 114,
    "unsupported_relation": 117,
    "unsupported_modifier": 117,
    "unsupported_truncation": 120,
    "term_too_long": 11,
    "empty_term": 125,
    "invalid_value": 126,
    "too_complex": 6,
    "unsupported_sort": 207,
    "query": 108,
}


def from_query_error(error: QueryError) -> Z3950Error:
    condition = QUERY_ERROR_CONDITIONS.get(error.code, 108)
    addinfo = error.value or error.index or str(error)
    return Z3950Error(condition, addinfo)
