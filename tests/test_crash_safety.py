"""kill -9 during `libgate load`, then rerun the same command: the database must end identical
to a clean load, on both engines. Batches are transactions and storing is idempotent."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.store import Store, open_store
from gateway.store.engine import Row
from tests.support import cnmarc, iso

RECORDS = 6000


def dump(store: Store) -> tuple[list[Row], list[Row]]:
    with store.read() as tx:
        records = tx.execute(
            "SELECT database, record_id, format, marc, bib, title, author, year, digest"
            " FROM bib_records ORDER BY database, record_id"
        )
        items = tx.execute(
            "SELECT i.barcode, r.record_id, i.library, i.location, i.call_number, i.item_type,"
            " i.status, i.source FROM items i JOIN bib_records r ON r.id = i.record_pk"
            " ORDER BY i.barcode"
        )
        identifiers = tx.execute(
            "SELECT r.record_id, i.kind, i.value FROM bib_identifiers i"
            " JOIN bib_records r ON r.id = i.record_pk ORDER BY 1, 2, 3"
        )
    plain = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in records]
    return plain, [tuple(row) for row in items] + [tuple(row) for row in identifiers]


def write_config(path: Path, url: str) -> Path:
    path.write_text(f'[storage]\nurl = "{url}"\n[loader]\nbatch_size = 25\n', encoding="utf-8")
    return path


def command(config: Path, data: Path) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", "--config", str(config), "load", str(data)]


@pytest.mark.slow
def test_kill_9_then_rerun_equals_a_clean_load(tmp_path: Path, store_url: str) -> None:
    data = tmp_path / "big.iso"
    data.write_bytes(
        iso(
            *(
                cnmarc(
                    f"K{n:06d}",
                    f"第{n}号测试书目",
                    isbn="",
                    barcodes=(f"B{n:07d}", f"C{n:07d}"),
                    summary="提要" * (n % 5),
                )
                for n in range(RECORDS)
            )
        )
    )
    config = write_config(tmp_path / "crash.toml", store_url)
    chooser = random.Random(20261125)
    kills = 0
    for _ in range(4):
        process = subprocess.Popen(
            command(config, data), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        time.sleep(chooser.uniform(0.4, 1.6))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=60)
    assert kills >= 1, "the load finished before any kill; make the file bigger"
    finished = subprocess.run(command(config, data), capture_output=True, timeout=600)
    assert finished.returncode == 0, finished.stderr.decode()

    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    clean_config = write_config(tmp_path / "clean.toml", clean_url)
    clean = subprocess.run(command(clean_config, data), capture_output=True, timeout=600)
    assert clean.returncode == 0, clean.stderr.decode()

    with open_store(store_url) as crashed_store, open_store(clean_url) as clean_store:
        crashed_records, crashed_rest = dump(crashed_store)
        clean_records, clean_rest = dump(clean_store)
    assert len(clean_records) == RECORDS
    assert crashed_records == clean_records
    assert crashed_rest == clean_rest
