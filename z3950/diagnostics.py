"""The error that carries a Bib-1 diagnostic from wherever the target refuses a request to the
reply, and the catalogue's query errors as Bib-1 conditions.

A refused request is always answered with its diagnostic in the APDU the request expects
(non-surrogate diagnostic in a Search or Present response, a Scan or Sort response with status
failure, a surrogate diagnostic in place of one record): never a dropped connection. The table
of conditions itself is shared with the origin side (`gateway.z3950_codec.diagnostics`).
"""

from __future__ import annotations

from gateway.catalogue.query import QueryError
from gateway.z3950_codec.diagnostics import BIB1, Diagnostic


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
