"""The query model as an origin sends it: to Bib-1 RPN for Z39.50 targets and to CQL text for
SRU targets, each read back by our own target's translator (z3950/rpn.py, gateway/cql) into the
query it came from, through the wire codec for RPN."""

from __future__ import annotations

import pytest

from gateway.catalogue.query import (
    Boolean,
    InvalidValue,
    Node,
    Query,
    SortKey,
    Term,
    UnknownIndex,
    UnsupportedRelation,
)
from gateway.cql.mapping import DEFAULT_PREFIXES, INDEX_MAP, SORT_MAP
from gateway.cql.to_query import cql_to_query
from gateway.cql.writing import CQL_INDEXES, SORT_INDEXES, query_to_cql, quote
from gateway.z3950_codec import oids
from gateway.z3950_codec.from_query import query_to_rpn
from gateway.z3950_codec.messages import AttributesPlusTerm, RpnOperation, SearchRequest
from gateway.z3950_codec.origin import encode_request
from z3950 import codec, rpn


def utf8(data: bytes) -> str:
    return data.decode("utf-8")


# Terms each translator reads back as they were: every index kind and the relations a target
# can say, CJK, truncation, and the booleans nested both ways.
ROUND_TRIPS: list[Node] = [
    Term("title", "all", "猫的历史"),
    Term("title", "all", "history of cats"),
    Term("title", "all", "histor", "right"),
    Term("author", "adj", "鲁迅"),
    Term("subject", "any", "文学 历史"),
    Term("title", "exact", "吾輩は猫である"),
    Term("series", "exact", "中国 文库"),
    Term("publisher", "all", "人民文学出版社"),
    Term("any", "all", "猫"),
    Term("isbn", "=", "978-7-02-000220-7"),
    Term("isbn", "<>", "9787020002207"),
    Term("issn", "=", "0254-4164"),
    Term("language", "=", "chi"),
    Term("clc", "=", "I210", "right"),
    Term("id", "=", "DEMO-0001"),
    Term("year", "=", "2005"),
    Term("year", "<", "2005"),
    Term("year", "<=", "2005"),
    Term("year", ">", "1905"),
    Term("year", ">=", "1905"),
    Term("year", "<>", "1905"),
]
BOOLEANS: list[Node] = [
    Boolean("and", Term("title", "all", "猫"), Term("author", "all", "夏目漱石")),
    Boolean(
        "or",
        Boolean("not", Term("title", "all", "cat"), Term("year", "<", "1900")),
        Boolean("and", Term("subject", "any", "猫 犬"), Term("isbn", "=", "7-02-000220-X")),
    ),
]


def through_rpn(query: Query, encoding: str = "utf-8") -> Query:
    """`query` → RPN → a SearchRequest APDU → our target's codec and translator → a query."""
    request = SearchRequest(
        small_set_upper_bound=0,
        large_set_lower_bound=1,
        medium_set_present_number=0,
        replace_indicator=True,
        result_set_name="default",
        database_names=("main",),
        query=query_to_rpn(query, encoding=encoding),
    )
    read = codec.decode(encode_request(request))
    assert isinstance(read, SearchRequest)
    return rpn.translate(read.query, lambda data: data.decode(encoding))


@pytest.mark.parametrize("node", ROUND_TRIPS + BOOLEANS, ids=repr)
def test_rpn_reads_back_as_the_same_query(node: Node) -> None:
    assert through_rpn(Query(node)) == Query(node)


@pytest.mark.parametrize("node", ROUND_TRIPS + BOOLEANS, ids=repr)
def test_cql_reads_back_as_the_same_query(node: Node) -> None:
    assert cql_to_query(query_to_cql(Query(node))) == Query(node)


