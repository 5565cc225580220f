"""The query model that CQL (SRU, the CLI) and Bib-1 RPN (Z39.50) both translate into.

A query is a tree of `Term`s joined by `Boolean`s, plus sort keys. Relations:

- `all`: every word of the value (CQL `all`; what `=` means on a keyword index)
- `any`: at least one word
- `adj`: the words as a phrase, adjacent and in order
- `exact`: the whole field (title, author, subject, series headings; exact-value indexes)
- `=` `<>`: equality / inequality (exact-value and numeric indexes; `=` on keywords is `all`)
- `<` `<=` `>` `>=` `within`: on numeric indexes (year); `within` takes "low high"

`truncation="right"` asks for words starting with the value (`abc*`). Problems raise a
`QueryError` subclass with a stable `code`, which SRU and Z39.50 map to their diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RELATIONS = ("all", "any", "adj", "exact", "=", "<>", "<", "<=", ">", ">=", "within")
BOOLEAN_OPS = ("and", "or", "not")
# "record": catalogue order (as stored), no ranking: cheap, and what Zebra returns unsorted.
SORT_KEYS = ("relevance", "title", "author", "date", "record")
MAX_TERM_LENGTH = 256  # characters in one term's value
MAX_WORD_LENGTH = 100  # characters in one normalised word
MAX_DEPTH = 32  # nesting of boolean operators
MAX_TERMS = 64  # terms in one query


class QueryError(Exception):
    """A query we cannot run. `code` is stable for protocol layers; str() is for people."""

    code = "query"

    def __init__(self, message: str, *, index: str | None = None, value: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.value = value


class UnknownIndex(QueryError):
    code = "unknown_index"


class UnsupportedRelation(QueryError):
    code = "unsupported_relation"


class UnsupportedModifier(QueryError):
    code = "unsupported_modifier"


class UnsupportedTruncation(QueryError):
    code = "unsupported_truncation"


class TermTooLong(QueryError):
    code = "term_too_long"


class EmptyTerm(QueryError):
    code = "empty_term"


class InvalidValue(QueryError):
    code = "invalid_value"


class QueryTooComplex(QueryError):
    code = "too_complex"


class UnsupportedSort(QueryError):
    code = "unsupported_sort"


@dataclass(frozen=True)
class Term:
    index: str
    relation: str
    value: str
    truncation: str = "none"  # none | right
    modifiers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Boolean:
    op: str  # and | or | not ("a not b": a and not b)
    left: Node
    right: Node


Node = Term | Boolean


@dataclass(frozen=True)
class SortKey:
    key: str  # relevance | title | author | date | record
    descending: bool = False


@dataclass(frozen=True)
class Query:
    root: Node
    sort: tuple[SortKey, ...] = field(default=())


def depth(node: Node) -> int:
    """Nesting depth, computed without recursion (a hostile tree cannot overflow the stack)."""
    deepest = 0
    stack: list[tuple[Node, int]] = [(node, 0)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(current, Boolean):
            stack.append((current.left, level + 1))
            stack.append((current.right, level + 1))
    return deepest


def terms(node: Node) -> list[Term]:
    found: list[Term] = []
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Term):
            found.append(current)
        else:
            stack.append(current.right)
            stack.append(current.left)
    return found
