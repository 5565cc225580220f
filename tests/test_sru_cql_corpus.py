"""The CQL corpus (fixtures/cql: golden.tsv, errors.tsv) through the SRU server: every query
gets the outcome written in fixtures/cql/sru_outcomes.tsv, a result or the right diagnostic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from gateway.store import open_store
from gateway.store.migrate import migrate
from sru.service import SruService
from tests.conftest import FIXTURES
from tests.sru_support import build_engine, build_service, diagnostics, load_catalogue, xml

CORPUS = FIXTURES / "cql"


def outcomes() -> list[tuple[str, str]]:
    rows = []
    for line in (CORPUS / "sru_outcomes.tsv").read_text(encoding="utf-8").split("\n"):
        if not line or line.startswith("#"):
            continue
        query, outcome = line.rsplit("\t", 1)
        rows.append((query, outcome))
    return rows


def corpus_queries(name: str) -> list[str]:
    lines = (CORPUS / name).read_text(encoding="utf-8").split("\n")
    return [line.split("\t")[0] for line in lines if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def sru(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SruService]:
    path = tmp_path_factory.mktemp("corpus")
    store = open_store(f"sqlite:///{path / 'corpus.db'}")
    migrate(store)
    load_catalogue(store, Path(path))
    yield build_service(store, build_engine(store))
    store.close()


def test_the_outcomes_cover_the_whole_corpus() -> None:
    assert [q for q, _ in outcomes()] == corpus_queries("golden.tsv") + corpus_queries("errors.tsv")


def test_every_corpus_query_gets_its_outcome(sru: SruService) -> None:
    wrong = []
    for query, expected in outcomes():
        raw = urlencode(
            {"version": "1.2", "operation": "searchRetrieve", "query": query, "maximumRecords": 0}
        ).encode("ascii")
        found = diagnostics(xml(sru.handle("main", raw).body))
        got = str(found[0][0]) if found else "ok"
        if got != expected:
            wrong.append((query, expected, got))
    assert wrong == []