def test_rpn_sends_all_six_attribute_types_as_yaz_ccl_does() -> None:
    phrase = query_to_rpn(Query(Term("author", "adj", "鲁迅"))).root
    assert isinstance(phrase, AttributesPlusTerm)
    assert [(a.type, a.value) for a in phrase.attributes] == [
        (1, 1003),
        (2, 3),
        (3, 3),
        (4, 1),
        (5, 100),
        (6, 1),
    ]
    assert phrase.term == "鲁迅".encode()
    words = query_to_rpn(Query(Term("title", "all", "history cats", "right"))).root
    assert isinstance(words, AttributesPlusTerm)
    assert [(a.type, a.value) for a in words.attributes][3:5] == [(4, 6), (5, 1)]
    heading = query_to_rpn(Query(Term("title", "exact", "猫"))).root
    assert isinstance(heading, AttributesPlusTerm)
    assert [(a.type, a.value) for a in heading.attributes][2:] == [(3, 1), (4, 1), (5, 100), (6, 3)]
    assert query_to_rpn(Query(Term("title", "all", "猫"))).attribute_set == oids.BIB1


def test_equals_on_a_word_index_reads_back_as_all_words() -> None:
    # "=" on a keyword index means "all words" (the server's choice) on both sides.
    assert through_rpn(Query(Term("title", "=", "猫 历史"))) == Query(
        Term("title", "all", "猫 历史")
    )


def test_within_is_sent_as_two_comparisons() -> None:
    query = Query(Term("year", "within", "1990 2000"))
    assert through_rpn(query) == Query(
        Boolean("and", Term("year", ">=", "1990"), Term("year", "<=", "2000"))
    )
    assert cql_to_query(query_to_cql(query)) == query


def test_terms_in_gbk_for_a_legacy_target() -> None:
    query = Query(Term("title", "all", "猫的历史"))
    term = query_to_rpn(query, encoding="gbk").root
    assert isinstance(term, AttributesPlusTerm)
    assert term.term == "猫的历史".encode("gbk")
    assert through_rpn(query, encoding="gbk") == query


def test_a_term_the_targets_charset_cannot_hold_is_refused() -> None:
    with pytest.raises(InvalidValue):
        query_to_rpn(Query(Term("title", "all", "吾輩は猫である 🐈")), encoding="gbk")


def test_what_rpn_cannot_say_is_refused_before_sending() -> None:
    with pytest.raises(UnknownIndex):
        query_to_rpn(Query(Term("allrecords", "=", "1")))
    with pytest.raises(UnsupportedRelation):
        query_to_rpn(Query(Term("title", "<", "m")))


def test_deep_queries_translate_without_recursion() -> None:
    node: Term | Boolean = Term("title", "all", "w0")
    for number in range(1, 3000):
        node = Boolean("or", node, Term("title", "all", f"w{number}"))
    root = query_to_rpn(Query(node)).root
    assert isinstance(root, RpnOperation) and root.operator == "or"
    assert query_to_cql(Query(node)).count(" or ") == 2999


@pytest.mark.parametrize(
    "value",
    ['say "hello"', "a*b?c^d\\e", "and", "sortBy", "猫 and 狗", "(x) = y", "full　width"],
)
def test_cql_quotes_and_escapes_every_special_character(value: str) -> None:
    query = Query(Term("title", "adj", value))
    assert cql_to_query(query_to_cql(query)) == query


def test_cql_writes_right_truncation_and_modifiers() -> None:
    assert query_to_cql(Query(Term("title", "all", "histor", "right"))) == 'dc.title all "histor*"'
    assert (
        query_to_cql(Query(Term("title", "all", "猫", modifiers=("relevant",))))
        == 'dc.title all/relevant "猫"'
    )
    assert quote("a*") == '"a\\*"'


def test_cql_exact_relation_by_version_and_sort_keys() -> None:
    query = Query(Term("title", "exact", "猫"), (SortKey("date", descending=True),))
    assert query_to_cql(query, cql_version="1.1") == 'dc.title exact "猫"'
    written = query_to_cql(query, cql_version="2.0")
    assert written == 'dc.title == "猫" sortBy dc.date/sort.descending'
    assert cql_to_query(written) == query


def test_every_written_index_is_one_our_explain_publishes() -> None:
    for ours, written in CQL_INDEXES.items():
        prefix, name = written.split(".")
        assert INDEX_MAP[(DEFAULT_PREFIXES[prefix], name.lower())] == ours
    for ours, written in SORT_INDEXES.items():
        prefix, name = written.split(".")
        assert SORT_MAP[(DEFAULT_PREFIXES[prefix], name.lower())] == ours
