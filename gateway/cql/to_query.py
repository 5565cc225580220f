"""CQL parse tree → our query model (`gateway.catalogue.query`).

What CQL means is kept: `=` on a keyword index is "all words" (the server's choice, declared
in explain), `==` and `exact` compare the whole field (YAZ's cql2pqf turns `exact` into ANDed
words; we do not), `adj` is a phrase, `within` takes two years. An unmasked `*` at the end of
a term is right truncation; any other masking is refused with a typed error.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.catalogue.query import (
    Boolean,
    Node,
    Query,
    QueryError,
    SortKey,
    Term,
    UnknownIndex,
    UnsupportedModifier,
    UnsupportedRelation,
    UnsupportedSort,
    UnsupportedTruncation,
)
from gateway.cql import ast, scope
from gateway.cql.mapping import CQL_SET, INDEX_MAP, SORT_MAP
from gateway.cql.parser import parse
from gateway.cql.scope import Scope

RELATION_MAP = {
    "=": "=",
    "==": "exact",
    "exact": "exact",
    "adj": "adj",
    "all": "all",
    "any": "any",
    "<>": "<>",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "within": "within",
}
# CQL relation modifiers we honour (or that describe what we always do).
ACCEPTED_MODIFIERS: dict[str, str | None] = {
    "relevant": "relevant",
    "string": "string",
    "word": "word",
    "ignorecase": None,
    "ignoreaccents": None,
    "masked": None,
}


class UnsupportedBoolean(QueryError):
    code = "unsupported_boolean"


class UnsupportedAnchoring(QueryError):
    code = "unsupported_anchoring"


class UnknownPrefix(QueryError):
    code = "unknown_prefix"


class NeedlessEscape(QueryError):
    r"""A backslash before a character that needs none (`\q`): CQL calls it an error, and a
    guess at what was meant could change the query."""

    code = "needless_escape"


# Finer codes for protocol diagnostics (SRU 39, 46, 81); the parents keep older callers working.
class UnsupportedProximity(UnsupportedBoolean):
    code = "unsupported_proximity"


class UnsupportedBooleanModifier(UnsupportedModifier):
    code = "unsupported_boolean_modifier"


class UnsupportedSortModifier(UnsupportedSort):
    code = "unsupported_sort_modifier"


KNOWN_SETS = frozenset(uri for uri, _ in INDEX_MAP)


class ResolvedIndex(NamedTuple):
    """A CQL index name with its prefix resolved: the key of INDEX_MAP and SORT_MAP."""

    context_set: str  # the context set's URI
    name: str  # lower case: CQL index names are case-insensitive


def _resolve(name: str, prefixes: Scope) -> ResolvedIndex:
    uri, local = scope.resolve(name, prefixes)
    if uri is None:
        prefix = name.split(".", 1)[0]
        raise UnknownPrefix(f"unknown context set prefix {prefix!r} in {name!r}", index=name)
    return ResolvedIndex(uri, local)


def _index(name: str | None, prefixes: Scope) -> str:
    if name is None:
        return "any"
    key = _resolve(name, prefixes)
    if key not in INDEX_MAP:
        if key.context_set not in KNOWN_SETS:  # a context set we have nothing from
            raise UnknownPrefix(
                f"unsupported context set {key.context_set!r} in {name!r}", index=name
            )
        raise UnknownIndex(f"unsupported index {name!r}", index=name)
    return INDEX_MAP[key]


def _relation(relation: ast.Relation | None, index_name: str) -> tuple[str, tuple[str, ...]]:
    if relation is None:
        return "=", ()
    base = relation.base.lower()
    if base.startswith("cql."):
        base = base[4:]
    if base not in RELATION_MAP:
        raise UnsupportedRelation(f"unsupported relation {relation.base!r}", index=index_name)
    modifiers: list[str] = []
    for modifier in relation.modifiers:
        name = modifier.name.lower()
        if name.startswith("cql."):
            name = name[4:]
        if name not in ACCEPTED_MODIFIERS:
            raise UnsupportedModifier(
                f"unsupported relation modifier {modifier.name!r}", index=index_name
            )
        accepted = ACCEPTED_MODIFIERS[name]
        if accepted:
            modifiers.append(accepted)
    return RELATION_MAP[base], tuple(modifiers)


ESCAPABLE = frozenset('*?^"\\')  # the characters a CQL term may escape with a backslash


def _unmask(term: str, index_name: str) -> tuple[str, str]:
    """Value without CQL masking, and the truncation it asked for."""
    out: list[str] = []
    truncation = "none"
    i = 0
    while i < len(term):
        ch = term[i]
        if ch == "\\" and i + 1 < len(term):
            if term[i + 1] not in ESCAPABLE:
                raise NeedlessEscape(
                    f"\\{term[i + 1]} escapes a character that needs no escaping",
                    index=index_name,
                )
            out.append(term[i + 1])
            i += 2
            continue
        if ch == "*":
            if i == len(term) - 1 and out:
                truncation = "right"
            else:
                raise UnsupportedTruncation(
                    "only right truncation (a * at the end of the term) is supported",
                    index=index_name,
                )
        elif ch == "?":
            raise UnsupportedTruncation(
                "the ? masking character is not supported", index=index_name
            )
        elif ch == "^":
            raise UnsupportedAnchoring("anchoring (^) is not supported", index=index_name)
        else:
            out.append(ch)
        i += 1
    return "".join(out), truncation


def _node(node: ast.Node, prefixes: Scope) -> Node:
    if isinstance(node, ast.Prefixed):
        return _node(node.query, scope.within(prefixes, node.prefixes))
    if isinstance(node, ast.Boolean):
        op = node.op.lower()
        if op == "prox":
            raise UnsupportedProximity("proximity (prox) is not supported")
        if op not in ("and", "or", "not"):
            raise UnsupportedBoolean(f"the boolean operator {node.op!r} is not supported")
        if node.modifiers:
            raise UnsupportedBooleanModifier(
                f"boolean modifiers are not supported ({node.modifiers[0].name})"
            )
        return Boolean(op, _node(node.left, prefixes), _node(node.right, prefixes))
    index = _index(node.index, prefixes)
    relation, modifiers = _relation(node.relation, node.index or "cql.serverChoice")
    value, truncation = _unmask(node.term, node.index or "cql.serverChoice")
    return Term(
        index=index, relation=relation, value=value, truncation=truncation, modifiers=modifiers
    )


def _sort(keys: tuple[ast.SortKey, ...], prefixes: Scope) -> tuple[SortKey, ...]:
    result = []
    for key in keys:
        resolved = _resolve(key.index, prefixes)
        if resolved not in SORT_MAP:
            raise UnsupportedSort(f"cannot sort by {key.index!r}", index=key.index)
        descending = False
        for modifier in key.modifiers:
            name = modifier.name.lower().removeprefix("sort.")
            if name == "descending":
                descending = True
            elif name in ("ascending", "ignorecase", "missinglow", "missinghigh", "missingomit"):
                continue
            else:
                raise UnsupportedSortModifier(
                    f"unsupported sort modifier {modifier.name!r}", index=key.index
                )
        result.append(SortKey(SORT_MAP[resolved], descending))
    return tuple(result)


def to_query(parsed: ast.CQLQuery) -> Query:
    prefixes, _assignments, root = scope.top(parsed)  # prefixes at the top also scope sortBy
    return Query(_node(root, prefixes), _sort(parsed.sort_keys, prefixes))


def cql_to_query(text: str) -> Query:
    """Parse CQL text and translate it; raises CQLSyntaxError or a QueryError."""
    return to_query(parse(text))


__all__ = ["CQL_SET", "cql_to_query", "to_query"]
