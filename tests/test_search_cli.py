"""`libgate search` and `libgate browse`: CQL in, hits out, for people and for scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.catalogue.query import Boolean, SortKey, Term, UnknownIndex, UnsupportedTruncation
from gateway.cli import EXIT_OK, EXIT_USAGE, main
from gateway.cql.to_query import cql_to_query
from tests.conftest import FIXTURES, REAL


@pytest.fixture
def loaded(config_file: Path) -> Path:
    assert (
        main(["--config", str(config_file), "load", str(FIXTURES / "marc" / "demo_main.iso")])
        == EXIT_OK
    )
    assert (
        main(
            [
                "--config",
                str(config_file),
                "load",
                "--profile",
                "bnu",
                str(REAL / "cnmarc" / "bnu_cnmarc_10_utf8.iso"),
            ]
        )
        == EXIT_OK
    )
    return config_file


def search_json(config: Path, *args: str, capsys) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["--config", str(config), "search", "--json", *args]) == EXIT_OK
    return json.loads(capsys.readouterr().out)


def test_cql_search_finds_a_chinese_word(loaded: Path, capsys) -> None:
    result = search_json(loaded, "title = 明代", capsys=capsys)
    assert result["total"] == 1
    hit = result["hits"][0]
    assert hit["id"] == "SHL000000002" and hit["title"].startswith("剑桥中国明代史")
    assert (hit["copies"], hit["available"]) == (2, 1)


def test_cql_booleans_sort_and_limit(loaded: Path, capsys) -> None:
    result = search_json(
        loaded,
        "dc.title = 中国发展报告 and dc.date > 1995 sortBy dc.date/sort.descending",
        "--limit",
        "3",
        capsys=capsys,
    )
    years = [h["year"] for h in result["hits"]]
    assert len(years) == 3 and years == sorted(years, reverse=True) and min(years) > 1995
    assert result["total"] >= 3


def test_sort_option_overrides(loaded: Path, capsys) -> None:
    result = search_json(
        loaded, "cql.serverChoice = 中国", "--sort", "date:desc", "--limit", "50", capsys=capsys
    )
    years = [h["year"] for h in result["hits"] if h["year"]]
    assert years == sorted(years, reverse=True)


def test_human_output(loaded: Path, capsys) -> None:
    assert main(["--config", str(loaded), "search", 'title exact "红楼梦"']) == EXIT_OK
    out = capsys.readouterr().out
    assert "1 hits in main" in out and "SHL000000003" in out and "[2/2 available]" in out


def test_bad_queries_exit_2_with_the_reason(loaded: Path, capsys) -> None:
    assert main(["--config", str(loaded), "search", "title = "]) == EXIT_USAGE
    assert capsys.readouterr().err.strip()
    assert main(["--config", str(loaded), "search", "nosuch.index = x"]) == EXIT_USAGE
    assert "nosuch" in capsys.readouterr().err
    assert main(["--config", str(loaded), "search", "title = wom?n"]) == EXIT_USAGE
    assert "?" in capsys.readouterr().err


def test_browse_command(loaded: Path, capsys) -> None:
    capsys.readouterr()
    assert (
        main(
            ["--config", str(loaded), "browse", "--index", "title", "--count", "3", "--json", "红"]
        )
        == EXIT_OK
    )
    entries = json.loads(capsys.readouterr().out)
    assert entries[0]["heading"] == "红楼梦" and entries[0]["count"] == 1


def test_cql_translation_keeps_cql_meaning() -> None:
    assert cql_to_query("剑桥").root == Term("any", "=", "剑桥")
    assert cql_to_query('dc.title exact "Pride and prejudice"').root == Term(
        "title", "exact", "Pride and prejudice"
    )
    assert cql_to_query("title == x").root.relation == "exact"
    assert cql_to_query("bath.isbn = 7-5037-1744-0").root == Term("isbn", "=", "7-5037-1744-0")
    assert cql_to_query("title = hist*").root == Term("title", "=", "hist", "right")
    assert cql_to_query(r"title = 5\*").root == Term("title", "=", "5*")
    query = cql_to_query("a or b not c sortBy title/sort.descending")
    assert isinstance(query.root, Boolean) and query.root.op == "not"
    assert query.sort == (SortKey("title", descending=True),)
    prefixed = cql_to_query('>x="info:srw/cql-context-set/1/dc-v1.1" x.creator = 曹雪芹')
    assert prefixed.root == Term("author", "=", "曹雪芹")
    with pytest.raises(UnknownIndex):
        cql_to_query("dc.nonsense = x")
    with pytest.raises(UnsupportedTruncation):
        cql_to_query("title = *ist")


def test_free_text_reads_words_and_explains_itself(loaded: Path, capsys) -> None:
    out = search_json(loaded, "剑桥 明代", capsys=capsys)
    assert out["read_as"] == "free text" and [h["id"] for h in out["hits"]] == ["SHL000000002"]
    out = search_json(loaded, "--explain", "mingdai", capsys=capsys)
    assert out["read_as"] == "cql" and out["hits"][0]["id"] == "SHL000000002"
    (term,) = out["explain"]
    assert term["words"][0]["pinyin"] == ["ming dai"] and "py_title" in term["fields"]
    capsys.readouterr()
    assert main(["--config", str(loaded), "search", "--explain", "jqzgmds"]) == EXIT_OK
    text = capsys.readouterr().out
    assert "read as: cql" in text and "pinyin initials jqzgmds" in text
    assert "SHL000000002" in text


def test_a_failed_cql_attempt_is_explained_in_plain_words(loaded: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["--config", str(loaded), "search", "title=(剑桥"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "could not be read" in err and "type just the words" in err
