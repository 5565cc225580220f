"""A SIP2 status message reads each thing once (issue 12): a reader's account summary (23, 63)
reads the reader, the loans, the holds and the open fees once each, for the summary and for
the checks behind its flags; item information (17) reads a copy in one statement."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.circulation.engine import DESK, Engine
from gateway.store import Store
from tests.circulation_support import FixedClock, build_library


@pytest.fixture
def library(store: Store, tmp_path: Path) -> tuple[Engine, FixedClock]:
    return build_library(store, tmp_path)


@pytest.fixture
def statements(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every SQL statement the store's transactions run, from now on."""
    seen: list[str] = []
    with store.read() as tx:
        kind = type(tx)
    execute = kind.execute

    def recording(self: object, sql: str, params: object = ()) -> object:
        seen.append(sql)
        return execute(self, sql, params)  # type: ignore[arg-type]

    monkeypatch.setattr(kind, "execute", recording)
    yield seen


def test_the_account_summary_reads_each_thing_once(
    library: tuple[Engine, FixedClock], statements: list[str]
) -> None:
    engine, _clock = library
    assert engine.checkout("A", "M1", channel=DESK).ok
    assert engine.checkout("A", "X1", channel=DESK).ok
    assert engine.checkout("B", "O1", channel=DESK).ok
    assert engine.place_hold("A", item_barcode="O1", channel=DESK).ok
    assert engine.add_fee("A", 150, description="late").ok
    statements.clear()
    summary = engine.patron_summary("A")
    assert summary is not None
    assert [loan.item_barcode for loan in summary.loans] == ["M1", "X1"]
    assert [loan.title for loan in summary.loans] == ["书名T-MING", "书名T-X"]
    assert len(summary.waiting_holds) == 1 and summary.fees_total == 150
    assert len(statements) == len(set(statements)), statements
    assert sum("FROM loans" in sql for sql in statements) == 1
    assert sum("FROM holds" in sql and "patron_pk = ?" in sql for sql in statements) == 1
    assert sum("FROM fees" in sql for sql in statements) == 1


def test_item_information_reads_a_copy_in_one_statement(
    library: tuple[Engine, FixedClock], statements: list[str]
) -> None:
    engine, _clock = library
    assert engine.checkout("B", "O1", channel=DESK).ok
    assert engine.place_hold("C", item_barcode="O1", channel=DESK).ok
    statements.clear()
    item = engine.item_info("O1")
    assert item is not None
    assert (item.loan_patron_barcode, item.hold_queue, item.title) == ("B", 1, "书名T-ONE")
    assert item.hold_patron_barcode is None
    assert len(statements) == 1, statements
    assert engine.checkin("O1", channel=DESK).ok  # trapped for C's hold (R6)
    statements.clear()
    item = engine.item_info("O1")
    assert item is not None
    assert (item.loan_patron_barcode, item.hold_queue) == (None, 0)
    assert (item.hold_patron_barcode, item.hold_patron_name) == ("C", "丙")
    assert item.pickup_desk == "二楼借书处" and item.pickup_deadline
    assert len(statements) == 1, statements
