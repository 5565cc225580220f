"""The portal's search forms read into the one query model: basic search (one index and the
search box), advanced search (rows of field and words joined by AND, OR or NOT, and a year
range) and sort keys. The search box takes free text by the rule every search box shares
(gateway/cql/free_text.py); advanced search builds the query from its fields and never shows
CQL to the reader."""

from __future__ import annotations

from dataclasses import dataclass, replace

from gateway.catalogue.query import Boolean, EmptyTerm, Node, Query, SortKey, Term
from gateway.cql.free_text import read_query, words_in

# The fields readers pick from, in the order the forms list them (message key: index_<name>).
SEARCH_FIELDS = ("any", "title", "author", "subject", "series", "publisher", "isbn", "clc")
BROWSE_LISTS = ("title", "author", "subject", "series")
OPERATORS = ("and", "or", "not")
ADVANCED_ROWS = 3
# sort choice → the query model's sort keys ("relevance" is the model's default order)
SORTS: dict[str, tuple[SortKey, ...]] = {
    "relevance": (),
    "title": (SortKey("title"),),
    "author": (SortKey("author"),),
    "date": (SortKey("date", descending=True),),
    "date_old": (SortKey("date"),),
}
PAGE_SIZES = (10, 20, 50)


@dataclass(frozen=True)
class AdvancedRow:
    op: str  # how the row joins the rows above: and | or | not (ignored on the first row)
    field: str
    terms: str


def basic_query(field: str, text: str) -> Query:
    """The search box: in "any" field it is read as CQL or free text by the shared rule; in
    another field the words (and quoted phrases) are searched in that field."""
    if field not in SEARCH_FIELDS or field == "any":
        return read_query(text).query
    stripped = text.strip()
    if not stripped:
        raise EmptyTerm("There is nothing to search for: type a word or two.")
    return Query(words_in(stripped, field))


def advanced_query(rows: list[AdvancedRow], year_from: str = "", year_to: str = "") -> Query:
    """Rows with words, joined left to right; a year range limits the whole."""
    node: Node | None = None
    for row in rows:
        if not row.terms.strip():
            continue
        field = row.field if row.field in SEARCH_FIELDS else "any"
        part = words_in(row.terms.strip(), field)
        op = row.op if row.op in OPERATORS else "and"
        node = part if node is None else Boolean(op, node, part)
    for relation, value in ((">=", year_from), ("<=", year_to)):
        if value.strip():
            year = Term("year", relation, value.strip())
            node = year if node is None else Boolean("and", node, year)
    if node is None:
        raise EmptyTerm("There is nothing to search for: type a word or two.")
    return Query(node)


def sorted_by(query: Query, sort: str) -> Query:
    return replace(query, sort=SORTS.get(sort, ()))


__all__ = [
    "ADVANCED_ROWS",
    "BROWSE_LISTS",
    "OPERATORS",
    "PAGE_SIZES",
    "SEARCH_FIELDS",
    "SORTS",
    "AdvancedRow",
    "advanced_query",
    "basic_query",
    "sorted_by",
]
