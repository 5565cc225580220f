"""The query model (`gateway.catalogue.query`) → a Bib-1 type-1 (RPN) query, as an origin sends
it to a partner's Z39.50 target: the inverse of z3950/rpn.py, reading the same tables (bib1).

Every term carries all six attribute types, as YAZ's CCL defaults do, so that a target does
not fill in its own defaults (Zebra's differ from ours): use (1) from `bib1.INDEX_USE`, relation
(2), position (3) any, structure (4), truncation (5) right or none, completeness (6)
incomplete subfield. Per relation, on keyword indexes:

- `all` and `=`: word (4=2) for one word, word list (4=6, ANDed) for several;
- `any`: free-form text (4=105, ORed); `adj`: phrase (4=1);
- `exact`: the whole heading: first in field (3=1), phrase, complete field (6=3).

Exact-value indexes (ISBN, language, …) send the value as a phrase; `year` sends structure
year (4=4) with the comparison as the relation, and `within "a b"` as `>= a and <= b`. Terms
are encoded in the target's character set (legacy Chinese targets read GBK). Sort keys have no
place in a Search request (they are the Sort service's) and are not sent.
"""

from __future__ import annotations

from gateway.catalogue.indexes import EXACT, INDEXES, NUMERIC
from gateway.catalogue.query import (
    InvalidValue,
    Node,
    Query,
    Term,
    UnknownIndex,
    UnsupportedRelation,
)
from gateway.z3950_codec import bib1, oids
from gateway.z3950_codec.messages import (
    Attribute,
    AttributesPlusTerm,
    RpnNode,
    RpnOperation,
    RpnQuery,
)

USE, RELATION, POSITION, STRUCTURE, TRUNCATION, COMPLETENESS = 1, 2, 3, 4, 5, 6
FIRST_IN_FIELD, ANY_POSITION = 1, 3
PHRASE, WORD, YEAR, WORD_LIST, FREE_FORM = 1, 2, 4, 6, 105
INCOMPLETE_SUBFIELD, COMPLETE_FIELD = 1, 3
EQUAL = 3
# Query model relation → Bib-1 relation value (the inverse of bib1.RELATIONS, without 102).
COMPARISONS: dict[str, int] = {"<": 1, "<=": 2, "=": 3, "exact": 3, ">=": 4, ">": 5, "<>": 6}
BOOLEANS = {"and": "and", "or": "or", "not": "and-not"}


def query_to_rpn(query: Query, *, encoding: str = "utf-8") -> RpnQuery:
    """`query` as a Bib-1 type-1 query with its terms in `encoding`. Raises UnknownIndex for an
    index Bib-1 has no use attribute for, UnsupportedRelation for a relation RPN cannot say
    and InvalidValue for a term the target's character set cannot hold."""
    return RpnQuery(oids.BIB1, _node(query.root, encoding))


def _node(root: Node, encoding: str) -> RpnNode:
    # Post-order without recursion: a query from a reader is bounded by the parser, but this
    # module does not rely on it.
    built: dict[int, RpnNode] = {}
    pending: list[tuple[Node, bool]] = [(root, False)]
    while pending:
        node, children_done = pending.pop()
        if isinstance(node, Term):
            built[id(node)] = _term(node, encoding)
        elif not children_done:
            pending += [(node, True), (node.right, False), (node.left, False)]
        else:
            left, right = built.pop(id(node.left)), built.pop(id(node.right))
            built[id(node)] = RpnOperation(BOOLEANS[node.op], left, right)
    return built[id(root)]


def _term(term: Term, encoding: str) -> RpnNode:
    use = bib1.INDEX_USE.get(term.index)
    if use is None:
        raise UnknownIndex(f"Bib-1 has no use attribute for {term.index!r}", index=term.index)
    kind = INDEXES[term.index].kind
    if kind == NUMERIC:
        return _year(term, use, encoding)
    if kind == EXACT:
        structure = FREE_FORM if term.relation == "any" else PHRASE
        relation = COMPARISONS.get(term.relation, EQUAL)
        return _operand(term, encoding, use, relation, ANY_POSITION, structure)
    if term.relation in ("all", "="):
        structure = WORD_LIST if len(term.value.split()) > 1 else WORD
    elif term.relation == "any":
        structure = FREE_FORM
    elif term.relation == "adj":
        structure = PHRASE
    elif term.relation == "exact":
        return _operand(
            term, encoding, use, EQUAL, FIRST_IN_FIELD, PHRASE, completeness=COMPLETE_FIELD
        )
    else:
        raise UnsupportedRelation(
            f"{term.relation!r} on a word index has no Bib-1 form", index=term.index
        )
    return _operand(term, encoding, use, EQUAL, ANY_POSITION, structure)


def _year(term: Term, use: int, encoding: str) -> RpnNode:
    if term.relation == "within":
        low, _, high = term.value.strip().partition(" ")
        if not low or not high.strip():
            raise InvalidValue("within takes two years", index=term.index, value=term.value)
        return RpnOperation(
            "and",
            _year(Term(term.index, ">=", low), use, encoding),
            _year(Term(term.index, "<=", high.strip()), use, encoding),
        )
    relation = COMPARISONS.get(term.relation)
    if relation is None:
        raise UnsupportedRelation(f"{term.relation!r} on a year", index=term.index)
    return _operand(term, encoding, use, relation, ANY_POSITION, YEAR)


def _operand(
    term: Term,
    encoding: str,
    use: int,
    relation: int,
    position: int,
    structure: int,
    *,
    completeness: int = INCOMPLETE_SUBFIELD,
) -> AttributesPlusTerm:
    truncation = bib1.TRUNCATION_RIGHT if term.truncation == "right" else bib1.TRUNCATION_NONE
    try:
        data = term.value.encode(encoding)
    except UnicodeEncodeError:
        raise InvalidValue(
            f"the term cannot be written in {encoding}", index=term.index, value=term.value
        ) from None
    values = (
        (USE, use),
        (RELATION, relation),
        (POSITION, position),
        (STRUCTURE, structure),
        (TRUNCATION, truncation),
        (COMPLETENESS, completeness),
    )
    return AttributesPlusTerm(tuple(Attribute(kind, value) for kind, value in values), data)


__all__ = ["query_to_rpn"]
