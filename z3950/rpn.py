"""Type-1 (RPN) queries → the query model (`gateway.catalogue.query`), with Bib-1 diagnostics.

Each attributes-plus-term becomes one `Term`; `@and`, `@or` and `@not` become `Boolean`s.
The attribute tables live in `gateway.z3950_codec.bib1`. What a term means, per index kind:

- keyword indexes (title, author, subject, series, publisher, any): words ANDed by default
  (the server's choice, as `=` in CQL), structure phrase (4=1) is a phrase, free-form text
  (4=105) ORs the words, completeness 6=2/6=3 or structure key/string (4=3, 4=108) match the
  whole heading (title, author, subject, series only); relations other than = are 117;
- exact-value indexes (ISBN, ISSN, ISRC, local number, barcode, CLC, language): the whole
  value, `=` or `<>` (2=6);
- year: relations 1-6, structure year/date/numeric.

Truncation: right (5=1), none (5=100), `#` at the end with 5=101 and `?` at the end with 5=104;
masking anywhere else, left truncation and regular expressions are 120. A term is decoded from
bytes by the session's character set (UTF-8 unless the client negotiated otherwise).
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.catalogue.indexes import EXACT, INDEXES, NUMERIC
from gateway.catalogue.planner import HEADING_INDEXES
from gateway.catalogue.query import Boolean, Node, Query, Term
from gateway.z3950_codec import bib1, oids
from gateway.z3950_codec.messages import (
    Attribute,
    AttributesPlusTerm,
    OtherQuery,
    OutOfRange,
    RestrictionOperand,
    ResultSetOperand,
    RpnNode,
    RpnOperation,
    RpnQuery,
)
from z3950.diagnostics import Z3950Error

TermDecoder = Callable[[bytes], str]
BOOLEANS = {"and": "and", "or": "or", "and-not": "not"}
RELEVANCE = 102  # Bib-1 relation attribute value


def attribute_values(
    attributes: tuple[Attribute, ...], attribute_set: str | None
) -> dict[int, int]:
    """Attribute type → value, after checking the set (121), the types (113) and that values
    are numeric (246). The first value given for a type wins."""
    found: dict[int, int] = {}
    for attribute in attributes:
        in_set = attribute.attribute_set or attribute_set
        if in_set is not None and in_set != oids.BIB1:
            raise Z3950Error(121, in_set)
        if attribute.complex or not isinstance(attribute.value, int):
            raise Z3950Error(246, f"{attribute.type}={attribute.value}")
        if attribute.type not in bib1.KNOWN_TYPES:
            raise Z3950Error(113, str(attribute.type))
        found.setdefault(attribute.type, attribute.value)
    return found


def term_text(term: AttributesPlusTerm, decode: TermDecoder) -> str:
    if term.term_type == "numeric" and isinstance(term.term, int):
        if isinstance(term.term, OutOfRange):
            raise Z3950Error(125, str(term.term))
        return str(term.term)
    if term.term_type in ("general", "characterString") and isinstance(term.term, bytes):
        return decode(term.term)
    raise Z3950Error(229, term.term_type)


def use_index(values: dict[int, int]) -> str:
    if 1 not in values:
        return bib1.DEFAULT_USE
    index = bib1.USE_ATTRIBUTES.get(values[1])
    if index is None:
        raise Z3950Error(114, str(values[1]))
    return index


def _unmask(text: str, truncation: int) -> tuple[str, str]:
    """The value without masking characters, and the truncation it asks for."""
    if truncation == bib1.TRUNCATION_RIGHT:
        return text, "right"
    if truncation == bib1.TRUNCATION_NONE:
        return text, "none"
    if truncation in (bib1.TRUNCATION_HASH, bib1.TRUNCATION_Z3958):
        variable = "#" if truncation == bib1.TRUNCATION_HASH else "?"
        single = "#" if truncation == bib1.TRUNCATION_Z3958 else None
        stripped = text.rstrip(variable)
        masked_inside = variable in stripped or (single is not None and single in text)
        if masked_inside:
            raise Z3950Error(120, f"5={truncation}: masking is supported only at the end of a term")
        if stripped != text:
            if not stripped.strip():
                raise Z3950Error(125, text)
            return stripped, "right"
        return text, "none"
    raise Z3950Error(120, str(truncation))


def translate_term(
    term: AttributesPlusTerm, attribute_set: str | None, decode: TermDecoder
) -> Term:
    values = attribute_values(term.attributes, attribute_set)
    index = use_index(values)
    kind = INDEXES[index].kind
    relation_value = values.get(2, bib1.DEFAULT_RELATION)
    relation = bib1.RELATIONS.get(relation_value)
    if relation is None:
        raise Z3950Error(117, str(relation_value))
    position = values.get(3, bib1.ANY_POSITION)
    if position not in bib1.FIRST_POSITIONS and position != bib1.ANY_POSITION:
        raise Z3950Error(119, str(position))
    structure = values.get(4)
    completeness = values.get(6, 1)
    if completeness not in (1, 2, 3):
        raise Z3950Error(122, str(completeness))
    text = term_text(term, decode)
    value, truncation = _unmask(text, values.get(5, bib1.TRUNCATION_NONE))
    if kind == NUMERIC:
        return _year_term(index, relation, structure, value, truncation, position)
    if kind == EXACT:
        return _exact_term(index, relation, relation_value, structure, value, truncation)
    return _keyword_term(
        index, relation, relation_value, structure, completeness, position, value, truncation
    )


def _year_term(
    index: str, relation: str, structure: int | None, value: str, truncation: str, position: int
) -> Term:
    if structure is not None and structure not in bib1.STRUCTURE_DATES | {1, 2, 3, 6, 108}:
        raise Z3950Error(118, str(structure))
    if truncation != "none":
        raise Z3950Error(120, "truncation does not apply to dates")
    if structure in (5, 100) and len(value) >= 4 and value[:4].isdigit():
        value = value[:4]  # a normalised date (YYYYMMDD or YYYY-MM-DD): its year
    return Term(index, relation, value.strip())


def _exact_term(
    index: str,
    relation: str,
    relation_value: int,
    structure: int | None,
    value: str,
    truncation: str,
) -> Term:
    if relation not in ("=", "<>"):
        raise Z3950Error(117, f"{relation_value} on an identifier")
    if structure in bib1.STRUCTURE_DATES and index != "id":
        raise Z3950Error(118, str(structure))
    if structure is not None and structure >= 100 and structure not in (105, 106, 107, 108):
        raise Z3950Error(118, str(structure))
    if structure in (105, 106) and relation == "=":
        relation = "any"
    return Term(index, relation, value, truncation)


def _keyword_term(
    index: str,
    relation: str,
    relation_value: int,
    structure: int | None,
    completeness: int,
    position: int,
    value: str,
    truncation: str,
) -> Term:
    if relation != "=":
        raise Z3950Error(117, f"{relation_value} on a word index")
    whole = completeness in bib1.COMPLETE or structure in bib1.STRUCTURE_WHOLE
    if whole:
        if index not in HEADING_INDEXES:
            if completeness in bib1.COMPLETE:
                raise Z3950Error(122, f"{completeness} on {index}")
            raise Z3950Error(118, str(structure))
        if truncation != "none":
            raise Z3950Error(120, "truncation of a whole heading")
        return Term(index, "exact", value)
    if position in bib1.FIRST_POSITIONS:
        # "First in field" needs field boundaries a word index does not keep; with
        # completeness 6=2/6=3 (above) it is a whole-heading match instead.
        raise Z3950Error(119, f"{position} without complete field (6=3)")
    if structure is None:
        word_relation = "all"
    elif structure in bib1.STRUCTURE_WORDS:
        word_relation = bib1.STRUCTURE_WORDS[structure]
    else:
        raise Z3950Error(118, str(structure))
    return Term(index, word_relation, value, truncation)


def translate(query: RpnQuery | OtherQuery, decode: TermDecoder) -> Query:
    """A Search request's query → Query. Raises Z3950Error with the Bib-1 diagnostic."""
    if isinstance(query, OtherQuery):
        raise Z3950Error(107, query.query_type)
    if query.attribute_set != oids.BIB1:
        raise Z3950Error(121, query.attribute_set)
    return Query(_node(query.root, query.attribute_set, decode))


