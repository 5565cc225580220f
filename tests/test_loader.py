"""The batch loader on both engines: counts that add up, overlay, matching, rejects, report."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from gateway.catalogue import repository
from gateway.catalogue.loading.loader import Loader, LoadOptions, RejectsWriter
from gateway.catalogue.loading.report import COUNTS
from gateway.catalogue.model import BibRecord
from gateway.config import BUILTIN_PROFILES, DatabaseSettings
from gateway.store import Store
from marc.iso2709 import frame_records
from tests.conftest import FIXTURES, REAL
from tests.support import LIBGATE_PROFILE, cnmarc, iso

MAIN = DatabaseSettings(name="main")
JAPANESE = DatabaseSettings(name="japanese")
PROFILES = {p.name: p for p in BUILTIN_PROFILES}


def load(
    store: Store,
    *paths: Path,
    database: DatabaseSettings = MAIN,
    profile: str = "libgate",
    match: str = "001",
    encoding: str = "auto",
    rejects: io.BytesIO | None = None,
    batch_size: int = 50,
):
    options = LoadOptions(
        database=database,
        profile=PROFILES[profile],
        encoding=encoding,
        match=match,
        batch_size=batch_size,
    )
    writer = RejectsWriter(rejects) if rejects is not None else None
    return Loader(store, options, writer).load(list(paths))


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def stored_bib(store: Store, record_id: str, database: str = "main") -> BibRecord:
    with store.read() as tx:
        text = tx.scalar(
            "SELECT bib FROM bib_records WHERE database = ? AND record_id = ?",
            (database, record_id),
        )
    assert text is not None, record_id
    return BibRecord.from_json(text)


def items(store: Store) -> dict[str, tuple[str, str, str]]:
    with store.read() as tx:
        rows = tx.execute(
            "SELECT i.barcode, r.record_id, i.call_number, i.status FROM items i"
            " JOIN bib_records r ON r.id = i.record_pk"
        )
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def test_demo_catalogue_loads_with_the_seed_example(store: Store) -> None:
    report = load(store, FIXTURES / "marc" / "demo_main.iso")
    total = report.total()
    assert total["framed"] == total["loaded"] == 7
    assert total["rejected"] == 0
    with store.read() as tx:
        row = tx.one(
            "SELECT r.title, i.library, i.location, i.call_number, i.status, i.item_type"
            " FROM items i JOIN bib_records r ON r.id = i.record_pk WHERE i.barcode = ?",
            ("54122100517423",),
        )
    assert row == (
        "The Cambridge history of China v.7 The Ming Dynasty, 1368-1644, pt. 1",
        "上海图书馆",
        "综合阅览室-1楼",
        "K20/C178/v.7/",
        "归还",
        "参考外借资料",
    )


def test_loading_the_same_file_twice_changes_nothing(store: Store) -> None:
    path = FIXTURES / "marc" / "demo_main.iso"
    load(store, path)
    with store.read() as tx:
        before = tx.execute("SELECT id, record_id, digest, marc FROM bib_records ORDER BY id")
    second = load(store, path).total()
    assert (second["loaded"], second["overlaid"], second["unchanged"]) == (0, 0, 7)
    with store.read() as tx:
        after = tx.execute("SELECT id, record_id, digest, marc FROM bib_records ORDER BY id")
    assert [tuple(map(_plain, r)) for r in after] == [tuple(map(_plain, r)) for r in before]


def _plain(value):
    return bytes(value) if isinstance(value, memoryview) else value


def test_overlay_replaces_bib_data_and_keeps_unmentioned_copies(
    store: Store, tmp_path: Path
) -> None:
    load(store, write(tmp_path, "v1.iso", iso(cnmarc("R1", "旧题名", barcodes=("B1", "B2")))))
    with store.write() as tx:  # a copy that only circulation knows about: checked out
        tx.execute("UPDATE items SET status = ? WHERE barcode = ?", ("借出", "B2"))
    report = load(
        store,
        write(
            tmp_path,
            "v2.iso",
            iso(cnmarc("R1", "新题名", barcodes=("B1", "B3"), summary="新增提要")),
        ),
    )
    assert report.total()["overlaid"] == 1
    bib = stored_bib(store, "R1")
    assert bib.title == "新题名"
    assert bib.summary == "新增提要"
    assert items(store) == {
        "B1": ("R1", "I247/1", "归还"),
        "B2": ("R1", "I247/1", "借出"),  # not in the file: kept, status untouched
        "B3": ("R1", "I247/1", "归还"),
    }


def test_barcode_clash_with_another_record_is_a_reject(store: Store, tmp_path: Path) -> None:
    load(store, write(tmp_path, "a.iso", iso(cnmarc("R1", "甲", barcodes=("B1",)))))
    rejects = io.BytesIO()
    data = iso(cnmarc("R2", "乙", barcodes=("B1",)), cnmarc("R3", "丙", barcodes=("B9",)))
    report = load(store, write(tmp_path, "b.iso", data), rejects=rejects)
    file_report = report.files[0]
    assert (file_report.loaded, file_report.rejected) == (1, 1)
    reject = file_report.rejects[0]
    assert reject["record"] == 1 and reject["offset"] == 0
    assert "B1" in reject["reason"] and "R1" in reject["reason"]
    first_record = data[: data.index(b"\x1d") + 1]
    assert rejects.getvalue() == first_record  # byte-exact
    assert items(store)["B1"][0] == "R1"


def test_barcodes_are_unique_across_databases(store: Store, tmp_path: Path) -> None:
    load(store, write(tmp_path, "a.iso", iso(cnmarc("R1", "甲", barcodes=("B1",)))))
    report = load(
        store,
        write(tmp_path, "j.iso", iso(cnmarc("J1", "猫", barcodes=("B1",)))),
        database=JAPANESE,
    )
    assert report.total()["rejected"] == 1
    assert "database main" in report.files[0].rejects[0]["reason"]


def test_the_same_record_id_may_live_in_both_databases(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "a.iso", iso(cnmarc("R1", "甲")))
    load(store, path)
    assert load(store, path, database=JAPANESE).total()["loaded"] == 1


def test_match_by_isbn_overlays_a_record_with_another_001(store: Store, tmp_path: Path) -> None:
    load(store, write(tmp_path, "a.iso", iso(cnmarc("OLD1", "甲", isbn="7-5037-1744-0"))))
    report = load(
        store,
        write(tmp_path, "b.iso", iso(cnmarc("NEW9", "甲（修订）", isbn="978-7-5037-1744-4"))),
        match="isbn",
    )
    assert report.total()["overlaid"] == 1
    assert stored_bib(store, "OLD1").title == "甲（修订）"
    with store.read() as tx:
        assert repository.record_count(tx, "main") == 1


def test_match_by_isbn_refuses_ambiguous_matches(store: Store, tmp_path: Path) -> None:
    load(
        store,
        write(
            tmp_path,
            "a.iso",
            iso(cnmarc("A", "甲", isbn="7-5037-1744-0"), cnmarc("B", "乙", isbn="7-5037-1744-0")),
        ),
    )
    report = load(
        store, write(tmp_path, "b.iso", iso(cnmarc("C", "丙", isbn="7-5037-1744-0"))), match="isbn"
    )
    assert report.total()["rejected"] == 1
    assert "matches 2 records" in report.files[0].rejects[0]["reason"]


def test_match_none_adds_and_ignores_existing_ids(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "a.iso", iso(cnmarc("A", "甲"), cnmarc("B", "乙")))
    assert load(store, path, match="none").total()["loaded"] == 2
    again = load(store, path, match="none").total()
    assert (again["ignored"], again["rejected"], again["loaded"]) == (2, 0, 0)
    assert again["framed"] == again["ignored"]


def test_records_without_001_get_a_stable_id(store: Store, tmp_path: Path) -> None:
    record = cnmarc("X", "无控制号")
    record.fields = [f for f in record.fields if f.tag != "001"]
    path = write(tmp_path, "n.iso", iso(record))
    assert load(store, path).total()["loaded"] == 1
    assert load(store, path).total()["unchanged"] == 1


@pytest.mark.parametrize("batch_size", [1, 10])
def test_duplicate_001_inside_one_file_rejects_the_later_one(
    store: Store, tmp_path: Path, batch_size: int
) -> None:
    data = iso(cnmarc("D", "第一版"), cnmarc("X", "别的"), cnmarc("D", "第二版"))
    report = load(store, write(tmp_path, "d.iso", data), batch_size=batch_size)
    file_report = report.files[0]
    assert (file_report.loaded, file_report.rejected) == (2, 1)
    assert file_report.rejects[0]["record"] == 3
    assert "record 1" in file_report.rejects[0]["reason"]
    assert any("records 1 and 3" in w["message"] and w["record"] == 3 for w in file_report.warnings)
    assert stored_bib(store, "D").title == "第一版"


@pytest.mark.parametrize("batch_size", [1, 10])
def test_on_duplicate_last_lets_the_later_record_win(
    store: Store, tmp_path: Path, batch_size: int
) -> None:
    data = iso(cnmarc("D", "第一版"), cnmarc("D", "第二版"))
    options = LoadOptions(
        database=MAIN,
        profile=PROFILES["libgate"],
        batch_size=batch_size,
        on_duplicate="last",
    )
    report = Loader(store, options).load([write(tmp_path, "d.iso", data)])
    assert (report.total()["loaded"], report.total()["overlaid"]) == (1, 1)
    assert stored_bib(store, "D").title == "第二版"
    assert any("record 2 replaces record 1" in w["message"] for w in report.files[0].warnings)
    with store.read() as tx:
        rows = tx.execute(
            "SELECT record_no, outcome, replaced_by FROM batch_records ORDER BY position"
        )
    assert [tuple(r) for r in rows] == [(1, "new", 2), (2, "overlay", None)]


def test_report_json_contract(store: Store, tmp_path: Path) -> None:
    report = load(store, REAL / "cnmarc" / "bnu_cnmarc_10_gbk.iso", profile="bnu")
    data = json.loads(report.to_json())
    file_data = data["files"][0]
    for name in COUNTS:
        assert isinstance(file_data[name], int) and isinstance(data["total"][name], int)
    assert file_data["framed"] == sum(
        file_data[n] for n in ("loaded", "overlaid", "merged", "unchanged", "ignored", "rejected")
    )
    assert file_data["encodings"] == {"gb18030": 10}
    assert data["total"]["encodings"] == {"gb18030": 10}
    assert isinstance(file_data["rejects"], list)


REAL_FILES = sorted(p for p in REAL.rglob("*") if p.is_file() and p.suffix not in (".md", ".txt"))


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_real_file_is_loaded_or_rejected_never_lost(store: Store, path: Path) -> None:
    rejects = io.BytesIO()
    report = load(store, path, rejects=rejects, batch_size=7)
    file_report = report.files[0]
    assert file_report.error is None
    assert file_report.balanced
    if path.suffix != ".xml":
        with path.open("rb") as handle:
            assert file_report.framed == sum(1 for _ in frame_records(handle))
        assert rejects.getvalue().count(b"\x1d") == file_report.rejected
    for entry in file_report.rejects:
        assert entry["reason"] and isinstance(entry["record"], int)
    with store.read() as tx:
        stored = repository.record_count(tx)
    # Into an empty catalogue, every stored row was "loaded"; later duplicates overlay it.
    assert stored == file_report.loaded


def test_xml_and_iso_forms_of_the_same_records_are_the_same_records(store: Store) -> None:
    load(store, REAL / "cnmarc" / "bnu_cnmarc_10_utf8.iso")
    report = load(store, REAL / "cnmarc" / "dp2_bnu_sru_unimarcxml.xml")
    assert report.total()["unchanged"] == 10


def test_unreadable_xml_is_one_reject(store: Store, tmp_path: Path) -> None:
    report = load(store, write(tmp_path, "bad.xml", b"<collection><record><leader>"))
    assert report.total()["framed"] == 1 and report.total()["rejected"] == 1
    assert "XML" in report.files[0].rejects[0]["reason"]


def test_missing_file_is_reported_not_raised(store: Store, tmp_path: Path) -> None:
    report = load(store, tmp_path / "nope.iso")
    assert report.files[0].error and "cannot open" in report.files[0].error
    assert not report.clean


def test_loads_are_recorded_as_batches(store: Store) -> None:
    load(store, FIXTURES / "marc" / "demo_main.iso")
    with store.read() as tx:
        row = tx.one("SELECT database, finished_at, report, state, kind FROM batches")
    assert row is not None and row[0] == "main" and row[1]
    assert (row[3], row[4]) == ("done", "load")
    assert json.loads(row[2])["total"]["loaded"] == 7


def test_profile_argument_matters(store: Store) -> None:
    report = load(store, REAL / "cnmarc" / "bnu_cnmarc_10_utf8.iso", profile="bnu")
    assert report.total()["items"]["added"] == 7  # the file has seven 906 copies
    assert load(store, REAL / "cnmarc" / "bnu_cnmarc_10_utf8.iso", profile="none").total()[
        "items"
    ] == {"added": 0, "updated": 0}
    assert LIBGATE_PROFILE.item_tag == "995"


def test_worker_processes_give_the_same_result_in_the_same_order(
    store: Store, tmp_path: Path
) -> None:
    data = iso(*(cnmarc(f"W{n:04d}", f"书{n}", barcodes=(f"W{n:05d}",)) for n in range(700)))
    data += b"garbage without terminator"
    path = write(tmp_path, "w.iso", data)
    options = LoadOptions(database=MAIN, profile=PROFILES["libgate"], batch_size=100, workers=2)
    report = Loader(store, options).load([path])
    file_report = report.files[0]
    assert (file_report.framed, file_report.loaded, file_report.rejected) == (701, 700, 1)
    assert file_report.rejects[0]["record"] == 701
    with store.read() as tx:
        ids = [r[0] for r in tx.execute("SELECT record_id FROM bib_records ORDER BY id")]
    assert ids == [f"W{n:04d}" for n in range(700)]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def test_a_killed_worker_loses_no_record(tmp_path: Path, caplog) -> None:
    import os
    import signal

    from gateway.catalogue.loading.parallel import prepare_all

    data = iso(*(cnmarc(f"K{n:05d}", f"书{n}", barcodes=(f"K{n:06d}",)) for n in range(3000)))
    path = write(tmp_path, "k.iso", data)
    with path.open("rb") as handle:
        outcomes = prepare_all(
            frame_records(handle), "auto", "auto", PROFILES["libgate"], workers=2
        )
        first = next(outcomes)
        before = set(_descendants(os.getpid()))
        workers = [
            pid for pid in before if "multiprocessing" in Path(f"/proc/{pid}/cmdline").read_text()
        ]
        assert workers, "no worker processes found"
        for pid in workers:
            if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text():
                os.kill(pid, signal.SIGKILL)
        rest = list(outcomes)
    numbers = [first[0].number] + [chunk.number for chunk, _ in rest]
    assert numbers == list(range(1, 3001))  # every record once, in order
    assert all(not isinstance(outcome, str) for _, outcome in rest)
    assert "worker died" in caplog.text  # the fallback really ran


@pytest.mark.parametrize("workers", [0, 2])
def test_report_splits_the_time_and_says_how_it_batched(
    store: Store, tmp_path: Path, workers: int
) -> None:
    data = iso(*(cnmarc(f"T{n:04d}", f"书名{n}") for n in range(120)))
    path = write(tmp_path, "t.iso", data)

    def run(bulk: bool):
        options = LoadOptions(
            database=MAIN,
            profile=PROFILES["libgate"],
            batch_size=50,
            workers=workers,
            bulk_first_load=bulk,
        )
        return Loader(store, options).load([path])

    first = run(True)  # the catalogue is empty: a bulk first load
    timings = first.to_dict()["timings"]
    assert timings["batching"] == "bulk first load"
    assert timings["workers"] == workers
    assert timings["batches"] == 3  # 120 records in batches of batch_size from the first
    for phase in ("parse", "map", "store", "index"):
        assert timings[f"{phase}_seconds"] > 0, phase
        assert timings[f"{phase}_records_per_second"] > 0, phase
    assert timings["records_per_second"] > 0
    assert any(line.startswith("time: parse ") for line in first.summary_lines())
    again = run(True)  # records are stored now: batches are sized by time (SQLite) again
    assert again.total()["unchanged"] == 120
    expected = "timed" if store.dialect == "sqlite" else "fixed"
    assert again.to_dict()["timings"]["batching"] == expected
