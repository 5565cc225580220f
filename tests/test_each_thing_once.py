"""Several processes on one database do each thing once (issue 11): N `serve` senders send each
notice once, a crashed sender's claims are taken over after the lease, and concurrent
`libgate holds process` runs all succeed and end where one run would have.

Every process waits for a start file before it works, so that the runs really overlap."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest

from gateway.circulation.engine import DESK
from gateway.cli import main
from gateway.config import NoticeSettings
from gateway.notify import outbox
from gateway.store import Store, open_store
from gateway.store.migrate import migrate
from tests.circulation_support import START, build_library
from tests.serve_support import free_port

pytestmark = pytest.mark.slow


def _processes(store: Store) -> int:
    """Four at once on PostgreSQL; two on SQLite, whose writers take turns anyway."""
    return 4 if store.dialect == "postgresql" else 2


def _start_all(commands: list[list[str]], start: Path) -> list[tuple[int, str, str]]:
    """Start every command, let them all go at once, and wait: (exit status, out, err)."""
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for command in commands
    ]
    time.sleep(0.5)  # imports and connections first, then everyone starts together
    start.touch()
    outputs = [process.communicate(timeout=120) for process in processes]
    return [
        (process.returncode, out, err)
        for process, (out, err) in zip(processes, outputs, strict=True)
    ]


# -- the outbox ------------------------------------------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[Any]]]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list[Any] = []

    class Collect(Message):
        def handle_message(self, message):
            received.append(message)

    controller = Controller(Collect(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, received
    controller.stop()


def _queue(store: Store, count: int) -> None:
    """`count` due notices, told apart by their subjects."""
    with store.write() as tx:
        patron = tx.insert(
            "INSERT INTO patrons (barcode, name, category, email) VALUES (?, ?, ?, ?)",
            ("N1", "读者", "本科生", "reader@example.cn"),
        )
        tx.executemany(
            "INSERT INTO notices (created_at, patron_pk, kind, language, to_address, subject,"
            " body, next_attempt_at) VALUES (?, ?, 'hold_ready', 'zh', ?, ?, 'body', ?)",
            [
                (
                    "2026-03-02T09:00:00Z",
                    patron,
                    "reader@example.cn",
                    f"notice {n}",
                    "2026-03-02T09:00:00Z",
                )
                for n in range(count)
            ],
        )


def _subjects(received: list[Any], expected: int) -> Counter[str]:
    for _ in range(200):  # the server hands a message over just after the client's QUIT
        if len(received) >= expected:
            break
        time.sleep(0.02)
    time.sleep(0.2)  # and any duplicate would have arrived by now
    return Counter(str(make_header(decode_header(message["Subject"]))) for message in received)


def _sender(store_url: str, start: Path, port: int, ahead: float = 0) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.outbox_worker",
        store_url,
        str(start),
        "send",
        str(port),
        str(ahead),
    ]


def test_several_senders_send_each_notice_once(
    store: Store, store_url: str, tmp_path: Path, smtp_server: tuple[int, list[Any]]
) -> None:
    port, received = smtp_server
    _queue(store, 20)
    start = tmp_path / "start"
    runs = _start_all([_sender(store_url, start, port)] * _processes(store), start)
    for status, _out, err in runs:
        assert status == 0, err
    assert sum(json.loads(out)["sent"] for _status, out, _err in runs) == 20
    assert _subjects(received, 20) == Counter(f"notice {n}" for n in range(20))
    notices = outbox.list_notices(store)
    assert {n.state for n in notices} == {"sent"} and {n.attempts for n in notices} == {1}


def test_a_crashed_senders_claims_are_sent_after_the_lease(
    store: Store, store_url: str, tmp_path: Path, smtp_server: tuple[int, list[Any]]
) -> None:
    port, received = smtp_server
    _queue(store, 10)
    start = tmp_path / "start"
    start.touch()
    die = [sys.executable, "-m", "tests.outbox_worker", store_url, str(start), "die", "4"]
    dead = subprocess.run(die, capture_output=True, text=True, timeout=60)
    assert dead.returncode == -9 and json.loads(dead.stdout) == {"claimed": 4}, dead.stderr

    # While the lease lasts, live senders leave the dead one's four alone.
    live = _start_all([_sender(store_url, start, port)] * 2, start)
    assert [status for status, _out, _err in live] == [0, 0], [err for *_, err in live]
    assert sum(json.loads(out)["sent"] for _status, out, _err in live) == 6
    first = _subjects(received, 6)
    assert sum(first.values()) == 6 and set(first.values()) == {1}
    with store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM notices WHERE claimed_by IS NOT NULL") == 4

    # After it, they are taken over and sent, once each.
    after = NoticeSettings().claim_lease_seconds + 1
    late = _start_all([_sender(store_url, start, port, after)] * 2, start)
    assert [status for status, _out, _err in late] == [0, 0], [err for *_, err in late]
    assert sum(json.loads(out)["sent"] for _status, out, _err in late) == 4
    assert _subjects(received, 10) == Counter(f"notice {n}" for n in range(10))
    assert {n.state for n in outbox.list_notices(store)} == {"sent"}


def test_a_claim_is_taken_by_one_sender_until_its_lease_ends(store: Store) -> None:
    from datetime import timedelta

    _queue(store, 2)
    lease = timedelta(minutes=5)
    now = START + timedelta(days=1)
    first = outbox.claim_next(store, now, "one", lease)
    second = outbox.claim_next(store, now, "two", lease)
    assert first is not None and second is not None and first.id != second.id
    assert outbox.claim_next(store, now + lease - timedelta(seconds=1), "three", lease) is None
    taken_over = outbox.claim_next(store, now + lease, "three", lease)
    assert taken_over is not None and taken_over.id == first.id
    outbox.mark_sent(store, taken_over.id, now + lease)
    again = outbox.claim_next(store, now + 2 * lease, "four", lease)
    assert again is not None and again.id == second.id  # "two" never finished: taken over
    outbox.mark_sent(store, again.id, now + 2 * lease)
    assert outbox.claim_next(store, now + 4 * lease, "five", lease) is None  # sent is sent


# -- hold processing -------------------------------------------------------------------------

CONFIG = """
[[patron_categories]]
name = "本科生"
max_loans = 3
max_holds = 2
loan_days = 30
renewals = 1