def asks_for_relevance(query: RpnQuery | OtherQuery) -> bool:
    """Bib-1 asks for ranking with relation 102 (relevance) on a term; without it a target
    answers in its own order (Zebra: catalogue order)."""
    if isinstance(query, OtherQuery):
        return False
    pending: list[RpnNode] = [query.root]
    while pending:
        node = pending.pop()
        if isinstance(node, AttributesPlusTerm):
            if any(a.type == 2 and a.value == RELEVANCE for a in node.attributes):
                return True
        elif isinstance(node, RpnOperation):
            pending += [node.left, node.right]
    return False


def _node(node: RpnNode, attribute_set: str, decode: TermDecoder) -> Node:
    if isinstance(node, AttributesPlusTerm):
        return translate_term(node, attribute_set, decode)
    if isinstance(node, ResultSetOperand):
        raise Z3950Error(18, node.name)
    if isinstance(node, RestrictionOperand):
        raise Z3950Error(245, node.name)
    assert isinstance(node, RpnOperation)
    op = BOOLEANS.get(node.operator)
    if op is None:
        raise Z3950Error(110, node.operator)
    return Boolean(
        op, _node(node.left, attribute_set, decode), _node(node.right, attribute_set, decode)
    )


__all__ = [
    "asks_for_relevance",
    "attribute_values",
    "term_text",
    "translate",
    "translate_term",
    "use_index",
]
