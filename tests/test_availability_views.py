"""The same availability in every view (issue 10, item 1).

Five titles with one copy each, under a library whose on-shelf word is 在架 (not the default
归还) and whose reading-room type 阅览 does not circulate: a copy free to borrow, a reading-room
copy on the shelf, a copy on loan, a copy trapped for a hold, and a copy whose status is the
default word 归还 (not this library's on-shelf word, so not on the shelf). `libgate search`
(text and JSON), `search --available`, SRU holdings and opacxml (and `local.available`),
Z39.50 OPAC and the engine's item information for SIP2 must all tell the same story, on both
storage engines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import pytest
from lxml import etree

from gateway.circulation.availability import ShelfState
from gateway.circulation.clock import FixedClock
from gateway.circulation.engine import Engine
from gateway.circulation.policy import Policy
from gateway.cli import EXIT_OK, main
from gateway.config import Settings, load_settings
from gateway.cql.to_query import cql_to_query
from gateway.records.xml import RecordCache
from gateway.store import Store, open_store
from gateway.z3950_codec import oids
from gateway.z3950_codec.messages import RetrievalRecord
from marc.record import Field, MarcRecord
from sru.resource import limits_from
from sru.resultsets import ResultSetStore
from sru.service import SruService
from tests.sip2_support import Terminal
from tests.sru_support import NS, xml
from tests.support import iso
from z3950 import codec
from z3950.records import RecordSpec
from z3950.service import CatalogueService

ON_SHELF = "在架"
LENDING, READING_ROOM = "普通外借资料", "阅览"
LIBRARY_USE_ONLY = "在馆阅览 / In library use only (阅览)"
BORROWER, HOLDER = "P0001", "P0002"

# record id → (barcode, item type, status word when loaded, what every view must show)
TITLES = {
    "AV-FREE": ("AV1", LENDING, ON_SHELF, ShelfState.AVAILABLE),
    "AV-READ": ("AV2", READING_ROOM, ON_SHELF, ShelfState.LIBRARY_USE_ONLY),
    "AV-LOAN": ("AV3", LENDING, ON_SHELF, ShelfState.ON_LOAN),
    "AV-TRAP": ("AV4", LENDING, ON_SHELF, ShelfState.ON_HOLD_SHELF),
    "AV-OLDWORD": ("AV5", LENDING, "归还", ShelfState.UNAVAILABLE),
}
AVAILABLE = {
    record_id for record_id, (*_, state) in TITLES.items() if state is ShelfState.AVAILABLE
}
CONFIG = f"""
[circulation]
on_shelf_status = "{ON_SHELF}"

[[item_types]]
name = "{LENDING}"
circulating = true

