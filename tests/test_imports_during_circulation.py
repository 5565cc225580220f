"""Imports that do not block (issue 11): on SQLite a write transaction holds the database's
only write lock, so a reader import or a MARC load must commit in short transactions and do
its slow work (PIN hashing, record preparation) outside them. A kiosk checking books out and
in meanwhile must never fail and never wait a second.

The kiosk has its own store (its own connections), as `serve` does; the import or load has
another, as the `libgate` command does. Real scrypt hashing is kept (its cost is fixed in
`gateway.circulation.pins`), so the reader files are a few hundred rows, not thousands.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from gateway.catalogue import repository
from gateway.catalogue.loading.loader import Loader, LoadOptions
from gateway.circulation.engine import Engine
from gateway.circulation.patrons_import import import_patrons
from gateway.circulation.pins import check_pin
from gateway.circulation.policy import Policy
from gateway.circulation.states import Channel
from gateway.config import DatabaseSettings
from gateway.store import Store, Transaction, open_store
from gateway.store.migrate import migrate
from tests.circulation_support import SETTINGS, build_library
from tests.support import LIBGATE_PROFILE, cnmarc, iso

KIOSK_MAX_WAIT = 1.0  # seconds: the bound for a checkout during an import
WRITE_HOLD_BOUND = 0.2  # seconds: generous for a busy 2-core machine


class WriteHolds:
    """Times every write transaction of one store, from asking for the lock to COMMIT."""

    def __init__(self, store: Store) -> None:
        self.seconds: list[float] = []
        original: Callable[[], AbstractContextManager[Transaction]] = store.write

        @contextmanager
        def timed() -> Iterator[Transaction]:
            started = time.perf_counter()
            try:
                with original() as tx:
                    yield tx
            finally:
                self.seconds.append(time.perf_counter() - started)

        store.write = timed  # type: ignore[method-assign]


class Kiosk(threading.Thread):
    """Checks copy O1 out to reader A and in again, through the engine, until stopped."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        self.waits: list[float] = []
        self.failures: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            for label, action in (
                ("checkout", lambda: self.engine.checkout("A", "O1", Channel.SELF_CHECK)),
                ("checkin", lambda: self.engine.checkin("O1", Channel.SELF_CHECK)),
            ):
                started = time.perf_counter()
                try:
                    result = action()
                except Exception as error:  # "database is locked" and the like
                    self.failures.append(f"{label}: {error!r}")
                else:
                    if not result.ok:
                        self.failures.append(f"{label}: {result.message('en')}")
                self.waits.append(time.perf_counter() - started)
            time.sleep(0.005)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


@pytest.fixture
def library(tmp_path: Path) -> Iterator[tuple[Path, Kiosk]]:
    """A small library on SQLite and a kiosk already circulating in it."""
    path = tmp_path / "libgate.db"
    kiosk_store = open_store(f"sqlite:///{path}")
    migrate(kiosk_store)
    engine, _ = build_library(kiosk_store, tmp_path)
    kiosk = Kiosk(engine)
    kiosk.start()
    yield path, kiosk
    kiosk.stop()
    kiosk_store.close()


