"""The public CQL test queries of Index Data's cql-java and YAZ, as our own fixtures
(fixtures/cql/cql_java_regression.tsv, fixtures/cql/yaz_samples.tsv; PROVENANCE.md says where
each came from). Every query gets the parse or error written for it, and where upstream
publishes an expectation (an XCQL parse, or "must parse" / "must fail") the fixture records
whether libgate agrees; a change in agreement fails here until the fixture is updated."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from gateway.cql import ast
from gateway.cql.ast import to_cql, to_debug
from gateway.cql.parser import CQLSyntaxError, parse
from tests.conftest import FIXTURES

CORPUS = FIXTURES / "cql"
FILES = ("cql_java_regression.tsv", "yaz_samples.tsv")
UPSTREAM_WORDS = ("parses", "fails", "disabled")
SOURCE = re.compile(r"^(src/test/resources/regression/|test/)\S+@[0-9a-f]{8}$")


@dataclass(frozen=True)
class Row:
    file: str
    query: str
    sources: tuple[str, ...]
    expected: str
    upstream: str
    agreement: str
    note: str

    @property
    def id(self) -> str:
        return f"{self.file.split('_')[0]}:{self.query}"


def load(name: str) -> list[Row]:
    found = []
    for line in (CORPUS / name).read_text(encoding="utf-8").split("\n"):
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) == 5:  # an empty note, its tab trimmed by an editor
            fields.append("")
        query, sources, expected, upstream, agreement, note = fields
        found.append(Row(name, query, tuple(sources.split()), expected, upstream, agreement, note))
    return found


ROWS = [row for name in FILES for row in load(name)]


def structure(query: str) -> str | None:
    """Our parse as upstream's XCQL shows it: a bare term is cql.serverChoice "=" (CQL 1.2's
    defaults); None when the query is not CQL."""
    try:
        parsed = parse(query)
    except CQLSyntaxError:
        return None

    def fill(node: ast.Node) -> ast.Node:
        if isinstance(node, ast.Prefixed):
            return replace(node, query=fill(node.query))
        if isinstance(node, ast.Boolean):
            return replace(node, left=fill(node.left), right=fill(node.right))
        return replace(
            node,
            index=node.index if node.index is not None else "cql.serverChoice",
            relation=node.relation if node.relation is not None else ast.Relation("="),
        )

    return to_debug(replace(parsed, root=fill(parsed.root)))


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_each_public_query_gets_its_parse_or_error(row: Row) -> None:
    if row.expected.startswith("error:"):
        with pytest.raises(CQLSyntaxError) as caught:
            parse(row.query)
        assert caught.value.kind == row.expected.removeprefix("error:")
        return
    parsed = parse(row.query)
    assert to_debug(parsed) == row.expected
    assert to_debug(parse(to_cql(parsed))) == row.expected  # printing gives the same query back


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_agreement_with_the_upstream_expectation_is_as_recorded(row: Row) -> None:
    ours = structure(row.query)
    if row.upstream == "disabled":
        agreement = "-"
    elif row.upstream == "parses":
        agreement = "same" if ours is not None else "differs"
    elif row.upstream == "fails":
        agreement = "same" if ours is None else "differs"
    else:
        assert row.upstream.startswith("("), row.upstream
        agreement = "same" if ours == row.upstream else "differs"
    assert agreement == row.agreement
    if agreement != "same":
        assert row.note, "every disagreement says why"


@pytest.mark.parametrize("name", FILES)
def test_the_fixture_is_whole_and_says_where_each_query_came_from(name: str) -> None:
    rows = load(name)
    assert len(rows) >= 90
    assert len({row.query for row in rows}) == len(rows)  # one row per query
    for row in rows:
        assert row.sources and all(SOURCE.match(s) for s in row.sources), row.sources
        assert row.agreement in ("same", "differs", "-")
        assert row.upstream in UPSTREAM_WORDS or row.upstream.startswith("(")
        assert row.expected.startswith(("(", "error:"))


def test_both_outcomes_and_both_verdicts_are_represented() -> None:
    for name in FILES:
        rows = load(name)
        assert {row.expected.startswith("error:") for row in rows} == {True, False}
        assert {"same", "differs"} <= {row.agreement for row in rows}


def test_paths_name_files_of_the_two_repositories() -> None:
    java = {s.split("@")[0] for row in load(FILES[0]) for s in row.sources}
    assert all(p.startswith("src/test/resources/regression/") for p in java)
    yaz = {s.split("#")[0].split("@")[0] for row in load(FILES[1]) for s in row.sources}
    assert all(Path(p).parts[0] == "test" for p in yaz)