[[item_types]]
name = "{READING_ROOM}"
circulating = false
"""


def title(record_id: str, barcode: str, item_type: str, status: str) -> MarcRecord:
    copy = [("b", "上海图书馆"), ("e", "中文书库"), ("k", "I247/9"), ("r", item_type)]
    return MarcRecord(
        "00000nam0 2200000   450 ",
        [
            Field("001", value=record_id),
            Field("100", "  ", [("a", "20240101d2001    em y0chiy50      ea")]),
            Field("200", "1 ", [("a", f"可借性测试 {record_id}"), ("f", "某某著")]),
            Field("995", "  ", [*copy, ("s", status), ("f", barcode)]),
        ],
    )


@pytest.fixture
def library(config_file: Path, tmp_path: Path) -> Iterator[tuple[Path, Settings, Store, Engine]]:
    """The five titles loaded, AV3 on loan to P0001, AV4 returned and trapped for P0002."""
    with config_file.open("a", encoding="utf-8") as handle:
        handle.write(CONFIG)
    records = tmp_path / "availability.iso"
    records.write_bytes(iso(*(title(r, *copy[:3]) for r, copy in TITLES.items())))
    patrons = Path(__file__).resolve().parent.parent / "fixtures" / "patrons" / "demo_patrons.csv"
    config = str(config_file)
    assert main(["--config", config, "load", str(records)]) == EXIT_OK
    assert main(["--config", config, "patrons", "import", str(patrons)]) == EXIT_OK
    settings = load_settings(config)
    store = open_store(settings.storage.url)
    engine = Engine(
        store, Policy.from_settings(settings), FixedClock(datetime(2026, 3, 2, 10, tzinfo=UTC))
    )
    for outcome in (
        engine.checkout(BORROWER, "AV3"),
        engine.checkout(BORROWER, "AV4"),
        engine.place_hold(HOLDER, record=("main", "AV-TRAP")),
        engine.checkin("AV4"),
    ):
        assert outcome.ok, outcome.message("en")
    yield config_file, settings, store, engine
    store.close()


def cli(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(["--config", str(config), "search", *args, "title = 可借性测试"]) == EXIT_OK
    return capsys.readouterr().out


def sru_records(service: SruService, query: str, schema: str) -> list[etree._Element]:
    body = urlencode({"query": query, "recordSchema": schema, "maximumRecords": "20"})
    root = xml(service.handle("main", body.encode()).body)
    return list(root.iter("{*}recordData"))


def test_every_view_shows_the_same_availability(library, capsys) -> None:
    config, settings, store, engine = library
    expected_counts = {
        r: (1, int(state is ShelfState.AVAILABLE)) for r, (*_, state) in TITLES.items()
    }

    # libgate search, as JSON and as text, and its availability limit
    hits = json.loads(cli(config, capsys, "--json", "--limit", "20"))["hits"]
    assert {h["id"]: (h["copies"], h["available"]) for h in hits} == expected_counts
    text = re.findall(
        r"(AV-\S+)  .*\[(\d+)/(\d+) available\]", cli(config, capsys, "--limit", "20")
    )
    assert {r: (int(copies), int(free)) for r, free, copies in text} == expected_counts
    limited = json.loads(cli(config, capsys, "--json", "--available"))["hits"]
    assert {h["id"] for h in limited} == AVAILABLE

    # SRU: holdings, opacxml, and the availability index
    sru = SruService(
        store,
        engine,
        settings.databases,
        limits_from(settings),
        ResultSetStore(max_sets=5, max_records=20),
        RecordCache(10),
    )
    holdings = {}
    for data in sru_records(sru, "title = 可借性测试", "holdings"):
        record = data.find("h:holdings", NS)
        [copy] = record.findall("h:copy", NS)
        holdings[record.get("recordId")] = (
            record.get("available"),
            copy.get("available"),
            copy.get("state"),
        )
    assert holdings == {
        r: (
            str(int(state is ShelfState.AVAILABLE)),
            str(state is ShelfState.AVAILABLE).lower(),
            state,
        )
        for r, (*_, state) in TITLES.items()
    }
    opacxml = {}
    for data in sru_records(sru, "title = 可借性测试", "opacxml"):
        circulation = data.find(".//circulation")
        opacxml[circulation.findtext("itemId")] = (
            circulation.find("availableNow").get("value") == "1",
            circulation.find("onHold").get("value") == "1",
            circulation.findtext("restrictions"),
        )
    limited_sru = sru_records(sru, "title = 可借性测试 and local.available = true", "holdings")
    assert {d.find("h:holdings", NS).get("recordId") for d in limited_sru} == AVAILABLE

    # Z39.50 OPAC records
    z3950 = CatalogueService(store, engine, settings.databases)
    found = z3950.search("default", cql_to_query("title = 可借性测试"), "main", 20)
    opac = {}
    for _database, built in z3950.retrieve(
        list(found.record_pks), RecordSpec.resolve(oids.OPAC, "F")
    ):
        assert isinstance(built, RetrievalRecord) and built.asn1 is not None
        [(_, holding)] = codec.schema().decode("OPACRecord", built.asn1)["holdingsData"]
        [circulation] = holding["circulationData"]
        restrictions = circulation.get("restrictions")
        opac[circulation["itemId"].decode()] = (
            circulation["availableNow"],
            circulation["onHold"],
            restrictions.decode() if restrictions is not None else None,
        )

    expected_opac = {
        barcode: (
            state is ShelfState.AVAILABLE,
            state is ShelfState.ON_HOLD_SHELF,
            LIBRARY_USE_ONLY if state is ShelfState.LIBRARY_USE_ONLY else None,
        )
        for barcode, _type, _status, state in TITLES.values()
    }
    assert opacxml == expected_opac
    assert opac == expected_opac

    # SIP2 item information: the engine's item view and its shelf state
    rule = engine.policy.availability
    for barcode, item_type, _status, state in TITLES.values():
        view = engine.item_info(barcode)
        assert view is not None
        assert view.available is (state is ShelfState.AVAILABLE), barcode
        assert view.circulates is (item_type != READING_ROOM), barcode
        shown = rule.shelf_state(
            view.copy.status,
            view.copy.item_type,
            on_loan=view.due_at is not None,
            trapped=view.pickup_desk is not None,
        )
        assert shown is state, barcode
        assert view.state is state, barcode

    # SIP2 item information (17 → 18) at a kiosk: a reading-room copy is never "03 available"
    kiosk = Terminal(engine, engine.clock)
    assert kiosk.login().fixed["ok"] == "1"
    sip2_status = {
        ShelfState.AVAILABLE: "03",
        ShelfState.LIBRARY_USE_ONLY: "01",
        ShelfState.ON_LOAN: "04",
        ShelfState.ON_HOLD_SHELF: "08",
        ShelfState.UNAVAILABLE: "01",
    }
    for barcode, _type, _status, state in TITLES.values():
        info = kiosk.item_information(barcode)
        assert info.fixed["circulation_status"] == sip2_status[state], barcode
        library_use = "在馆阅览" in info.all("AF")
        assert library_use is (state is ShelfState.LIBRARY_USE_ONLY), barcode
