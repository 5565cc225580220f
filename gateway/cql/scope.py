"""The one walk over a CQL tree with its prefix scope: which context set each index names.

CQL prefix assignments (`>dc="info:…"`) scope the subtree under them, and the ones at the top
also scope sortBy. Translation (`to_query`) and the protocol checks (result-set references,
the availability limit) all resolve indexes through these functions, so they agree on what an
index means.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from gateway.cql import ast
from gateway.cql.mapping import DEFAULT_PREFIXES, LOCAL_SET

Scope = Mapping[str, str]  # prefix (lowercased; "" for the unnamed one) → context set URI


def within(scope: Scope, prefixes: tuple[ast.PrefixAssignment, ...]) -> dict[str, str]:
    """The scope inside a `Prefixed` node: its assignments over the enclosing ones."""
    inner = dict(scope)
    for assignment in prefixes:
        inner[(assignment.prefix or "").lower()] = assignment.uri
    return inner


def top(parsed: ast.CQLQuery) -> tuple[dict[str, str], tuple[ast.PrefixAssignment, ...], ast.Node]:
    """The scope at the top of a query (which also scopes its sortBy), the assignments made
    there, and the query under them."""
    root = parsed.root
    if isinstance(root, ast.Prefixed):
        return within(DEFAULT_PREFIXES, root.prefixes), root.prefixes, root.query
    return dict(DEFAULT_PREFIXES), (), root


def resolve(name: str, scope: Scope) -> tuple[str | None, str]:
    """(context set URI, index name lowercased); the URI is None for an unknown prefix.
    An unprefixed index is in the unnamed prefix's set, else libgate's own."""
    if "." in name:
        prefix, local = name.split(".", 1)
        return scope.get(prefix.lower()), local.lower()
    return scope.get("", LOCAL_SET), name.lower()


def clauses(node: ast.Node, scope: Scope) -> Iterator[tuple[ast.SearchClause, Scope]]:
    """Every search clause under `node`, left to right, with the scope it is in."""
    stack: list[tuple[ast.Node, Scope]] = [(node, scope)]
    while stack:
        current, current_scope = stack.pop()
        if isinstance(current, ast.Prefixed):
            stack.append((current.query, within(current_scope, current.prefixes)))
        elif isinstance(current, ast.Boolean):
            stack += [(current.right, current_scope), (current.left, current_scope)]
        else:
            yield current, current_scope
