"""kill -9 of `libgate batches undo` leaves the catalogue either as before the undo or as after
it, never between, on both engines: undo is one transaction. The undo runs as a subprocess
that pauses (LIBGATE_TEST_UNDO_PAUSE) inside its transaction, after it wrote everything, or
just after its commit, and is killed there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.catalogue.batches import storage
from gateway.catalogue.batches.undo import PAUSE_ENV
from gateway.store import Store
from tests.batches_support import dump, load
from tests.support import cnmarc, iso

QUERIES = ("旧书", "新书", "改过")


def catalogue(tmp_path: Path, store: Store) -> tuple[dict[str, object], int]:
    """A base load, then a batch that adds, overlays and creates copies: the dump before that
    batch, and its number."""
    base = tmp_path / "base.iso"
    base.write_bytes(iso(*(cnmarc(f"K{n}", f"旧书{n}", barcodes=(f"K{n}-1",)) for n in range(40))))
    load(store, base)
    before = dump(store, QUERIES)
    vendor = tmp_path / "vendor.iso"
    vendor.write_bytes(
        iso(
            *(
                cnmarc(f"K{n}", f"改过的旧书{n}", barcodes=(f"K{n}-1", f"K{n}-2"))
                for n in range(20)
            ),
            *(cnmarc(f"N{n}", f"新书{n}", barcodes=(f"N{n}-1",)) for n in range(30)),
        )
    )
    report = load(store, vendor)
    assert report.batch is not None
    return before, report.batch


def undo_killed_at(point: str, config: Path, batch: int, tmp_path: Path) -> None:
    marker = tmp_path / f"paused-{point}"
    env = {**os.environ, PAUSE_ENV: f"{point}:{marker}"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "--config",
            str(config),
            "batches",
            "undo",
            str(batch),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(f"undo ended before pausing: {process.stderr.read().decode()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("undo never reached its pause")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_undo_killed_inside_its_transaction_changes_nothing(
    store: Store, config_file: Path, tmp_path: Path
) -> None:
    _before, batch = catalogue(tmp_path, store)
    loaded = dump(store, QUERIES)
    undo_killed_at("inside", config_file, batch, tmp_path)
    assert dump(store, QUERIES) == loaded
    with store.read() as tx:
        summary = storage.batch_by_id(tx, batch)
    assert summary is not None and summary.state == "done"


@pytest.mark.slow
def test_undo_killed_after_its_commit_is_whole_and_search_catches_up(
    store: Store, config_file: Path, tmp_path: Path
) -> None:
    before, batch = catalogue(tmp_path, store)
    # This process's search index saw the load; the killed undo never told it of its commit,
    # so the searches of the dump below catch it up from the store's change sequence.
    assert dump(store, QUERIES) != before
    undo_killed_at("after", config_file, batch, tmp_path)
    assert dump(store, QUERIES) == before
    with store.read() as tx:
        summary = storage.batch_by_id(tx, batch)
    assert summary is not None and summary.state == "undone"
