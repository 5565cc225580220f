"""The CQL 1.2 parser against golden corpora of query → parse and malformed query → error."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.cql.ast import to_cql, to_debug
from gateway.cql.parser import CQLSyntaxError, parse
from tests.conftest import FIXTURES

CORPUS = FIXTURES / "cql"


def rows(path: Path) -> list[tuple[str, str]]:
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        query, expected = line.split("\t")
        found.append((query, expected))
    return found


@pytest.mark.parametrize(("query", "expected"), rows(CORPUS / "golden.tsv"))
def test_golden_parse(query: str, expected: str) -> None:
    parsed = parse(query)
    assert to_debug(parsed) == expected
    assert to_debug(parse(to_cql(parsed))) == expected  # printing gives the same query back


@pytest.mark.parametrize(("query", "kind"), rows(CORPUS / "errors.tsv"))
def test_malformed_queries_give_a_typed_error(query: str, kind: str) -> None:
    with pytest.raises(CQLSyntaxError) as caught:
        parse(query)
    assert caught.value.kind == kind
    assert caught.value.message


def test_limits() -> None:
    with pytest.raises(CQLSyntaxError) as caught:
        parse("a" * 9000)
    assert caught.value.kind == "too_long"
    with pytest.raises(CQLSyntaxError) as caught:
        parse(" and ".join(["cat"] * 200))
    assert caught.value.kind == "too_deep"
    assert to_debug(parse(" and ".join(["cat"] * 20)))


PIECES = st.sampled_from(
    [
        "(",
        ")",
        "and",
        "or",
        "not",
        "prox",
        "sortBy",
        "=",
        "==",
        "<>",
        "<",
        ">=",
        "/",
        "title",
        "dc.title",
        "any",
        "exact",
        '"',
        '"x y"',
        "\\",
        "*",
        "?",
        ">dc=",
        '"info:x"',
        "猫",
        "ｶﾞﾗｽ",
        "\x00",
        "/relevant",
        " ",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(PIECES, max_size=25).map(" ".join)))
def test_any_text_parses_or_raises_a_syntax_error(text: str) -> None:
    try:
        parsed = parse(text)
    except CQLSyntaxError:
        return
    assert to_debug(parse(to_cql(parsed))) == to_debug(parsed)