def readers_csv(path: Path, count: int, pin: Callable[[int], str]) -> Path:
    lines = ["barcode,name,pin,category,email,phone"]
    lines += [
        f"R{n:05d},读者{n},{pin(n)},本科生,r{n}@example.cn,1380000{n:04d}" for n in range(count)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def assert_kiosk_never_blocked(kiosk: Kiosk) -> None:
    kiosk.stop()
    assert kiosk.failures == []
    assert len(kiosk.waits) >= 20, "the kiosk hardly ran: the test proves nothing"
    assert max(kiosk.waits) < KIOSK_MAX_WAIT, f"slowest kiosk action {max(kiosk.waits):.2f} s"


def test_reader_import_during_circulation(library: tuple[Path, Kiosk], tmp_path: Path) -> None:
    path, kiosk = library
    policy = Policy.from_settings(SETTINGS)
    with open_store(f"sqlite:///{path}") as store:
        holds = WriteHolds(store)
        first = import_patrons(store, readers_csv(tmp_path / "new.csv", 80, str), policy)
        with store.read() as tx:
            stored = tx.one("SELECT pin_hash FROM patrons WHERE barcode = 'R00007'")
    assert_kiosk_never_blocked(kiosk)
    assert (first.added, first.updated, first.unchanged, first.errors) == (80, 0, 0, [])
    assert stored is not None and check_pin("7", stored[0])
    assert holds.seconds, "the import wrote nothing"
    assert max(holds.seconds) < WRITE_HOLD_BOUND


def test_unchanged_reimport_takes_no_write_lock(tmp_path: Path) -> None:
    policy = Policy.from_settings(SETTINGS)
    csv = readers_csv(tmp_path / "readers.csv", 20, lambda n: f"{n:04d}")
    with open_store(f"sqlite:///{tmp_path / 'libgate.db'}") as store:
        migrate(store)
        import_patrons(store, csv, policy)
        holds = WriteHolds(store)
        again = import_patrons(store, csv, policy)
        assert (again.added, again.updated, again.unchanged) == (0, 0, 20)
        assert holds.seconds == []  # PINs were checked, but no write lock was taken

        # One PIN and one phone changed, one PIN left empty (keeps the stored one).
        text = csv.read_text(encoding="utf-8")
        text = text.replace("R00003,读者3,0003,", "R00003,读者3,9999,")
        text = text.replace("13800000004", "13900000004")
        text = text.replace("R00005,读者5,0005,", "R00005,读者5,,")
        csv.write_text(text, encoding="utf-8")
        changed = import_patrons(store, csv, policy)
        assert (changed.added, changed.updated, changed.unchanged) == (0, 2, 18)
        assert len(holds.seconds) == 1 and max(holds.seconds) < WRITE_HOLD_BOUND
        with store.read() as tx:
            pins: dict[str, str] = dict(tx.execute("SELECT barcode, pin_hash FROM patrons"))
        assert check_pin("9999", pins["R00003"]) and not check_pin("0003", pins["R00003"])
        assert check_pin("0005", pins["R00005"])


def test_a_barcode_twice_in_one_file_is_decided_in_file_order(tmp_path: Path) -> None:
    csv = tmp_path / "twice.csv"
    csv.write_text(
        "barcode,name,pin,category,email,phone\n"
        "T1,甲,1111,本科生,,\n"
        "T1,甲,1111,本科生,,\n"
        "T1,甲改,,本科生,,\n"
        "T1,甲改,2222,本科生,,\n",
        encoding="utf-8",
    )
    with open_store(f"sqlite:///{tmp_path / 'libgate.db'}") as store:
        migrate(store)
        report = import_patrons(store, csv, Policy.from_settings(SETTINGS))
        assert (report.added, report.updated, report.unchanged) == (1, 2, 1)
        with store.read() as tx:
            row = tx.one("SELECT name, pin_hash FROM patrons WHERE barcode = 'T1'")
        assert row is not None and row[0] == "甲改" and check_pin("2222", row[1])


def catalogue_file(path: Path, records: int) -> Path:
    summary = "这是一本关于图书馆自动化与书目数据交换的书。" * 8
    path.write_bytes(
        iso(
            *(
                cnmarc(f"L{n:06d}", f"书名{n}", summary=summary, barcodes=(f"B{n:07d}",))
                for n in range(records)
            )
        )
    )
    return path


def test_marc_load_write_batches_stay_short(tmp_path: Path) -> None:
    data = catalogue_file(tmp_path / "catalogue.iso", 1500)
    with open_store(f"sqlite:///{tmp_path / 'libgate.db'}") as store:
        migrate(store)
        holds = WriteHolds(store)
        options = LoadOptions(database=DatabaseSettings(name="main"), profile=LIBGATE_PROFILE)
        report = Loader(store, options).load([data])
        assert report.total()["loaded"] == 1500
        assert max(holds.seconds) < 2 * WRITE_HOLD_BOUND, sorted(holds.seconds)[-3:]


def test_marc_load_sizes_its_batches_by_time_on_sqlite(tmp_path: Path) -> None:
    """A small `batch_target_ms` makes many small batches where `batch_size` alone would
    make three: the batches follow the time they hold the lock, not a record count."""
    data = catalogue_file(tmp_path / "catalogue.iso", 1500)
    with open_store(f"sqlite:///{tmp_path / 'libgate.db'}") as store:
        migrate(store)
        holds = WriteHolds(store)
        options = LoadOptions(
            database=DatabaseSettings(name="main"), profile=LIBGATE_PROFILE, batch_target_ms=5
        )
        report = Loader(store, options).load([data])
    assert report.total()["loaded"] == 1500
    analyzed = len(repository.searched_tables("sqlite"))  # one ANALYZE transaction each
    batches = len(holds.seconds) - 2 - analyzed  # and the load run's start and finish
    assert batches >= 12


def test_marc_load_during_circulation(library: tuple[Path, Kiosk], tmp_path: Path) -> None:
    path, kiosk = library
    data = catalogue_file(tmp_path / "catalogue.iso", 2000)
    config = tmp_path / "load.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{path}"\n', encoding="utf-8")
    loaded = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "load", str(data)],
        capture_output=True,
        timeout=300,
    )
    assert loaded.returncode == 0, loaded.stderr.decode()
    assert_kiosk_never_blocked(kiosk)
