"""The query model (`gateway.catalogue.query`) → CQL text, as an origin sends it to a partner's
SRU server: the inverse of `to_query`, with the index names our own explain publishes.

Indexes are written with the context sets most servers predefine (dc, bath, cql, rec: YAZ,
Zebra, Koha, Alma); only indexes no standard set names (CLC class, barcode) use `local`. Every
term is quoted, with the CQL masking characters and quotes escaped, so a value is never read as
a mask, a keyword or two terms (CJK included: quoting is by character, not by byte); right
truncation is the one unescaped `*`. Booleans are parenthesised, so CQL's left-to-right
evaluation cannot regroup them.
"""

from __future__ import annotations

from gateway.catalogue.query import Boolean, Node, Query, Term, UnknownIndex

# Our index → the CQL index written for it. Each name is in gateway/cql/mapping.py's INDEX_MAP
# (tests/test_query_writing.py holds them to it), so our own server reads back what we wrote.
CQL_INDEXES: dict[str, str] = {
    "title": "dc.title",
    "author": "dc.creator",
    "subject": "dc.subject",
    "publisher": "dc.publisher",
    "year": "dc.date",
    "language": "dc.language",
    "series": "bath.seriesTitle",
    "isbn": "bath.isbn",
    "issn": "bath.issn",
    "isrc": "bath.standardIdentifier",
    "id": "rec.identifier",
    "any": "cql.serverChoice",
    "allrecords": "cql.allRecords",
    "clc": "local.clc",
    "barcode": "local.barcode",
}
SORT_INDEXES: dict[str, str] = {
    "relevance": "cql.relevance",
    "title": "dc.title",
    "author": "dc.creator",
    "date": "dc.date",
    "record": "local.record",
}
# CQL 1.1 (SRU 1.1) spells the whole-field relation `exact`; 1.2 and 2.0 write `==`.
EXACT_RELATION = {"1.1": "exact", "1.2": "==", "2.0": "=="}
ESCAPED = frozenset('\\"*?^')


def quote(value: str) -> str:
    """`value` as one quoted CQL term that means exactly these characters."""
    return '"' + "".join("\\" + ch if ch in ESCAPED else ch for ch in value) + '"'


def query_to_cql(query: Query, *, cql_version: str = "1.2") -> str:
    """`query` as CQL text of `cql_version` (1.1, 1.2 or 2.0), with `sortBy` from 1.2 on
    (SRU 1.1 sorts by its sortKeys parameter instead). Raises UnknownIndex for an index no
    CQL name is known for."""
    text = _node(query.root, cql_version)
    if query.sort and cql_version != "1.1":
        keys = [
            SORT_INDEXES[key.key] + ("/sort.descending" if key.descending else "")
            for key in query.sort
        ]
        text += " sortBy " + " ".join(keys)
    return text


def _node(root: Node, cql_version: str) -> str:
    # Post-order without recursion, as the other translators of the query model.
    built: dict[int, str] = {}
    pending: list[tuple[Node, bool]] = [(root, False)]
    while pending:
        node, children_done = pending.pop()
        if isinstance(node, Term):
            built[id(node)] = _term(node, cql_version)
        elif not children_done:
            pending += [(node, True), (node.right, False), (node.left, False)]
        else:
            assert isinstance(node, Boolean)
            left, right = built.pop(id(node.left)), built.pop(id(node.right))
            built[id(node)] = f"({left} {node.op} {right})"
    return built[id(root)]


def _term(term: Term, cql_version: str) -> str:
    index = CQL_INDEXES.get(term.index)
    if index is None:
        raise UnknownIndex(f"no CQL index is known for {term.index!r}", index=term.index)
    relation = term.relation
    if relation == "exact":
        relation = EXACT_RELATION.get(cql_version, "==")
    relation += "".join(f"/{modifier}" for modifier in term.modifiers)
    value = quote(term.value)
    if term.truncation == "right":
        value = value[:-1] + '*"'
    return f"{index} {relation} {value}"


__all__ = ["query_to_cql", "quote"]
