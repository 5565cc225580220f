"""A Type-1 query written back as PQF (YAZ's prefix notation) for the access log: what a
partner asked, in the form a librarian can paste into yaz-client to ask it again.

Never raises: a query the translator refuses (diagnostic 114, 121, …) is logged too, and its
line must say what was asked."""

from __future__ import annotations

import json

from gateway.z3950_codec import oids
from gateway.z3950_codec.messages import (
    AttributesPlusTerm,
    OtherQuery,
    RestrictionOperand,
    ResultSetOperand,
    RpnNode,
    RpnOperation,
    RpnQuery,
)
from z3950.diagnostics import Z3950Error
from z3950.rpn import TermDecoder

OPERATORS = {"and": "@and", "or": "@or", "and-not": "@not", "prox": "@prox"}


def pqf(query: RpnQuery | OtherQuery, decode: TermDecoder) -> str:
    if isinstance(query, OtherQuery):
        return f"(query type {query.query_type})"
    prefix = "" if query.attribute_set == oids.BIB1 else f"@attrset {query.attribute_set} "
    return prefix + _node(query.root, decode)


def term_pqf(term: AttributesPlusTerm, decode: TermDecoder) -> str:
    """A Scan request's start term, as its attributes and term."""
    return _node(term, decode)


def _node(node: RpnNode, decode: TermDecoder) -> str:
    if isinstance(node, RpnOperation):
        operator = OPERATORS.get(node.operator, f"@{node.operator}")
        return f"{operator} {_node(node.left, decode)} {_node(node.right, decode)}"
    if isinstance(node, ResultSetOperand):
        return f"@set {_quoted(node.name)}"
    if isinstance(node, RestrictionOperand):
        return f"(restriction {_quoted(node.name)})"
    attributes = "".join(
        f"@attr {a.attribute_set + ' ' if a.attribute_set else ''}{a.type}="
        f"{a.value if not a.complex else '(complex)'} "
        for a in node.attributes
    )
    return attributes + _quoted(_term(node, decode))


def _term(node: AttributesPlusTerm, decode: TermDecoder) -> str:
    if isinstance(node.term, bytes):
        try:
            return decode(node.term)
        except (Z3950Error, UnicodeDecodeError, ValueError):  # not in the negotiated charset
            return node.term.decode("utf-8", "replace")
    return str(node.term)


def _quoted(text: str) -> str:
    if text and not any(c.isspace() or c in '"@\\' for c in text):
        return text
    return json.dumps(text, ensure_ascii=False)
