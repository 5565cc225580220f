"""Query model → one Tantivy query, and how its hits are ordered; validation first.

Every term becomes a Tantivy query over the index of `textindex` (never a parsed query
string: nothing a user types is syntax); booleans become boolean queries (AND: must, OR:
should, NOT: must not); the database is a term every hit must match. Keyword words are our
normaliser's tokens: a CJK word is the phrase of its bigram chain (positions), right
truncation is a regular expression over the term dictionary (no expansion limit); exact values
are terms, prefixes of them the terms the dictionary lists; years are ranges over the `year`
fast field; a copy barcode is looked up in the store (copies change without their record) and
becomes a set of primary keys. Only positive keyword terms score (BM25, title weighted 10,
author 5, subject 3, series 2, publisher 1); every other part scores nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import tantivy

from gateway.catalogue.indexes import (
    ALL,
    EXACT,
    INDEXES,
    INITIALS_FIELD,
    KEYWORD,
    NUMERIC,
    PINYIN_FIELDS,
    READING_FIELDS,
)
from gateway.catalogue.normalise import is_cjk, normalise, sort_key, words
from gateway.catalogue.query import (
    MAX_DEPTH,
    MAX_TERM_LENGTH,
    MAX_TERMS,
    MAX_WORD_LENGTH,
    RELATIONS,
    SORT_KEYS,
    Boolean,
    EmptyTerm,
    InvalidValue,
    Node,
    Query,
    QueryTooComplex,
    SortKey,
    Term,
    TermTooLong,
    UnknownIndex,
    UnsupportedModifier,
    UnsupportedRelation,
    UnsupportedSort,
    UnsupportedTruncation,
    depth,
    terms,
)
from gateway.catalogue.textindex import SCHEMA
from gateway.catalogue.word_forms import (
    INITIALS_INDEXES,
    WordForms,
    keyword_fields,
    pinyin_fields,
    pinyin_runs,
    reading_fields,
    run_forms,
    word_forms,
)
from marc.identifiers import normalise_isbn, normalise_isrc, normalise_issn
from marc.text import close_cjk_word_gaps

SUPPORTED_MODIFIERS = frozenset({"relevant", "word", "string"})
KEYWORD_RELATIONS = frozenset({"all", "any", "adj", "exact", "="})
HEADING_INDEXES = frozenset({"title", "author", "subject", "series"})
EXACT_RELATIONS = frozenset({"=", "exact", "<>", "any", "all"})
NUMERIC_RELATIONS = frozenset({"=", "exact", "<>", "<", "<=", ">", ">=", "within"})
ALL_RELATIONS = frozenset({"=", "exact", "any", "all", "adj"})  # cql.allRecords = 1


def validate(query: Query) -> None:
    """Raise the QueryError that fits, before any SQL is built."""
    if depth(query.root) > MAX_DEPTH:
        raise QueryTooComplex(f"the query nests more than {MAX_DEPTH} levels deep")
    found = terms(query.root)
    if len(found) > MAX_TERMS:
        raise QueryTooComplex(f"the query has {len(found)} terms; at most {MAX_TERMS} are allowed")
    for term in found:
        _check_term(term)
    for key in query.sort:
        if key.key not in SORT_KEYS:
            raise UnsupportedSort(f"cannot sort by {key.key!r}; sort keys: {', '.join(SORT_KEYS)}")


def _check_term(term: Term) -> None:
    spec = INDEXES.get(term.index)
    if spec is None:
        raise UnknownIndex(f"unknown index {term.index!r}", index=term.index)
    if term.relation not in RELATIONS:
        raise UnsupportedRelation(f"unknown relation {term.relation!r}", index=term.index)
    for modifier in term.modifiers:
        if modifier not in SUPPORTED_MODIFIERS:
            raise UnsupportedModifier(
                f"relation modifier {modifier!r} is not supported", index=term.index
            )
    if len(term.value) > MAX_TERM_LENGTH:
        raise TermTooLong(
            f"the term is {len(term.value)} characters; at most {MAX_TERM_LENGTH}",
            index=term.index,
            value=term.value[:40],
        )
    if term.truncation not in ("none", "right"):
        raise UnsupportedTruncation(
            f"{term.truncation} truncation is not supported", index=term.index
        )
    allowed = {
        KEYWORD: KEYWORD_RELATIONS,
        EXACT: EXACT_RELATIONS,
        NUMERIC: NUMERIC_RELATIONS,
        ALL: ALL_RELATIONS,
    }[spec.kind]
    if term.relation not in allowed:
        raise UnsupportedRelation(
            f"relation {term.relation!r} cannot be used with index {term.index!r}", index=term.index
        )
    if spec.kind == KEYWORD and term.relation == "exact" and term.index not in HEADING_INDEXES:
        raise UnsupportedRelation(
            f"exact matching works on title, author, subject and series, not {term.index!r}",
            index=term.index,
        )
    if spec.kind == NUMERIC and term.truncation != "none":
        raise UnsupportedTruncation("truncation does not apply to years", index=term.index)
    if spec.kind == KEYWORD:
        found = words(term.value)
        if not found:
            raise EmptyTerm(f"the term {term.value!r} has no words to search for", index=term.index)
        for word in found:
            if len(word) > MAX_WORD_LENGTH:
                raise TermTooLong(
                    f"a word of {len(word)} characters is too long to search for",
                    index=term.index,
                    value=word[:40],
                )
    elif spec.kind != ALL and not term.value.strip():
        raise EmptyTerm("the term is empty", index=term.index)


# Ranking: native script above pinyin and readings, title above author above subject; the
# known-item bonuses (all words as one phrase; the whole value as the whole title or name).
FIELD_WEIGHTS = {
    "title": 10.0,
    "author": 5.0,
    "subject": 3.0,
    "series": 2.0,
    "publisher": 1.0,
    PINYIN_FIELDS["title"]: 3.0,
    PINYIN_FIELDS["author"]: 2.0,
    PINYIN_FIELDS["subject"]: 1.0,
    READING_FIELDS["title"]: 3.0,
    READING_FIELDS["author"]: 2.0,
    INITIALS_FIELD: 3.0,
}
PHRASE_BONUS = 1.0  # the phrase scores again, as much as its words did
PHRASE_SLOP = 3  # tokens allowed between the words of the bonus phrase
EXACT_BONUS = 40.0  # a constant score: the value is the whole title (or name)
EXACT_BONUS_HEADINGS = {"any": ("title", "author"), "title": ("title",), "author": ("author",)}
Occur = tantivy.Occur
Q = tantivy.Query
BarcodeLookup = Callable[[str, bool], list[int]]  # (barcode, prefix) → record primary keys
REGEX_SPECIAL = frozenset("\\.+*?()|[]{}^$#&-~\"'<>@=!%/:;,`")


@dataclass(frozen=True)
class Order:
    """How hits are ordered: by score, by one fast field, or (several keys) by the store."""

    kind: str  # score | field | keys
    field: str = ""
    descending: bool = False
    keys: tuple[SortKey, ...] = ()


@dataclass(frozen=True)
class TantivyPlan:
    query: tantivy.Query
    order: Order


def _quiet(query: tantivy.Query) -> tantivy.Query:
    """The same matches, scoring nothing (only keyword terms rank)."""
    return Q.const_score_query(query, 0.0)


def _regex_literal(token: str) -> str:
    return "".join("\\" + ch if ch in REGEX_SPECIAL else ch for ch in token)


def _either(parts: list[tantivy.Query]) -> tantivy.Query:
    if len(parts) == 1:
        return parts[0]
    return Q.boolean_query([(Occur.Should, p) for p in parts])


def _phrase_chain(found: list[str]) -> list[str]:
    """The tokens of words read as one phrase. CJK text has no spaces, so CJK words typed
    apart (`中国 发展`, or an LC title's `鲁 迅`) are one run (中国发展), as they stand in the
    text and in the index (MARC21 word spaces are closed there: `indexes.searched_form`)."""
    joined: list[str] = []
    for word in found:
        if joined and is_cjk(word) and is_cjk(joined[-1]):
            joined[-1] += word
        else:
            joined.append(word)
    return [token for word in joined for token in _chain(word)]


def _heading_keys(value: str) -> list[str]:
    """The heading keys a whole value is compared with: as typed, and with its CJK word gaps
    closed (`鲁 迅 与 浙东 文化` copied from an LC record is the heading 鲁迅与浙东文化, as
    MARC21 records are indexed: `indexes.searched_form`)."""
    return list(dict.fromkeys([sort_key(value), sort_key(close_cjk_word_gaps(value))]))


def _heading_query(index: str, value: str) -> tantivy.Query:
    keys = _heading_keys(value)
    if len(keys) == 1:
        return Q.term_query(SCHEMA, "h_" + index, keys[0])
    return Q.term_set_query(SCHEMA, "h_" + index, keys)


def _chain(word: str) -> list[str]:
    if is_cjk(word) and len(word) > 1:
        return [word[i : i + 2] for i in range(len(word) - 1)]
    return [word]


class _Builder:
    def __init__(self, database: str, searcher: tantivy.Searcher, barcodes: BarcodeLookup):
        self.database = database
        self.searcher = searcher
        self.barcodes = barcodes

    # --- keyword terms ------------------------------------------------------------------

    @staticmethod
    def _phrase(field: str, chain: list[str], prefix: bool, slop: int = 0) -> tantivy.Query:
        if len(chain) == 1:
            if prefix:
                return Q.regex_query(SCHEMA, field, _regex_literal(chain[0]) + ".*")
            return Q.term_query(SCHEMA, field, chain[0])
        if prefix:
            patterns: list[str | tuple[int, str]] = [_regex_literal(t) for t in chain[:-1]]
            patterns.append(_regex_literal(chain[-1]) + ".*")
            return Q.regex_phrase_query(SCHEMA, field, patterns)
        return Q.phrase_query(SCHEMA, field, list[str | tuple[int, str]](chain), slop)

    def _in_fields(
        self, fields: tuple[str, ...], chain: list[str], prefix: bool, slop: int = 0
    ) -> tantivy.Query:
        parts = [
            Q.boost_query(self._phrase(f, chain, prefix, slop), FIELD_WEIGHTS[f]) for f in fields
        ]
        return _either(parts)

    def _alternatives(self, index: str, forms: WordForms) -> list[tantivy.Query]:
        """The word as pinyin, as pinyin initials, or as a kana reading, where it can be."""
        found = []
        for syllables in forms.pinyin:
            found.append(self._in_fields(pinyin_fields(index), list(syllables), False))
        if forms.initials and index in INITIALS_INDEXES:
            found.append(
                Q.boost_query(
                    Q.term_query(SCHEMA, INITIALS_FIELD, forms.initials),
                    FIELD_WEIGHTS[INITIALS_FIELD],
                )
            )
        if forms.reading:
            found.append(self._in_fields(reading_fields(index), forms.reading, False))
        return found

    def _known_item_bonus(self, term: Term, words_found: list[str]) -> list[tantivy.Query]:
        """Scores for the signs of a known item: the words close together in order (a phrase,
        with a few words between allowed: `1999 中国发展` in 1999 年中国发展…), and the whole
        value as the whole title or name (they only rank; matching is decided elsewhere)."""
        bonus = []
        if len(words_found) > 1:
            chain = _phrase_chain(words_found)
            bonus.append(
                Q.boost_query(
                    self._in_fields(keyword_fields(term.index), chain, False, PHRASE_SLOP),
                    PHRASE_BONUS,
                )
            )
        for heading in EXACT_BONUS_HEADINGS.get(term.index, ()):
            bonus.append(Q.const_score_query(_heading_query(heading, term.value), EXACT_BONUS))
        return bonus

    def keyword(self, term: Term) -> tantivy.Query:
        if term.relation == "exact":
            return _quiet(_heading_query(term.index, term.value))
        found = words(term.value)
        prefix = term.truncation == "right"
        fields = keyword_fields(term.index)
        if term.relation == "adj":
            chain = _phrase_chain(found)
            phrases = [self._in_fields(fields, chain, prefix)]
            run = run_forms(found) if not prefix else None
            if run is not None:
                phrases.extend(self._alternatives(term.index, run))
            return _either(phrases)
        parts = []
        for i, word in enumerate(found):
            word_prefix = prefix and i == len(found) - 1
            if is_cjk(word):
                word_prefix = word_prefix and len(word) == 1  # a CJK word matches inside text
            native = self._in_fields(fields, _chain(word), word_prefix)
            alternatives = [] if word_prefix else self._alternatives(term.index, word_forms(word))
            parts.append(_either([native, *alternatives]))
        if term.relation != "any" and not prefix:
            # "ming dai", "红楼梦 cao xueqin": consecutive syllables also read together
            for start, end, run in reversed(pinyin_runs(found)):
                together = Q.boolean_query([(Occur.Must, p) for p in parts[start:end]])
                parts[start:end] = [_either([together, *self._alternatives(term.index, run)])]
        occur = Occur.Should if term.relation == "any" else Occur.Must
        matches = parts[0] if len(parts) == 1 else Q.boolean_query([(occur, p) for p in parts])
        bonus = [] if prefix else self._known_item_bonus(term, found)
        if not bonus:
            return matches
        return Q.boolean_query([(Occur.Must, matches), *((Occur.Should, b) for b in bonus)])

    # --- exact-value and numeric terms -------------------------------------------------

    def _terms(self, field: str, value: str, prefix: bool) -> tantivy.Query:
        if not prefix:
            return Q.term_query(SCHEMA, field, value)
        found = [t for t, _ in self.searcher.terms_with_prefix(field, value)]
        return Q.term_set_query(SCHEMA, field, found) if found else Q.empty_query()

    def _exact_value(self, term: Term, value: str) -> tantivy.Query:
        prefix = term.truncation == "right"
        index = term.index
        if index in ("isbn", "issn", "isrc"):
            return self._terms(index, _identifier_key(index, value, prefix), prefix)
        if index == "id":
            return self._terms("rid", value, prefix)
        if index == "barcode":
            pks = self.barcodes(value, prefix)
            return Q.term_set_query(SCHEMA, "pk", pks) if pks else Q.empty_query()
        return self._terms(index, normalise(value), prefix)

    def exact(self, term: Term) -> tantivy.Query:
        values = term.value.split() if term.relation in ("any", "all") else [term.value.strip()]
        parts = [self._exact_value(term, v) for v in values]
        if len(parts) == 1:
            combined = parts[0]
        else:
            occur = Occur.Should if term.relation == "any" else Occur.Must
            combined = Q.boolean_query([(occur, p) for p in parts])
        if term.relation == "<>":
            return _quiet(Q.boolean_query([(Occur.Must, Q.all_query()), (Occur.MustNot, combined)]))
        return _quiet(combined)

    def numeric(self, term: Term) -> tantivy.Query:
        def years(
            low: int | None, high: int | None, lower: bool = True, upper: bool = True
        ) -> tantivy.Query:
            return Q.range_query(
                SCHEMA,
                "year",
                tantivy.FieldType.Integer,
                low,
                high,
                include_lower=lower,
                include_upper=upper,
            )

        if term.relation == "within":
            bounds = term.value.replace("-", " ").split()
            if len(bounds) != 2:
                raise InvalidValue(
                    f"'within' needs two years, e.g. \"1990 2000\", not {term.value!r}",
                    index=term.index,
                )
            low, high = sorted(_year(b, term) for b in bounds)
            return _quiet(years(low, high))
        year = _year(term.value, term)
        relation = term.relation
        if relation in ("=", "exact"):
            return _quiet(years(year, year))
        if relation == "<>":
            return _quiet(
                Q.boolean_query([(Occur.Must, Q.all_query()), (Occur.MustNot, years(year, year))])
            )
        if relation == "<":
            return _quiet(years(None, year, upper=False))
        if relation == "<=":
            return _quiet(years(None, year))
        if relation == ">":
            return _quiet(years(year, None, lower=False))
        return _quiet(years(year, None))

    # --- the tree ------------------------------------------------------------------------

    def node(self, node: Node) -> tantivy.Query:
        if isinstance(node, Term):
            kind = INDEXES[node.index].kind
            if kind == KEYWORD:
                return self.keyword(node)
            if kind == EXACT:
                return self.exact(node)
            if kind == ALL:
                return _quiet(Q.all_query())
            return self.numeric(node)
        left = self.node(node.left)
        right = self.node(node.right)
        if node.op == "and":
            return Q.boolean_query([(Occur.Must, left), (Occur.Must, right)])
        if node.op == "or":
            return Q.boolean_query([(Occur.Should, left), (Occur.Should, right)])
        return Q.boolean_query([(Occur.Must, left), (Occur.MustNot, right)])


def _year(text: str, term: Term) -> int:
    text = text.strip()
    if not text.isdigit() or len(text) > 4:
        raise InvalidValue(f"{text!r} is not a year", index=term.index, value=text)
    return int(text)


def _identifier_key(index: str, value: str, prefix: bool) -> str:
    if prefix:
        return value.replace("-", "").replace(" ", "").upper()
    normaliser = {"isbn": normalise_isbn, "issn": normalise_issn, "isrc": normalise_isrc}[index]
    return normaliser(value) or value.replace("-", "").strip().upper()


def _has_positive_keyword(node: Node, negated: bool = False) -> bool:
    if isinstance(node, Term):
        kind = INDEXES[node.index].kind
        return kind == KEYWORD and not negated and node.relation != "exact"
    right_negated = negated if node.op != "not" else True
    return _has_positive_keyword(node.left, negated) or _has_positive_keyword(
        node.right, right_negated
    )


CONTROL_CHARACTERS = dict.fromkeys(range(0x20))


def without_controls(node: Node) -> Node:
    """Control characters are never part of a search."""
    if isinstance(node, Term):
        cleaned = node.value.translate(CONTROL_CHARACTERS)
        return node if cleaned == node.value else replace(node, value=cleaned)
    return Boolean(node.op, without_controls(node.left), without_controls(node.right))


SINGLE_KEY_FIELDS = {
    ("title", False): ("s_title", False),
    ("title", True): ("s_title_r", True),
    ("author", False): ("s_author", False),
    ("author", True): ("s_author_r", True),
    ("date", False): ("s_date", False),
    ("date", True): ("s_date_r", False),
    ("record", False): ("pk", False),
    ("record", True): ("pk", True),
}


def order_of(query: Query) -> Order:
    """Relevance ranks only when the query has a positive keyword term (otherwise it is
    dropped, as before); ties and the end of every order are catalogue order (`pk`)."""
    scored = _has_positive_keyword(query.root)
    keys = tuple(
        k for k in (query.sort or (SortKey("relevance"),)) if k.key != "relevance" or scored
    )
    if not keys:
        return Order("field", "pk")
    if len(keys) == 1:
        key = keys[0]
        if key.key == "relevance":
            return Order("score")
        field, descending = SINGLE_KEY_FIELDS[(key.key, key.descending)]
        return Order("field", field, descending)
    return Order("keys", keys=keys)


def plan(
    query: Query, database: str, searcher: tantivy.Searcher, barcodes: BarcodeLookup
) -> TantivyPlan:
    """The query as one Tantivy query limited to `database`, and the order of its hits. The
    caller validates first (`planner.validate`)."""
    if depth(query.root) > MAX_DEPTH:
        raise QueryTooComplex(f"the query nests more than {MAX_DEPTH} levels deep")
    tree = _Builder(database, searcher, barcodes).node(query.root)
    limited = Q.boolean_query(
        [(Occur.Must, _quiet(Q.term_query(SCHEMA, "db", database))), (Occur.Must, tree)]
    )
    return TantivyPlan(limited, order_of(query))
