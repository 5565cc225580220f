"""CQL 1.2 parser: text → `ast.CQLQuery`, by recursive descent over the grammar

    cqlQuery    ::= prefixAssignment cqlQuery | scopedClause
    scopedClause::= scopedClause booleanGroup searchClause | searchClause
    booleanGroup::= boolean [modifierList]          boolean ::= and | or | not | prox
    searchClause::= '(' cqlQuery ')' | index relation searchTerm | searchTerm
    relation    ::= comparitor [modifierList]       modifier ::= '/' name [symbol value]
    sortedQuery ::= cqlQuery [sortby singleSpec+]   singleSpec ::= index [modifierList]

Booleans are left-associative with equal precedence. `and`, `or`, `not`, `prox` and `sortby`
are reserved only where an operator may stand; elsewhere, quoted or not, they are terms
(the 1.2 grammar's `term ::= identifier | 'and' | 'or' | 'not' | 'prox' | 'sortby'`), so
`sortby sortby sortby` is the term "sortby" sorted by the index "sortby". Every input ends in a
query or a `CQLSyntaxError`: length and nesting are bounded before they can hurt.
"""

from __future__ import annotations

from gateway.cql import ast
from gateway.cql.lexer import CQLSyntaxError, Token, tokenize

BOOLEANS = ("and", "or", "not", "prox")
COMPARISON_SYMBOLS = ("=", "==", "<>", "<", ">", "<=", ">=")

__all__ = ["CQLSyntaxError", "parse"]


class _Parser:
    def __init__(self, tokens: list[Token], max_depth: int) -> None:
        self.tokens = tokens
        self.at = 0
        self.max_depth = max_depth

    @property
    def token(self) -> Token:
        return self.tokens[self.at]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.at + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.at]
        if token.kind != "end":
            self.at += 1
        return token

    def is_symbol(self, *symbols: str, token: Token | None = None) -> bool:
        token = token or self.token
        return token.kind == "symbol" and token.text in symbols

    def is_word(self, *words: str, token: Token | None = None) -> bool:
        token = token or self.token
        return token.kind == "word" and token.text.lower() in words

    def fail(self, message: str, token: Token | None = None) -> CQLSyntaxError:
        token = token or self.token
        return CQLSyntaxError(message, token.position)

    # --- grammar ---------------------------------------------------------------------------

    def sorted_query(self) -> ast.CQLQuery:
        root = self.cql_query(0)
        sort_keys: list[ast.SortKey] = []
        if self.is_word("sortby"):
            self.advance()
            while self.token.kind in ("word", "string"):
                index = self.advance().text
                sort_keys.append(ast.SortKey(index, self.modifiers()))
            if not sort_keys:
                raise self.fail("expected an index after sortBy")
        if self.token.kind != "end":
            raise self.fail(f"unexpected {self.token.text!r}")
        return ast.CQLQuery(root, tuple(sort_keys))

    def cql_query(self, depth: int) -> ast.Node:
        if depth > self.max_depth:
            raise CQLSyntaxError(
                f"the query nests more than {self.max_depth} levels",
                self.token.position,
                "too_deep",
            )
        prefixes: list[ast.PrefixAssignment] = []
        while self.is_symbol(">"):
            prefixes.append(self.prefix_assignment())
        query = self.scoped_clause(depth)
        return ast.Prefixed(tuple(prefixes), query) if prefixes else query

    def prefix_assignment(self) -> ast.PrefixAssignment:
        self.advance()  # >
        first = self.token
        if first.kind not in ("word", "string"):
            raise self.fail("expected a context set name or URI after '>'")
        self.advance()
        if self.is_symbol("="):
            self.advance()
            if self.token.kind not in ("word", "string"):
                raise self.fail("expected a context set URI after '='")
            return ast.PrefixAssignment(first.text, self.advance().text)
        return ast.PrefixAssignment(None, first.text)

    def scoped_clause(self, depth: int) -> ast.Node:
        node = self.search_clause(depth)
        height = _height(node)
        while self.token.kind == "word" and self.token.text.lower() in BOOLEANS:
            op = self.advance().text.lower()
            modifiers = self.modifiers()
            right = self.search_clause(depth)
            height = max(height, _height(right)) + 1
            if depth + height > self.max_depth:
                raise CQLSyntaxError(
                    f"the query nests more than {self.max_depth} levels",
                    self.token.position,
                    "too_deep",
                )
            node = ast.Boolean(op, node, right, modifiers)
        return node

    def search_clause(self, depth: int) -> ast.Node:
        token = self.token
        if self.is_symbol("("):
            self.advance()
            inner = self.cql_query(depth + 1)
            if not self.is_symbol(")"):
                raise self.fail("expected ')'")
            self.advance()
            return inner
        if token.kind not in ("word", "string"):
            raise self.fail(
                "expected a search term" if token.kind == "end" else f"unexpected {token.text!r}"
            )
        following = self.peek()
        relation_follows = (
            following.kind == "symbol" and following.text in COMPARISON_SYMBOLS
        ) or (
            following.kind == "word"
            and following.text.lower() not in (*BOOLEANS, "sortby")
            and self.peek(2).kind in ("word", "string", "symbol")
            and not self.is_symbol(")", token=self.peek(2))
            and (self.peek(2).kind != "symbol" or self.peek(2).text == "/")
        )
        if not relation_follows:
            self.advance()
            return ast.SearchClause(None, None, token.text)
        index = self.advance().text
        base = self.advance().text
        relation = ast.Relation(
            base if base in COMPARISON_SYMBOLS else base.lower(), self.modifiers()
        )
        term = self.token
        if term.kind not in ("word", "string"):
            raise self.fail(f"expected a term after relation {base!r}")
        self.advance()
        return ast.SearchClause(index, relation, term.text)

    def modifiers(self) -> tuple[ast.Modifier, ...]:
        found: list[ast.Modifier] = []
        while self.is_symbol("/"):
            self.advance()
            name = self.token
            if name.kind not in ("word", "string"):
                raise self.fail("expected a modifier name after '/'")
            self.advance()
            if self.token.kind == "symbol" and self.token.text in COMPARISON_SYMBOLS:
                comparison = self.advance().text
                value = self.token
                if value.kind not in ("word", "string"):
                    raise self.fail(f"expected a value after modifier {name.text}{comparison}")
                self.advance()
                found.append(ast.Modifier(name.text, comparison, value.text))
            else:
                found.append(ast.Modifier(name.text))
        return tuple(found)


def _height(node: ast.Node) -> int:
    if isinstance(node, ast.Boolean):
        return 1 + max(_height(node.left), _height(node.right))
    if isinstance(node, ast.Prefixed):
        return 1 + _height(node.query)
    return 0


def parse(text: str, *, max_length: int = 8192, max_depth: int = 64) -> ast.CQLQuery:
    """Parse CQL text; raises CQLSyntaxError (kind syntax, too_long or too_deep)."""
    if len(text) > max_length:
        raise CQLSyntaxError(
            f"the query is {len(text)} characters; at most {max_length}", max_length, "too_long"
        )
    if not text.strip():
        raise CQLSyntaxError("the query is empty", 0)
    return _Parser(tokenize(text), max_depth).sorted_query()
