"""The CQL parse tree, as the CQL 1.2 grammar names its parts; and two printers:
`to_cql` (valid CQL again) and `to_debug` (a canonical one-line S-expression for golden tests).

`to_debug` forms:
- clause: `(clause INDEX RELATION TERM)` with `-` for a missing index and relation, each
  string double-quoted with `\\` and `"` escaped; relation modifiers follow the relation inside
  the relation's own list when present: `(clause "dc.title" ("=" /relevant) "fish")`
- boolean: `(and LEFT RIGHT)`, modifiers as `(prox/unit=word/distance>3 LEFT RIGHT)`
- prefixes: `(prefix "dc" "info:…" QUERY)` (prefix `-` when it has no name)
- sort: `(sortby QUERY (key "dc.title" /sort.descending) …)`
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Modifier:
    name: str
    comparison: str | None = None
    value: str | None = None


@dataclass(frozen=True)
class Relation:
    base: str
    modifiers: tuple[Modifier, ...] = ()


@dataclass(frozen=True)
class SearchClause:
    index: str | None
    relation: Relation | None
    term: str


@dataclass(frozen=True)
class Boolean:
    op: str
    left: Node
    right: Node
    modifiers: tuple[Modifier, ...] = ()


@dataclass(frozen=True)
class PrefixAssignment:
    prefix: str | None
    uri: str


@dataclass(frozen=True)
class Prefixed:
    prefixes: tuple[PrefixAssignment, ...]
    query: Node


Node = SearchClause | Boolean | Prefixed


@dataclass(frozen=True)
class SortKey:
    index: str
    modifiers: tuple[Modifier, ...] = ()


@dataclass(frozen=True)
class CQLQuery:
    root: Node
    sort_keys: tuple[SortKey, ...] = ()


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _modifiers(modifiers: tuple[Modifier, ...]) -> str:
    parts = []
    for m in modifiers:
        parts.append(f"/{m.name}" + (f"{m.comparison}{m.value}" if m.comparison else ""))
    return "".join(parts)


def to_debug(item: CQLQuery | Node) -> str:
    if isinstance(item, CQLQuery):
        root = to_debug(item.root)
        if not item.sort_keys:
            return root
        keys = " ".join(
            f"(key {_q(k.index)}{(' ' + _modifiers(k.modifiers)) if k.modifiers else ''})"
            for k in item.sort_keys
        )
        return f"(sortby {root} {keys})"
    if isinstance(item, Prefixed):
        inner = to_debug(item.query)
        for p in reversed(item.prefixes):
            inner = f"(prefix {_q(p.prefix) if p.prefix is not None else '-'} {_q(p.uri)} {inner})"
        return inner
    if isinstance(item, Boolean):
        return (
            f"({item.op}{_modifiers(item.modifiers)} {to_debug(item.left)} {to_debug(item.right)})"
        )
    index = _q(item.index) if item.index is not None else "-"
    if item.relation is None:
        relation = "-"
    elif item.relation.modifiers:
        relation = f"({_q(item.relation.base)} {_modifiers(item.relation.modifiers)})"
    else:
        relation = _q(item.relation.base)
    return f"(clause {index} {relation} {_q(item.term)})"


RESERVED = {"and", "or", "not", "prox", "sortby"}
SPECIAL = set(' \t\r\n()=<>/"')


def _term(text: str) -> str:
    """A term as CQL: bare when it can be, else quoted (escapes in `text` are kept)."""
    if text and not any(ch in SPECIAL for ch in text) and text.lower() not in RESERVED:
        return text
    escaped = []
    for ch in text:
        escaped.append('\\"' if ch == '"' else ch)
    return '"' + "".join(escaped) + '"'


def _cql_modifiers(modifiers: tuple[Modifier, ...]) -> str:
    out = []
    for m in modifiers:
        out.append(
            "/" + _term(m.name) + (f"{m.comparison}{_term(m.value or '')}" if m.comparison else "")
        )
    return "".join(out)


def to_cql(item: CQLQuery | Node) -> str:
    if isinstance(item, CQLQuery):
        text = to_cql(item.root)
        if item.sort_keys:
            text += " sortBy " + " ".join(
                _term(k.index) + _cql_modifiers(k.modifiers) for k in item.sort_keys
            )
        return text
    if isinstance(item, Prefixed):
        heads = " ".join(
            f">{_term(p.prefix)}={_term(p.uri)}" if p.prefix is not None else f">{_term(p.uri)}"
            for p in item.prefixes
        )
        return f"({heads} {to_cql(item.query)})"
    if isinstance(item, Boolean):
        return (
            f"({to_cql(item.left)} {item.op}{_cql_modifiers(item.modifiers)} {to_cql(item.right)})"
        )
    term = _term(item.term)
    if item.index is None:
        return term
    relation = (
        item.relation.base + _cql_modifiers(item.relation.modifiers) if item.relation else "="
    )
    return f"{_term(item.index)} {relation} {term}"
