"""Conflicting operations at once — the same copy, the same reader, trap against checkout —
from threads and from two processes, on both engines: the rules and constraints always hold."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.store import Store
from tests.circulation_support import SETTINGS, build_library
from tests.concurrency_worker import run


def violations(store: Store) -> list[str]:
    """Every invariant of the engine, checked against the stored state."""
    found: list[str] = []
    limits = {c.name: c.max_loans for c in SETTINGS.patron_categories}
    hold_limits = {c.name: c.max_holds for c in SETTINGS.patron_categories}
    with store.read() as tx:
        for item_pk, count in tx.execute(
            "SELECT item_pk, count(*) FROM loans WHERE returned_at IS NULL GROUP BY item_pk HAVING count(*) > 1"
        ):
            found.append(f"copy {item_pk} has {count} open loans")
        for barcode, category, count in tx.execute(
            "SELECT p.barcode, p.category, count(*) FROM loans l JOIN patrons p ON p.id = l.patron_pk"
            " WHERE l.returned_at IS NULL GROUP BY p.barcode, p.category"
        ):
            if count > limits[category]:
                found.append(f"reader {barcode} has {count} loans, limit {limits[category]}")
        for barcode, category, count in tx.execute(
            "SELECT p.barcode, p.category, count(*) FROM holds h JOIN patrons p ON p.id = h.patron_pk"
            " WHERE h.state IN ('waiting', 'ready') GROUP BY p.barcode, p.category"
        ):
            if count > hold_limits[category]:
                found.append(f"reader {barcode} has {count} holds, limit {hold_limits[category]}")
        for item_pk, count in tx.execute(
            "SELECT item_pk, count(*) FROM holds WHERE state = 'ready' GROUP BY item_pk HAVING count(*) > 1"
        ):
            found.append(f"copy {item_pk} is trapped {count} times")
        for (hold_id,) in tx.execute(
            "SELECT h.id FROM holds h JOIN loans l ON l.item_pk = h.item_pk AND l.returned_at IS NULL"
            " WHERE h.state = 'ready'"
        ):
            found.append(f"ready hold {hold_id} has its copy on loan")  # R14
        for (hold_id,) in tx.execute(
            "SELECT h.id FROM holds h JOIN loans l ON l.record_pk = h.record_pk AND l.patron_pk = h.patron_pk"
            " AND l.returned_at IS NULL WHERE h.state = 'waiting' AND l.checked_out_at < h.placed_at"
        ):
            found.append(f"hold {hold_id} placed while its reader had the title on loan")  # R3
        for status, count in tx.execute(
            "SELECT i.status, count(*) FROM items i JOIN loans l ON l.item_pk = i.id AND l.returned_at IS NULL"
            " WHERE i.status <> '借出' GROUP BY i.status"
        ):
            found.append(f"{count} copies on loan with status {status}")
    return found


@pytest.mark.slow
def test_100_concurrent_conflicting_operations_from_threads(
    store: Store, tmp_path: Path, store_url: str
) -> None:
    build_library(store, tmp_path)
    results = run(store_url, seed=1, threads=10, rounds=12)
    assert sum(results.values()) == 120
    assert results.get("checkout:ok", 0) >= 1 and results.get("checkout:refused", 0) >= 1
    assert violations(store) == []


@pytest.mark.slow
def test_two_processes_at_once(store: Store, tmp_path: Path, store_url: str) -> None:
    build_library(store, tmp_path)
    command = [sys.executable, "-m", "tests.concurrency_worker", store_url]
    processes = [
        subprocess.Popen(
            [*command, str(seed), "6", "10"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (11, 12)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert sum(json.loads(out).values()) == 60
    assert violations(store) == []


@pytest.mark.slow
def test_one_reader_racing_for_the_loan_limit(store: Store, tmp_path: Path) -> None:
    """Self-check machines send checkouts for one reader in parallel (FOLIO's bug)."""
    import threading

    from gateway.circulation.clock import SystemClock
    from gateway.circulation.engine import Engine
    from gateway.circulation.policy import Policy

    build_library(store, tmp_path)
    engine = Engine(store, Policy.from_settings(SETTINGS), SystemClock())
    results: list[bool] = []
    barcodes = ["O1", "X1", "W1", "W2", "M1", "M2"]
    threads = [
        threading.Thread(target=lambda b=b: results.append(engine.checkout("A", b).ok))
        for b in barcodes
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 3  # 本科生: max_loans 3
    assert violations(store) == []


@pytest.mark.slow
def test_many_readers_racing_for_one_copy(store: Store, tmp_path: Path) -> None:
    import threading

    from gateway.circulation.clock import SystemClock
    from gateway.circulation.engine import Engine
    from gateway.circulation.policy import Policy

    build_library(store, tmp_path)
    engine = Engine(store, Policy.from_settings(SETTINGS), SystemClock())
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda r=r: results.append(engine.checkout(r, "O1").ok))
        for r in ["A", "B", "C", "D"] * 5
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1
    assert violations(store) == []
