"""Batches on both engines: every load and delete is one, `undo` returns the catalogue to its
exact state before (rows by id, identifiers, browse entries, copies, what searches find),
undo is refused when it would not be exact, and circulation decides what a delete may take."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.catalogue.batches import storage
from gateway.catalogue.batches.deletion import delete_items, delete_records
from gateway.catalogue.batches.undo import UndoRefused, undo_batch
from gateway.catalogue.model import BibRecord
from gateway.config import ConfigError, settings_from_dict
from gateway.store import Store
from marc.record import Field
from tests.batches_support import dump, load
from tests.circulation_support import SETTINGS, build_library
from tests.conftest import REAL
from tests.support import cnmarc, iso

QUERIES = ("旧题名", "新题名", "第二种", "第六种", "甲乙", "中文书库", "史记")


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def base_file(tmp_path: Path) -> Path:
    return write(
        tmp_path,
        "base.iso",
        iso(
            cnmarc("R1", "旧题名", isbn="7-5037-1744-0", barcodes=("B1", "B2"), subjects=("甲乙",)),
            cnmarc("R2", "第二种", barcodes=("B3",)),
            cnmarc("R3", "第三种 史记", barcodes=("B4", "B5"), summary="提要"),
            cnmarc("R4", "第四种", barcodes=("B6",)),
        ),
    )


def vendor_file(tmp_path: Path) -> Path:
    """Overlays R1 (new title, a new copy, B1 re-described), leaves R2 as is, adds R6."""
    r1 = cnmarc("R1", "新题名", isbn="7-5037-1744-0", barcodes=("B1", "B7"), subjects=("丙丁",))
    for field in r1.fields:
        if field.tag == "995" and field.get("f") == "B1":
            field.subfields = [(c, "K9/9" if c == "k" else v) for c, v in field.subfields]
    return write(
        tmp_path,
        "vendor.iso",
        iso(r1, cnmarc("R2", "第二种", barcodes=("B3",)), cnmarc("R6", "第六种", barcodes=("B8",))),
    )


def test_undo_a_load_returns_the_exact_prior_state(store: Store, tmp_path: Path) -> None:
    load(store, base_file(tmp_path))
    before = dump(store, QUERIES)
    report = load(store, vendor_file(tmp_path))
    total = report.total()
    assert (total["loaded"], total["overlaid"], total["unchanged"]) == (1, 1, 1)
    assert report.batch is not None
    assert dump(store, QUERIES) != before
    result = undo_batch(store, report.batch, "tester")
    assert result.removed_records == ["main/R6"]
    assert result.restored_records == ["main/R1"]
    assert sorted(result.removed_copies) == ["B7", "B8"]
    assert result.restored_copies == ["B1"]
    assert result.kept == []
    assert dump(store, QUERIES) == before
    with store.read() as tx:
        batch = storage.batch_by_id(tx, report.batch)
    assert batch is not None and batch.state == "undone" and batch.undone_by == "tester"


def test_an_undone_batch_cannot_be_undone_twice(store: Store, tmp_path: Path) -> None:
    report = load(store, base_file(tmp_path))
    assert report.batch is not None
    undo_batch(store, report.batch, "tester")
    with pytest.raises(UndoRefused, match="already undone"):
        undo_batch(store, report.batch, "tester")
    with pytest.raises(UndoRefused, match="no batch 99"):
        undo_batch(store, 99, "tester")


def test_undoing_a_batch_a_later_one_changed_again_is_refused(store: Store, tmp_path: Path) -> None:
    first = load(store, base_file(tmp_path))
    before = dump(store, QUERIES)
    second = load(store, vendor_file(tmp_path))
    third = load(store, write(tmp_path, "again.iso", iso(cnmarc("R1", "第三版", barcodes=("B1",)))))
    assert first.batch and second.batch and third.batch
    with pytest.raises(UndoRefused) as refused:
        undo_batch(store, second.batch, "tester")
    assert f"undo {third.batch} first" in str(refused.value)
    assert "record main/R1" in str(refused.value)
    undo_batch(store, third.batch, "tester")
    undo_batch(store, second.batch, "tester")
    assert dump(store, QUERIES) == before


def test_undo_keeps_what_circulated_since_and_says_so(store: Store, tmp_path: Path) -> None:
    engine, _clock = build_library(store, tmp_path)  # batch 1, and readers A-D
    extra = load(
        store,
        write(
            tmp_path,
            "extra.iso",
            iso(
                cnmarc("N1", "新书", barcodes=("N1-1",)),
                cnmarc("N2", "另一本新书", barcodes=("N2-1",)),
            ),
        ),
    )
    assert engine.checkout("A", "N1-1").ok
    assert extra.batch is not None
    result = undo_batch(store, extra.batch, "tester")
    assert result.removed_records == ["main/N2"]
    kept = {k["what"]: k["why"] for k in result.kept}
    assert "copy N1-1" in kept and "1 loans" in kept["copy N1-1"]
    assert "record main/N1" in kept
    with store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM items WHERE barcode = 'N1-1'") == 1
        assert tx.scalar("SELECT count(*) FROM bib_records WHERE record_id = 'N2'") == 0


def test_delete_then_undo_restores_records_copies_and_index(store: Store, tmp_path: Path) -> None:
    engine, _clock = build_library(store, tmp_path)
    queries = ("书名T", "书名T-MING", "书名T-X")
    before = dump(store, queries)
    deleted = delete_records(
        store, engine, "main", ["T-X", "NOPE"], force=False, by="tester", command="test"
    )
    assert deleted.deleted_records == ["main/T-X"] and deleted.deleted_copies == ["X1"]
    assert deleted.missing == ["main/NOPE"]
    copies = delete_items(store, engine, ["W2"], force=False, by="tester", command="test")
    assert copies.deleted_copies == ["W2"]
    assert dump(store, queries) != before
    assert copies.batch and deleted.batch
    undo_batch(store, copies.batch, "tester")
    undo_batch(store, deleted.batch, "tester")
    assert dump(store, queries) == before


def test_delete_is_refused_for_a_copy_on_loan_unless_forced(store: Store, tmp_path: Path) -> None:
    engine, _clock = build_library(store, tmp_path)
    assert engine.checkout("A", "O1").ok
    refused = delete_items(store, engine, ["O1"], force=False, by="tester", command="test")
    assert refused.batch is None and refused.deleted_copies == []
    assert [r.code for _, reasons in refused.refused for r in reasons] == ["withdraw_on_loan"]
    before = dump(store)
    forced = delete_items(store, engine, ["O1"], force=True, by="tester", command="test")
    assert forced.deleted_copies == ["O1"]
    assert [e.code for e in forced.effects] == ["withdrawn_loan_ended"]
    with store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM loans") == 0  # moved into the batch
        events = [r[0] for r in tx.execute("SELECT action FROM circulation_events ORDER BY id")]
    assert events[-1] == "loan_ended_withdrawn"
    assert forced.batch is not None
    undo_batch(store, forced.batch, "tester")
    after = dump(store)
    # The copy and its loan are back, the loan as the forced delete ended it, so the copy is
    # on the shelf (never "on loan" with no loan behind it); nothing else differs.
    status = 7  # items.status in the dump's column order (tests/batches_support.py)
    on_shelf = SETTINGS.circulation.on_shelf_status
    [was] = [r for r in before["items"] if "O1" in r]
    [now] = [r for r in after["items"] if "O1" in r]
    assert was[status] == SETTINGS.circulation.on_loan_status and now[status] == on_shelf
    assert now[:status] + now[status + 1 :] == was[:status] + was[status + 1 :]
    assert [r for r in after["items"] if "O1" not in r] == [
        r for r in before["items"] if "O1" not in r
    ]
    assert len(after["loans"]) == 1 and after["loans"][0][7] is not None
    assert after["records"] == before["records"]


def test_forced_delete_of_a_title_cancels_its_holds_and_tells_the_readers(
    store: Store, tmp_path: Path
) -> None:
    engine, _clock = build_library(store, tmp_path)
    assert engine.checkout("A", "O1").ok
    assert engine.place_hold("B", record=("main", "T-ONE")).ok
    refused = delete_records(store, engine, "main", ["T-ONE"], force=False, by="t", command="t")
    codes = {r.code for _, reasons in refused.refused for r in reasons}
    assert codes == {"withdraw_on_loan", "withdraw_title_held"}
    with store.read() as tx:
        notices_before = tx.scalar("SELECT count(*) FROM notices")
    forced = delete_records(store, engine, "main", ["T-ONE"], force=True, by="t", command="t")
    assert forced.deleted_records == ["main/T-ONE"]
    assert {e.code for e in forced.effects} == {"withdrawn_loan_ended", "withdrawn_holds_cancelled"}
    assert {e.rule for e in forced.effects} == {"", "R1"}
    with store.read() as tx:
        notices = tx.execute("SELECT kind FROM notices ORDER BY id")
    assert len(notices) == notices_before + 1 and notices[-1][0] == "hold_cancelled"


def test_a_trapped_copy_is_refused_and_a_forced_delete_cancels_its_hold(
    store: Store, tmp_path: Path
) -> None:
    engine, _clock = build_library(store, tmp_path)
    assert engine.checkout("A", "O1").ok
    assert engine.place_hold("B", record=("main", "T-ONE")).ok
    assert engine.checkin("O1").ok  # R6: trapped for B
    refused = delete_items(store, engine, ["O1"], force=False, by="t", command="t")
    assert {r.code for _, reasons in refused.refused for r in reasons} == {"withdraw_trapped"}
    forced = delete_items(store, engine, ["O1"], force=True, by="t", command="t")
    assert forced.deleted_copies == ["O1"]
    assert [e.code for e in forced.effects] == ["withdrawn_trapped_cancelled"]
    with store.read() as tx:
        assert tx.scalar("SELECT state FROM holds") == "cancelled"


# --- matching, match actions, duplicates ---------------------------------------------------------


def test_match_rule_title_author_year_finds_a_record_with_another_001(
    store: Store, tmp_path: Path
) -> None:
    load(store, write(tmp_path, "a.iso", iso(cnmarc("OLD", "史记选读", year="1999"))))
    vendor = write(tmp_path, "b.iso", iso(cnmarc("V-77", "史记选读", year="1999", summary="新")))
    report = load(store, vendor, match="001,isbn,title+author+year")
    assert report.total()["overlaid"] == 1
    with store.read() as tx:
        rows = tx.execute("SELECT record_id, matched_id, matched_by FROM batch_records")
        assert [tuple(r) for r in rows][-1] == ("V-77", "OLD", "title+author+year")
        assert tx.scalar("SELECT count(*) FROM bib_records") == 1
    # Another year is another record.
    other = write(tmp_path, "c.iso", iso(cnmarc("V-78", "史记选读", year="2005")))
    assert load(store, other, match="title+author+year,001").total()["loaded"] == 1


def test_a_point_finding_several_records_rejects_naming_them(store: Store, tmp_path: Path) -> None:
    load(
        store,
        write(
            tmp_path,
            "a.iso",
            iso(cnmarc("A", "同名", year="2001"), cnmarc("B", "同名", year="2001")),
        ),
    )
    report = load(
        store,
        write(tmp_path, "b.iso", iso(cnmarc("C", "同名", year="2001"))),
        match="title+author+year,001",
    )
    reason = report.files[0].rejects[0]["reason"]
    assert "matches 2 records (A, B)" in reason


def test_on_match_and_on_new_actions(store: Store, tmp_path: Path) -> None:
    load(store, write(tmp_path, "a.iso", iso(cnmarc("A", "原题", barcodes=("A1",)))))
    changed = write(
        tmp_path,
        "b.iso",
        iso(cnmarc("A", "改题", barcodes=("A1", "A2")), cnmarc("Z", "新书", barcodes=("Z1",))),
    )
    ignored = load(store, changed, on_match="ignore", on_new="ignore").total()
    assert (ignored["ignored"], ignored["loaded"], ignored["overlaid"]) == (2, 0, 0)
    merged = load(store, changed, on_match="merge-copies", on_new="ignore")
    assert merged.total()["merged"] == 1 and merged.total()["items"]["added"] == 1
    with store.read() as tx:
        assert tx.scalar("SELECT title FROM bib_records WHERE record_id = 'A'") == "原题"
        assert {r[0] for r in tx.execute("SELECT barcode FROM items")} == {"A1", "A2"}
    assert merged.batch is not None
    undo_batch(store, merged.batch, "t")
    with store.read() as tx:
        assert {r[0] for r in tx.execute("SELECT barcode FROM items")} == {"A1"}


def test_duplicate_001s_of_a_real_file_are_named_and_the_later_ones_rejected(
    store: Store,
) -> None:
    path = REAL / "cjk" / "marc4j_chinese_mangled_multibyte.mrc"  # four records, one 001
    report = load(store, path, profile="none")
    file_report = report.files[0]
    assert (file_report.loaded, file_report.rejected) == (1, 3)
    assert [r["record"] for r in file_report.rejects] == [2, 3, 4]
    assert all("also record 1 of this file" in r["reason"] for r in file_report.rejects)
    last = load(store, path, profile="none", on_duplicate="last")
    assert last.files[0].rejected == 0
    assert last.batch is not None
    with store.read() as tx:
        rows = storage.outcomes(tx, last.batch)
    assert [(r.record_no, r.replaced_by) for r in rows] == [(1, 2), (2, 3), (3, 4), (4, None)]


# --- dry run ----------------------------------------------------------------------------------


def _comparable(rows: list[storage.OutcomeRow]) -> list[dict[str, object]]:
    return [r.as_dict() for r in rows]


@pytest.mark.parametrize("on_duplicate", ["reject", "last"])
def test_dry_run_changes_nothing_and_reports_what_the_load_does(
    store: Store, tmp_path: Path, on_duplicate: str
) -> None:
    """On a real file with duplicate 001s: first half loaded, then the whole file with some
    titles changed: dry run and load give the same outcome for every record."""
    from marc.export import stored_record
    from marc.iso2709 import frame_records
    from marc.writer import to_iso2709

    source = REAL / "cjk" / "marc4j_pride-and-prejudice-fixed.mrc"
    with source.open("rb") as handle:
        chunks = [c.data + b"\x1d" for c in frame_records(handle)]
    load(store, write(tmp_path, "half.mrc", b"".join(chunks[:150])), profile="none")
    changed = []
    for number, raw in enumerate(chunks):
        if 100 <= number < 110:  # ten records the vendor corrected
            record = stored_record(raw)
            record.fields.append(Field("500", "  ", [("a", f"Corrected note {number}")]))
            raw = to_iso2709(record, "marc21")
        changed.append(raw)
    vendor = write(tmp_path, "vendor.mrc", b"".join(changed))
    before = dump(store)
    with store.read() as tx:
        batches_before = len(storage.list_batches(tx))
    options: dict[str, Any] = {"profile": "none", "match": "isbn,001", "on_duplicate": on_duplicate}
    dry = load(store, vendor, dry_run=True, batch_size=40, **options)
    assert dump(store) == before
    with store.read() as tx:
        assert len(storage.list_batches(tx)) == batches_before
    real = load(store, vendor, batch_size=25, **options)
    assert real.batch is not None
    with store.read() as tx:
        stored = storage.outcomes(tx, real.batch)
    assert dry.records is not None
    assert _comparable(dry.records) == _comparable(stored)
    outcomes = {r.outcome for r in stored}
    assert {"new", "overlay", "unchanged"} <= outcomes
    if on_duplicate == "reject":
        assert "duplicate" in outcomes
    else:
        assert "duplicate" not in outcomes and any(r.replaced_by for r in stored)
    # The corrected records overlay themselves (other overlays are ISBN matches: the file has
    # several libraries' records of one edition).
    corrected = [r for r in stored if r.outcome == "overlay" and r.matched_id == r.record_id]
    assert corrected and all(
        any(
            c["tag"] == "500" and c["new"].startswith("## $aCorrected note")
            for c in r.changes or []
        )
        for r in corrected
    )
    assert dry.to_dict()["dry_run"] is True and len(dry.to_dict()["records"]) == len(chunks)


def test_wrong_profile_makes_no_ghost_copies_and_undo_takes_the_load_back(store: Store) -> None:
    """LC's sample read with the BNU profile: its 906 $b codes (cbc, ibc…) are no barcodes, so
    no copy is made of them (each is a warning); undo removes the records, as if the load
    never happened, and the file loads again with the right profile."""
    path = REAL / "large" / "mrrc-testbed_loc_bib_sample.mrc"
    before = dump(store, ("Chinese",))
    wrong = load(store, path, profile="bnu", batch_size=100)
    assert wrong.total()["items"]["added"] == 0 and wrong.total()["rejected"] == 0
    assert wrong.total()["warnings_by_kind"]["barcode_implausible"] == 386
    assert wrong.batch is not None
    undo_batch(store, wrong.batch, "t")
    assert dump(store, ("Chinese",)) == before
    right = load(store, path, profile="marc21-852", batch_size=100)
    assert right.total()["loaded"] == wrong.total()["loaded"]


def test_bib_json_of_a_restored_record_reads_back(store: Store, tmp_path: Path) -> None:
    load(store, base_file(tmp_path))
    report = load(store, vendor_file(tmp_path))
    assert report.batch is not None
    undo_batch(store, report.batch, "t")
    with store.read() as tx:
        text = tx.scalar("SELECT bib FROM bib_records WHERE record_id = 'R1'")
    assert BibRecord.from_json(text).title == "旧题名"


def test_database_match_rule_is_configured_and_checked(store: Store, tmp_path: Path) -> None:
    settings = settings_from_dict(
        {"databases": [{"name": "main", "match": ["issn", "001"]}, {"name": "japanese"}]}
    )
    assert settings.database("main").match == ("issn", "001")
    assert settings.database("japanese").match == ("001",)
    with pytest.raises(ConfigError, match=r"databases\[0\]\.match\[0\]: 'isbm'"):
        settings_from_dict({"databases": [{"name": "main", "match": ["isbm"]}]})
    serial = cnmarc("S-1", "学报")
    serial.fields.insert(2, Field("011", "  ", [("a", "1000-0135")]))
    load(store, write(tmp_path, "a.iso", iso(serial)))
    renumbered = cnmarc("S-NEW", "学报（新）")
    renumbered.fields.insert(2, Field("011", "  ", [("a", "1000-0135")]))
    report = load(
        store, write(tmp_path, "b.iso", iso(renumbered)), database=settings.database("main")
    )
    assert report.match == "issn,001"
    assert report.total()["overlaid"] == 1


def test_an_interrupted_load_is_recorded_and_what_it_committed_can_be_undone(
    store: Store, tmp_path: Path
) -> None:
    from gateway.catalogue.loading.loader import Loader, LoadOptions
    from tests.batches_support import MAIN, PROFILES

    before = dump(store)
    path = write(
        tmp_path,
        "many.iso",
        iso(*(cnmarc(f"I{n}", f"书{n}", barcodes=(f"I{n}-1",)) for n in range(30))),
    )
    calls = []

    def stop_on_second_batch(_offset: int) -> None:
        calls.append(_offset)
        if len(calls) == 2:
            raise KeyboardInterrupt

    loader = Loader(
        store,
        LoadOptions(database=MAIN, profile=PROFILES["libgate"], batch_size=10),
        on_progress=stop_on_second_batch,
    )
    report = loader.load([path])  # a Ctrl-C ends the load cleanly (test_load_interrupt.py)
    assert report.interrupted
    with store.read() as tx:
        (batch,) = storage.list_batches(tx)
        assert tx.scalar("SELECT count(*) FROM bib_records") == 20
    assert batch.state == "interrupted" and batch.counts == {"new": 20}
    undo_batch(store, batch.id, "t")
    assert dump(store) == before


def test_load_runs_before_batches_are_listed_and_not_undone(tmp_path: Path) -> None:
    from gateway.store import open_store
    from gateway.store.engine import split_statements
    from gateway.store.migrate import migrate, schema_files

    with open_store(f"sqlite:///{tmp_path / 'old.db'}") as old:
        with old.write() as tx:
            tx.execute(
                "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TEXT NOT NULL)"
            )
            for version, name, sql in schema_files("sqlite")[:11]:
                for statement in split_statements(sql):
                    tx.execute(statement)
                tx.execute(
                    "INSERT INTO schema_version VALUES (?, ?, '2026-01-01')", (version, name)
                )
            tx.execute(
                "INSERT INTO load_runs (started_at, finished_at, database, command, report)"
                " VALUES ('2026-01-01T00:00:00+00:00', '2026-01-01T00:01:00+00:00', 'main',"
                " 'load old.iso', '{}')"
            )
        assert migrate(old) == [12]
        with old.read() as tx:
            (batch,) = storage.list_batches(tx)
        assert (batch.kind, batch.state, batch.detailed) == ("load", "done", False)
        with pytest.raises(UndoRefused, match="recorded before batches kept"):
            undo_batch(old, batch.id, "t")


def test_isbn_matching_reads_the_records_own_isbn_not_its_sets(
    store: Store, tmp_path: Path
) -> None:
    """CNMARC volumes carry the set's ISBN in a later 010: a volume re-sent under a new 001
    matches its own volume by its first ISBN, not every volume by the set's."""
    set_isbn = "978-7-101-00001-6"

    def volume(control: str, own: str, summary: str = "") -> Any:
        record = cnmarc(control, f"资治通鉴 {control[-1]}", isbn=own, summary=summary)
        record.fields.insert(3, Field("010", "  ", [("a", set_isbn)]))
        return record

    load(
        store,
        write(
            tmp_path,
            "set.iso",
            iso(volume("V-1", "978-7-101-00002-3")) + iso(volume("V-2", "978-7-101-00003-0")),
        ),
    )
    resent = write(tmp_path, "new.iso", iso(volume("NEW-1", "978-7-101-00002-3", summary="新")))
    report = load(store, resent, match="isbn")
    assert report.total()["overlaid"] == 1 and report.total()["rejected"] == 0


def test_what_a_batch_keeps_covers_every_column_of_the_tables(store: Store) -> None:
    """Undo restores records, copies, loans and holds from the columns a batch keeps: a
    migration that adds a column must add it there too, or undo would lose it silently."""
    with store.read() as tx:

        def names(table: str) -> set[str]:
            if tx.dialect == "sqlite":
                return {row[1] for row in tx.execute(f"PRAGMA table_info({table})")}
            rows = tx.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = ?",
                (table,),
            )
            return {row[0] for row in rows}

        columns = {table: names(table) for table in ("bib_records", "items", "loans", "holds")}
    # Keys and bookkeeping a version does not carry: the row's identity and the change
    # sequence the search index follows (given anew when the version is restored).
    assert columns["bib_records"] - {"id", "database", "record_id", "change_seq"} == set(
        storage.VERSION_COLUMNS
    )
    assert columns["items"] - {"id", "barcode", "record_pk"} == set(storage.ITEM_STATE_COLUMNS)
    assert columns["loans"] == set(storage.LOAN_COLUMNS)
    assert columns["holds"] == set(storage.HOLD_COLUMNS)
