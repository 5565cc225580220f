"""`libgate union request` end to end: the seed's "method 1" between two real `libgate serve`
instances. The borrower (ISIL:CN-PKU) searches the lender's catalogue (Shanghai Library,
ISIL:CN-SHL) over Z39.50 in the OPAC record syntax, reads each copy's circulation data, lets
the engine decide I1 for each, pre-fills the ILL request from the record and files it with the
holding partners as the rota; the lender receives the ISO 18626 request and supplies it.

Also: a work whose only copy is for the reading room offers no lender; a reader not registered
for ILL is refused by the engine (I7); a work number beyond the results is told."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.ill_serve_support import (
    PKU,
    SHL,
    lender_and_borrower,
    lender_requests,
    until,
    until_state,
)

pytestmark = pytest.mark.slow

NLC = "ISIL:CN-NLC"
TITLE = "The Cambridge history of China v.7 The Ming Dynasty, 1368-1644, pt. 1"
SEED_COPY = "54122100517423"  # its one copy: 参考外借资料, 归还


@dataclass
class Libraries:
    lender: Path
    borrower: Path


def libgate(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A `libgate` command in its own process (the union search runs Twisted's reactor)."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def libraries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Libraries]:
    two = lender_and_borrower(tmp_path_factory.mktemp("union-ill"))
    catalogue = f"z3950:127.0.0.1:{two.lender_z3950}/main"
    with two.borrower.open("a", encoding="utf-8") as text:
        # The same catalogue as four targets: in the OPAC syntax (copies and their circulation
        # data, item types from the record's 995 by the libgate profile), over SRU as OPAC XML,
        # as plain UNIMARC, and under an agency id that is no [ill] partner of ours.
        text.write(
            f"""
[union]
timeout = 30

[[union.targets]]
name = "上海图书馆"
url = "{catalogue}"
agency_id = "{SHL}"
syntax = "opac"
holdings_profile = "libgate"

[[union.targets]]
name = "上海图书馆 SRU"
url = "http://127.0.0.1:{two.lender_sru}/main"
agency_id = "{SHL}"
syntax = "opac"

[[union.targets]]
name = "上海图书馆 UNIMARC"
url = "{catalogue}"
agency_id = "{SHL}"

[[union.targets]]
name = "国家图书馆"
url = "{catalogue}"
agency_id = "{NLC}"
syntax = "opac"
"""
        )
    with two.serving():
        yield Libraries(two.lender, two.borrower)


def union_request(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = libgate(config, "union", "request", "--json", *args)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_a_union_search_result_is_requested_from_the_library_that_holds_it(
    libraries: Libraries,
) -> None:
    code, answer = union_request(
        libraries.borrower,
        "--reader",
        "P0001",
        "--lenders",
        "国家图书馆,上海图书馆",
        "--recipient",
        "张伟",
        "--email",
        "zhangwei@example.edu.cn",
        "cambridge history china",
    )
    assert code == 0 and answer["ok"], answer
    # The lender's copy, read from its OPAC record: on the shelf, 参考外借资料 (from 995$r),
    # offering ILL by the engine's I1.
    [held] = [s for s in answer["work"]["sources"] if s["target"] == "上海图书馆"]
    [copy] = held["holdings"]
    assert (copy["item_id"], copy["available_now"], copy["item_type"], copy["ill"]) == (
        SEED_COPY,
        True,
        "参考外借资料",
        True,
    )
    # Over SRU, the OPAC XML says the same of the copy (no item type: OPAC has none).
    [over_sru] = [s for s in answer["work"]["sources"] if s["target"] == "上海图书馆 SRU"]
    [sru_copy] = over_sru["holdings"]
    assert (sru_copy["item_id"], sru_copy["available_now"], sru_copy["ill"]) == (
        SEED_COPY,
        True,
        True,
    )
    # The rota: the partner, once (its SRU and UNIMARC targets are the same agency); the
    # non-partner not.
    assert [x["agency_id"] for x in answer["lenders"]] == [SHL]
    assert {p["target"]: p["why"] for p in answer["passed"]} == {
        "国家图书馆": f"{NLC} is not an [ill] partner"
    }
    request = answer["request"]
    assert request["number"].startswith("ST") and request["partner"] == SHL
    assert request["title"] == TITLE and request["rota"] == [SHL]

    # The lender received the ISO 18626 request, pre-filled, and supplies its copy (I1, I6).
    def received() -> dict[str, Any] | None:
        found = [r for r in lender_requests(libraries.lender) if r["partner"] == PKU]
        return found[0] if found else None

    arrived = until(received, "the request at the lender")
    assert arrived["title"] == TITLE and arrived["author"] == answer["work"]["author"] != ""
    assert arrived["requesting_agency_request_id"] == request["number"]
    assert arrived["barcode"] == SEED_COPY
    supplied = until_state(libraries.borrower, request["number"], "will_supply")
    assert supplied["status"] == "WillSupply"

    # The copy set aside for us is no longer on the shelf in the lender's OPAC record: the
    # next union search shows it offering no ILL request.
    done = libgate(
        libraries.borrower, "union", "search", "--json", "--targets", "上海图书馆", "cambridge"
    )
    assert done.returncode == 0, done.stderr
    [work] = [r for r in json.loads(done.stdout)["records"] if r["title"] == TITLE]
    [copy] = work["sources"][0]["holdings"]
    assert (copy["available_now"], copy["ill"]) == (False, False)
    assert copy["ill_refused"]["code"] == "ill_partner_not_on_shelf"


def test_a_reading_room_copy_offers_no_lender(libraries: Libraries) -> None:
    code, answer = union_request(
        libraries.borrower,
        "--reader",
        "P0001",
        "--targets",
        "上海图书馆",
        "--recipient",
        "张伟",
        "--email",
        "zhangwei@example.edu.cn",
        "中国历史地图集",
    )
    assert code == 3 and not answer["ok"] and answer["request"] is None
    [copy] = answer["work"]["sources"][0]["holdings"]
    assert copy["ill"] is False and copy["ill_refused"]["code"] == "ill_partner_restricted"
    assert "no library" in answer["error"] and "restricts this copy" in answer["error"]
    # The same without --json: the search lists the copy and why it offers no ILL request.
    done = libgate(
        libraries.borrower, "union", "search", "--targets", "上海图书馆", "中国历史地图集"
    )
    assert done.returncode == 0 and "该馆此复本有使用限制" in done.stdout, done.stdout


def test_a_reader_not_registered_for_ill_is_refused_by_the_engine(libraries: Libraries) -> None:
    code, answer = union_request(
        libraries.borrower,
        "--reader",
        "P0002",
        "--targets",
        "上海图书馆",
        "--recipient",
        "李娜",
        "--email",
        "lina@example.edu.cn",
        "剑桥中国明代史",  # a copy of it is on the shelf, 参考外借资料: the lender is there
    )
    assert code == 3 and not answer["ok"] and answer["request"] is None, answer
    assert [x["agency_id"] for x in answer["lenders"]] == [SHL]
    assert "I7" in {r["rule"] for r in answer["reasons"]}


def test_a_work_beyond_the_results_is_told(libraries: Libraries) -> None:
    done = libgate(
        libraries.borrower,
        "union",
        "request",
        "--reader",
        "P0001",
        "--pick",
        "99",
        "--targets",
        "上海图书馆",
        "cambridge history china",
    )
    assert done.returncode == 1 and "no work 99" in done.stderr