[[patron_categories]]
name = "教师"
max_loans = 40
max_holds = 10
loan_days = 90
renewals = 3

[[item_types]]
name = "普通外借资料"
circulating = true

[[item_types]]
name = "参考外借资料"
circulating = true
ill_lendable = true

[[item_types]]
name = "阅览资料"
circulating = false

[[locations]]
name = "中文书库"
desk = "二楼借书处"

[[locations]]
name = "综合阅览室-1楼"
desk = "一楼借书处"

[circulation]
default_category = "本科生"
unknown_item_types_circulate = false
"""
# The tests' library (tests/circulation_support.SETTINGS) as a config file for the command.
AS_OF = "2027-03-01T00:00:00"  # a year on: every deadline below has fallen due
QUEUE = [f"Q{n:02}" for n in range(12)]
TITLES = ["T-MING", "T-ONE", "T-TWO", "T-X"]
COPIES = ["M1", "M2", "O1", "W1", "W2", "X1"]


def _library_with_deadlines(store: Store, tmp_path: Path) -> None:
    """Every copy on loan, twelve readers queued for each title, then every copy returned: six
    ready holds, 42 waiting. A year later each ready hold is a no-show that passes its copy on
    (R9), readers are suspended (R11), and the queue's tail expires (R8): about fifty
    deadlines, one transaction each, for the runs to compete for."""
    engine, clock = build_library(store, tmp_path)
    with store.write() as tx:
        for barcode in QUEUE:
            tx.insert(
                "INSERT INTO patrons (barcode, name, category, email) VALUES (?, ?, '教师', ?)",
                (barcode, f"读者{barcode}", f"{barcode.lower()}@example.cn"),
            )
    for copy in COPIES:
        assert engine.checkout("D", copy, DESK).ok
    for barcode in QUEUE:
        for title in TITLES:
            clock.advance(minutes=1)
            assert engine.place_hold(barcode, record=("main", title)).ok
    clock.advance(hours=1)
    for copy in COPIES:
        assert engine.checkin(copy, DESK).ok


def _config(tmp_path: Path, name: str, url: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'[storage]\nurl = "{url}"\n{CONFIG}', encoding="utf-8")
    return path


def _state(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """What hold processing decides, named by barcodes and record ids (the row ids of two
    databases need not agree)."""
    with store.read() as tx:
        return {
            "holds": sorted(
                tuple(row)
                for row in tx.execute(
                    "SELECT p.barcode, b.record_id, h.state, i.barcode, h.ready_at,"
                    " h.pickup_deadline, h.closed_at FROM holds h"
                    " JOIN patrons p ON p.id = h.patron_pk JOIN bib_records b ON b.id = h.record_pk"
                    " LEFT JOIN items i ON i.id = h.item_pk"
                )
            ),
            "readers": sorted(
                tuple(row)
                for row in tx.execute(
                    "SELECT barcode, no_show_count, hold_suspended_until FROM patrons"
                )
            ),
            "events": sorted(
                tuple(row)
                for row in tx.execute(
                    "SELECT e.action, e.at, p.barcode FROM circulation_events e"
                    " LEFT JOIN patrons p ON p.id = e.patron_pk"
                )
            ),
            "notices": sorted(
                tuple(row)
                for row in tx.execute(
                    "SELECT p.barcode, n.kind, n.created_at, n.subject FROM notices n"
                    " JOIN patrons p ON p.id = n.patron_pk"
                )
            ),
        }


def _one_run(tmp_path: Path) -> tuple[dict[str, Any], dict[str, list[tuple[Any, ...]]]]:
    """The same library processed by one run alone: its report and the state it leaves."""
    reference_url = f"sqlite:///{tmp_path / 'one-run.db'}"
    reference = open_store(reference_url)
    migrate(reference)
    (tmp_path / "one-run").mkdir()
    _library_with_deadlines(reference, tmp_path / "one-run")
    config = _config(tmp_path, "one-run", reference_url)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = main(["--config", str(config), "holds", "process", "--as-of", AS_OF, "--json"])
    assert status == 0
    report = json.loads(output.getvalue())
    state = _state(reference)
    reference.close()
    return report, state


def test_concurrent_holds_process_runs_all_succeed_and_act_once(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    (tmp_path / "library").mkdir()
    _library_with_deadlines(store, tmp_path / "library")
    config = _config(tmp_path, "libgate", store_url)
    start = tmp_path / "start"
    command = [
        sys.executable,
        "-m",
        "tests.holds_worker",
        str(start),
        "--config",
        str(config),
        "holds",
        "process",
        "--as-of",
        AS_OF,
        "--json",
    ]
    runs = _start_all([command] * _processes(store), start)
    for status, _out, err in runs:
        assert status == 0, err  # nobody dies part-way
    reports = [json.loads(out) for _status, out, _err in runs]

    one_report, one_state = _one_run(tmp_path)
    assert one_report["no_shows"] > 6 and one_report["expired"] > 0 and one_report["suspended"] > 0
    for count in ("expired", "no_shows", "suspended", "trapped"):
        assert sum(report[count] for report in reports) == one_report[count], count
    assert sorted(e for report in reports for e in report["events"]) == sorted(one_report["events"])
    assert _state(store) == one_state


def test_the_claim_lease_outlasts_one_smtp_attempt() -> None:
    from gateway.config import ConfigError, settings_from_dict

    assert NoticeSettings().claim_lease_seconds == 300
    assert (
        settings_from_dict({"notices": {"claim_lease_seconds": 120}}).notices.claim_lease_seconds
        == 120
    )
    with pytest.raises(ConfigError, match="claim_lease_seconds"):
        settings_from_dict({"notices": {"claim_lease_seconds": 60}})
