"""Ctrl-C during `libgate load`, as a terminal sends it (SIGINT to the whole process group,
the prepare workers included): the load ends cleanly, on both engines. No traceback from any
process, exit code 130, the batches committed before it stay and are what the report counts,
the report and the load run say `interrupted`, and the same command run again loads the rest.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.cli.errors import EXIT_INTERRUPTED, EXIT_OK
from gateway.store import open_store
from gateway.store.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
RECORDS = 20000
WAIT_FOR_FIRST_BATCH = 120.0  # seconds; a guard against a hung test, not a measurement


def stored(store_url: str) -> int:
    with open_store(store_url) as store, store.read() as tx:
        return int(tx.scalar("SELECT count(*) FROM bib_records") or 0)


@pytest.mark.slow
def test_ctrl_c_ends_a_load_cleanly(tmp_path: Path, store_url: str) -> None:
    data = tmp_path / "big.iso"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "generate_cnmarc.py"), "--records", str(RECORDS)]
        + ["--seed", "17", "-o", str(data)],
        check=True,
        capture_output=True,
    )
    config = tmp_path / "libgate.toml"
    # Two prepare workers, so that they get the SIGINT too; small batches stop sooner.
    config.write_text(
        f'[storage]\nurl = "{store_url}"\n[loader]\nworkers = 2\nbatch_size = 200\n',
        encoding="utf-8",
    )
    with open_store(store_url) as store:
        migrate(store)  # the schema first, so that the test can count what is stored
    report_path = tmp_path / "report.json"
    command = [sys.executable, "-m", "gateway.cli", "--config", str(config), "load"]
    command += ["--report", str(report_path), str(data)]
    # A session of its own: its process group is what a terminal's Ctrl-C reaches.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + WAIT_FOR_FIRST_BATCH
    while stored(store_url) == 0 and process.poll() is None:
        assert time.monotonic() < deadline, "no batch was committed"
        time.sleep(0.05)
    assert process.poll() is None, "the load finished before Ctrl-C; make the file bigger"
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    stderr = err.decode()

    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "stopping after the batch in hand" in stderr
    assert "interrupted (Ctrl-C)" in out.decode()
    report = json.loads(report_path.read_text("utf-8"))
    assert report["interrupted"] is True
    total = report["total"]
    kept = stored(store_url)
    assert 0 < kept < RECORDS
    assert total["loaded"] == total["framed"] == kept  # what the report counts is stored
    with open_store(store_url) as store, store.read() as tx:
        run = tx.one("SELECT finished_at, report, state, counts FROM batches")
    assert run is not None and run[0]
    assert json.loads(run[1])["interrupted"] is True
    assert run[2] == "interrupted" and json.loads(run[3]) == {"new": kept}

    again = subprocess.run(command, capture_output=True, timeout=600)
    assert again.returncode == EXIT_OK, again.stderr.decode()
    rest = json.loads(report_path.read_text("utf-8"))
    assert rest["interrupted"] is False
    assert (rest["total"]["unchanged"], rest["total"]["loaded"]) == (kept, RECORDS - kept)
    assert stored(store_url) == RECORDS
