"""A catalogue for SRU tests: the demo and BNU records (main), the Japanese CNMARC catalogue
(japanese), a MARC 21 record, records with 猫 and 历史, copies, a reader and an engine."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree
from twisted.internet import reactor

from gateway.catalogue.loading.loader import Loader, LoadOptions
from gateway.circulation.clock import FixedClock
from gateway.circulation.engine import Engine
from gateway.circulation.policy import Policy
from gateway.config import BUILTIN_PROFILES, DatabaseSettings, Settings
from gateway.records.xml import RecordCache
from gateway.store import Store, open_store
from gateway.store.migrate import migrate
from sru.request import Limits
from sru.resultsets import ResultSetStore
from sru.service import SruService
from tests.conftest import FIXTURES, REAL
from tests.support import cnmarc, iso

PROFILES = {p.name: p for p in BUILTIN_PROFILES}
SETTINGS = Settings()
MAIN_EXTRA = [
    cnmarc("SRU-CAT-ZH", "猫的历史", barcodes=("SRU-C1", "SRU-C2")),
    cnmarc("SRU-QUOTE", 'A title with <angle> & "quotes"', barcodes=("SRU-Q1",)),
]
JAPANESE_EXTRA = [cnmarc("SRU-CAT-JA", "吾輩は猫である", barcodes=("SRU-J1",))]
MARC21_FILE = REAL / "cjk" / "marc4j_pride-and-prejudice-fixed.mrc"
READER = "SRU-READER"


def load_catalogue(store: Store, tmp_path: Path) -> None:
    main = DatabaseSettings(name="main")
    japanese = DatabaseSettings(name="japanese")
    extra_main = tmp_path / "sru_main.iso"
    extra_main.write_bytes(iso(*MAIN_EXTRA))
    extra_japanese = tmp_path / "sru_japanese.iso"
    extra_japanese.write_bytes(iso(*JAPANESE_EXTRA))
    for database, path, profile in (
        (main, FIXTURES / "marc" / "demo_main.iso", "libgate"),
        (main, REAL / "cnmarc" / "bnu_cnmarc_10_utf8.iso", "bnu"),
        (main, extra_main, "libgate"),
        (main, MARC21_FILE, "none"),
        (japanese, FIXTURES / "marc" / "japanese" / "japanese_cnmarc.iso", "libgate"),
        (japanese, extra_japanese, "libgate"),
    ):
        Loader(store, LoadOptions(database=database, profile=PROFILES[profile])).load([path])
    with store.write() as tx:
        tx.insert(
            "INSERT INTO patrons (barcode, name, pin_hash, category, email) VALUES (?, ?, ?, ?, ?)",
            (READER, "测试读者", "", "本科生", ""),
        )


def build_engine(store: Store) -> Engine:
    return Engine(
        store, Policy.from_settings(SETTINGS), FixedClock(datetime(2026, 3, 2, tzinfo=UTC))
    )


def build_service(store: Store, engine: Engine, limits: Limits | None = None) -> SruService:
    return SruService(
        store,
        engine,
        SETTINGS.databases,
        limits or Limits(),
        ResultSetStore(max_sets=50, max_records=5),
        RecordCache(100),
    )


NS = {
    "zs": "http://www.loc.gov/zing/srw/",
    "zs2": "http://docs.oasis-open.org/ns/search-ws/sruResponse",
    "scan2": "http://docs.oasis-open.org/ns/search-ws/scan",
    "diag": "http://www.loc.gov/zing/srw/diagnostic/",
    "diag2": "http://docs.oasis-open.org/ns/search-ws/diagnostic",
    "marc": "http://www.loc.gov/MARC21/slim",
    "mx": "info:lc/xmlns/marcxchange-v1",
    "dc": "http://purl.org/dc/elements/1.1/",
    "h": "info:srw/schema/libgate/holdings-v1",
    "zr": "http://explain.z3950.org/dtd/2.0/",
}


def xml(body: bytes) -> etree._Element:
    """Parse a response as a client should: no DTDs, no entities, no network."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(body, parser)


def diagnostics(root: etree._Element) -> list[tuple[int, str]]:
    found = []
    for element in root.iter("{*}diagnostic"):
        uri = element.findtext("{*}uri") or ""
        found.append((int(uri.rsplit("/", 1)[1]), element.findtext("{*}details") or ""))
    return found


def control_numbers(root: etree._Element) -> list[str]:
    """001 of every MARC record in a response, in order."""
    return [field.text or "" for field in root.iter("{*}controlfield") if field.get("tag") == "001"]


def reactor_in_thread() -> Any:
    """Twisted's global reactor, running in a daemon thread (started once per test process),
    for tests that drive real sockets from the test thread."""
    if not reactor.running:
        thread = threading.Thread(
            target=reactor.run, kwargs={"installSignalHandlers": False}, daemon=True
        )
        thread.start()
        for _ in range(200):
            if reactor.running:
                break
            time.sleep(0.01)
    return reactor


def catalogue_store(path: Path) -> Store:
    """A migrated SQLite store under `path` holding the test catalogue."""
    store = open_store(f"sqlite:///{path / 'sru.db'}")
    migrate(store)
    load_catalogue(store, path)
    return store
