"""SIGHUP reloads the config file (issue 18): SIP2 accounts, ILL partners, policies and the log
level change in a running `libgate serve` without dropping a connection; a bad file is one log
line and the old settings stay; what needs a restart is reported and not applied. And the
search index's own signal, moved to SIGUSR1, is still forwarded to every worker.

The gateways are real processes with real sockets (tests/serve_support.py); the log is read
to know when each process has reloaded (a wait with a deadline, never a sleep)."""

from __future__ import annotations

import http.client
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from twisted.internet import task

from gateway.circulation.clock import FixedClock
from gateway.circulation.engine import Engine
from gateway.circulation.policy import Policy
from gateway.cli import main as libgate
from gateway.config import (
    Settings,
    Sip2Account,
    StorageSettings,
    load_settings,
    settings_from_dict,
)
from gateway.reload import POLICIES, Reloader, changes, in_force
from gateway.store import open_migrated_store
from ill.reading import read_confirmation
from tests.conftest import FIXTURES
from tests.serve_support import (
    free_port,
    running_gateway,
    serving_pid,
    wait_for_workers,
    worker_pids,
)
from tests.sip2_support import Terminal
from tests.test_sru_sip2_availability import COPY
from union.searcher import ReactorUnionSearcher

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux /proc")

WAIT_SECONDS = 60  # for a process to log its reload; the machine may be busy
KIOSK = """
[[sip2.accounts]]
login = "kiosk"
password = "kiosk-pw"
location = "一楼自助借还机"
"""
NEW_KIOSK = """
[[sip2.accounts]]
login = "kiosk2"
password = "kiosk2-pw"
location = "二楼自助借还机"
"""


def config_text(store_url: str, sip2_port: int, workers: int = 1, extra: str = "") -> str:
    """SIP2 only (no SRU, Z39.50 or notices) over `store_url`; `extra` ends the file."""
    return f"""
[storage]
url = "{store_url}"

[service]
workers = {workers}

[notices]
enabled = false

[sru]
listen = []

[z3950]
listen = []

[sip2]
listen = ["tcp:{sip2_port}:interface=127.0.0.1"]
{extra}
"""


class Sc:
    """One self-check terminal on a real socket: each `ask` is one message, one answer."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)

    def ask(self, message: str) -> str:
        self.sock.sendall(message.encode("utf-8") + b"\r")
        answer = b""
        while not answer.endswith(b"\r"):
            chunk = self.sock.recv(4096)
            assert chunk, "the SIP2 server closed the connection"
            answer += chunk
        return answer.decode("utf-8")

    def closed_by_server(self) -> bool:
        return self.sock.recv(4096) == b""

    def login(self, login: str, password: str) -> str:
        return self.ask(f"9300CN{login}|CO{password}|")

    def day_of_work(self) -> None:
        """A kiosk's everyday messages, each answered as it should be."""
        now = time.strftime("%Y%m%d    %H%M%S")
        assert self.ask("9900302.00").startswith("98")
        assert self.ask(f"17{now}AOMAIN|AB{COPY}|").startswith("18")
        status = self.ask(f"23019{now}AOMAIN|AAP0001|AC|")
        assert status.startswith("24") and "|BLY|" in status, status

    def close(self) -> None:
        self.sock.close()


@contextmanager
def terminal(port: int) -> Iterator[Sc]:
    sc = Sc(port)
    try:
        yield sc
    finally:
        sc.close()


def wait_for_log(log: Path, needle: str, count: int = 1) -> str:
    """The log once `needle` shows in it `count` times."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        text = log.read_text("utf-8")
        if text.count(needle) >= count:
            return text
        assert time.monotonic() < deadline, f"{needle!r} x{count} not in the log:\n{text}"
        time.sleep(0.05)


def load(config: Path, *, catalogue: bool) -> None:
    commands = [["patrons", "import", str(FIXTURES / "patrons" / "demo_patrons.csv")]]
    if catalogue:
        demo = str(FIXTURES / "marc" / "demo_main.iso")
        commands.insert(0, ["load", "--database", "main", demo])
    for args in commands:
        assert libgate(["--config", str(config), *args]) == 0


# --- SIP2 accounts: the test -----------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_adds_a_sip2_account_while_other_sessions_stay_connected(
    tmp_path: Path, store_url: str, workers: int
) -> None:
    port = free_port()
    config = tmp_path / "libgate.toml"
    config.write_text(config_text(store_url, port, workers, KIOSK), encoding="utf-8")
    load(config, catalogue=False)
    log = config.with_suffix(".log")
    with running_gateway(config, [port]) as process:
        pids = wait_for_workers(process.pid, workers) if workers > 1 else {process.pid}
        with terminal(port) as kiosk:
            assert kiosk.login("kiosk", "kiosk-pw").startswith("941")
            kiosk.day_of_work()
            with terminal(port) as stranger:  # before the reload: not an account yet
                assert stranger.login("kiosk2", "kiosk2-pw").startswith("940")

            config.write_text(config_text(store_url, port, workers, KIOSK + NEW_KIOSK), "utf-8")
            process.send_signal(signal.SIGHUP)
            text = wait_for_log(log, "reload: applied sip2 accounts (+1 -0 ~0)", workers)

            # The new account logs in and works at every worker (connections go to whichever
            # accepts first: asked until each worker has served one).
            served: set[int] = set()
            for _ in range(200):
                with terminal(port) as new:
                    assert new.login("kiosk2", "kiosk2-pw").startswith("941")
                    new.day_of_work()
                    client_port = new.sock.getsockname()[1]
                    served.add(serving_pid(port, client_port, pids) or 0)
                if pids <= served:
                    break
            assert pids <= served
            # The kiosk logged in before the reload, on the same connection, keeps working.
            kiosk.day_of_work()
        assert process.poll() is None
        if workers > 1:
            assert worker_pids(process.pid) == pids  # no worker was restarted
    assert "restart to apply" not in text


# --- a bad file, and what needs a restart ---------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_a_bad_file_is_one_line_and_a_changed_listener_waits_for_a_restart(
    tmp_path: Path, workers: int
) -> None:
    port, other_port = free_port(), free_port()
    store_url = f"sqlite:///{tmp_path / 'library.db'}"
    config = tmp_path / "libgate.toml"
    config.write_text(config_text(store_url, port, workers, KIOSK), encoding="utf-8")
    load(config, catalogue=False)
    log = config.with_suffix(".log")
    with running_gateway(config, [port]) as process:
        pids = wait_for_workers(process.pid, workers) if workers > 1 else set()
        with terminal(port) as kiosk:
            assert kiosk.login("kiosk", "kiosk-pw").startswith("941")

            # A misspelt key: one line (from the supervisor if there is one), nothing applied,
            # still serving.
            bad = config_text(store_url, port, workers, KIOSK + NEW_KIOSK)
            bad = bad.replace("workers", "worker")
            config.write_text(bad, encoding="utf-8")
            process.send_signal(signal.SIGHUP)
            wait_for_log(log, "still serving with the settings in force")
            kiosk.day_of_work()
            with terminal(port) as stranger:
                assert stranger.login("kiosk2", "kiosk2-pw").startswith("940")

            # Another port for SIP2, and the new account: the account is applied, the port
            # is reported and not listened on.
            moved = config_text(store_url, other_port, workers, KIOSK + NEW_KIOSK)
            moved = moved.replace("[service]", '[service]\nlog_level = "debug"')
            config.write_text(moved, encoding="utf-8")
            process.send_signal(signal.SIGHUP)
            needle = "reload: applied sip2 accounts (+1 -0 ~0), log level"
            text = wait_for_log(log, needle, workers)
            with terminal(port) as new:
                assert new.login("kiosk2", "kiosk2-pw").startswith("941")
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", other_port), timeout=5).close()
            kiosk.day_of_work()

            # Every process reopened the search index too, as SIGHUP did before it reloaded the
            # config (its hooks log at debug, the level just applied); and the index writer's
            # own signal, SIGUSR1 now, still reaches every worker.
            wait_for_log(log, "search index changed", workers)
            process.send_signal(signal.SIGUSR1)
            wait_for_log(log, "search index changed", 2 * workers)
            kiosk.day_of_work()

            # The new account removed again: its session logged in now is closed at its next
            # message, unanswered; the other kiosk carries on.
            with terminal(port) as removed:
                assert removed.login("kiosk2", "kiosk2-pw").startswith("941")
                config.write_text(moved.replace(NEW_KIOSK, ""), encoding="utf-8")
                process.send_signal(signal.SIGHUP)
                wait_for_log(log, "reload: applied sip2 accounts (+0 -1 ~0)", workers)
                removed.sock.sendall(b"9900302.00\r")
                assert removed.closed_by_server()
            wait_for_log(log, "account=kiosk2 peer=127.0.0.1 command=99 outcome=account-revoked")
            kiosk.day_of_work()
        assert process.poll() is None
        if workers > 1:  # none ended by a signal it did not handle
            assert worker_pids(process.pid) == pids
    lines = text.splitlines()
    errors = [line for line in lines if "still serving with the settings in force" in line]
    assert len(errors) == 1, errors
    assert "service: unknown key 'worker'" in errors[0]
    restart = [line for line in lines if "restart to apply" in line]
    assert len(restart) == 1 and "reload: [sip2] listen changed; restart to apply" in restart[0]


# --- policies and ILL partners --------------------------------------------------------------

CATEGORIES = """
[[patron_categories]]
name = "本科生"
loan_days = {days}

[[patron_categories]]
name = "研究生"

[[patron_categories]]
name = "教师"
"""
OURS = "ISIL:CN-SHL"
NEWCOMER = "ISIL:CN-NEW"


def ill_request(port: int) -> bool:
    """A partner's ISO 18626 request from CN-NEW to us: True when confirmed OK."""
    sample = FIXTURES / "iso18626" / "samples" / "RequestSample1ForISOService.xml"
    body = sample.read_bytes()
    body = body.replace(b"OCLC-ABCDE", b"CN-SHL", 1).replace(b"OCLC-ABCDE", b"CN-NEW", 1)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", "/iso18626", body, {"Content-Type": "application/xml"})
        answer = connection.getresponse().read()
    finally:
        connection.close()
    return read_confirmation(answer, 1 << 20).confirmation.ok


def due_day(answer: str) -> date:
    """The due date (AH) of a 12 checkout response."""
    field = next(f for f in answer.split("|") if f.startswith("AH"))
    return date(int(field[2:6]), int(field[6:8]), int(field[8:10]))


def test_a_loan_period_and_an_ill_partner_apply_after_sighup(
    tmp_path: Path, store_url: str
) -> None:
    sip2_port, ill_port = free_port(), free_port()
    config = tmp_path / "libgate.toml"
    ill = f'\n[ill]\nlisten = ["tcp:{ill_port}:interface=127.0.0.1"]\nagency_id = "{OURS}"\n'
    partner = f'\n[[ill.partners]]\nagency_id = "{NEWCOMER}"\nname = "New partner"\n'

    def write(days: int, partners: str) -> None:
        text = config_text(store_url, sip2_port, 1, KIOSK + ill + partners)
        config.write_text(text + CATEGORIES.format(days=days), encoding="utf-8")

    write(30, "")
    load(config, catalogue=True)
    log = config.with_suffix(".log")
    now = time.strftime("%Y%m%d    %H%M%S")
    checkout = f"11YN{now}{' ' * 18}AOMAIN|AAP0001|AB{COPY}|AC|"
    checkin = f"09N{now}{now}AP一楼|AOMAIN|AB{COPY}|AC|"
    with running_gateway(config, [sip2_port, ill_port]) as process, terminal(sip2_port) as sc:
        assert sc.login("kiosk", "kiosk-pw").startswith("941")
        first = sc.ask(checkout)
        assert first.startswith("121"), first
        assert sc.ask(checkin).startswith("101")
        assert not ill_request(ill_port)  # not a partner yet

        write(7, partner)
        process.send_signal(signal.SIGHUP)
        text = wait_for_log(log, "reload: applied")
        second = sc.ask(checkout)  # the same connection, the next checkout: 7 days
        assert second.startswith("121"), second
        assert ill_request(ill_port)
    assert (due_day(first) - due_day(second)).days in (22, 23, 24)  # 30 - 7, around midnight
    assert "reload: applied policies, ill partners" in text


# --- what a reload sorts, and a removed account's session -----------------------------------


def test_live_keys_are_applied_and_the_rest_waits_for_a_restart() -> None:
    old = settings_from_dict({"sip2": {"accounts": [{"login": "a", "password": "p"}]}})
    new = settings_from_dict(
        {
            "sip2": {"listen": ["tcp:7001"], "accounts": [{"login": "b", "password": "p"}]},
            "service": {"log_level": "debug", "workers": 3},
            "holds": {"pickup_days": 3, "process_every_seconds": 60},
        }
    )
    found = changes(old, new)
    assert {c.where: c.part for c in found} == {
        "[service] workers": None,
        "[service] log_level": "log level",
        "[holds] pickup_days": "policies",
        "[holds] process_every_seconds": None,
        "[sip2] listen": None,
        "[sip2] accounts": "sip2 accounts",
    }
    after = in_force(old, new, found)
    assert after.sip2.accounts == new.sip2.accounts and after.holds.pickup_days == 3
    assert after.sip2.listen == old.sip2.listen and after.service.workers == old.service.workers
    assert after.holds.process_every_seconds == old.holds.process_every_seconds
    assert changes(after, new) == [c for c in found if c.part is None]


def test_a_removed_account_or_a_new_password_ends_its_sessions(tmp_path: Path) -> None:
    """Sans I/O: the session asks the accounts in force at each message (no store is read)."""
    store = open_migrated_store(StorageSettings(url=f"sqlite:///{tmp_path / 'library.db'}"))
    clock = FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    engine = Engine(store, Policy.from_settings(Settings()), clock)
    accounts = (
        Sip2Account(login="sc", password="pw", location="一楼"),
        Sip2Account(login="other", password="pw2"),
    )
    kept, removed, repassworded = (Terminal(engine, clock, accounts=accounts) for _ in "abc")
    for sc, login, password in (
        (kept, "sc", "pw"),
        (removed, "other", "pw2"),
        (repassworded, "sc", "pw"),
    ):
        assert sc.login(login, password).fixed["ok"] == "1"
    moved = replace(accounts[0], location="二楼")
    for sc in (kept, removed):
        sc.session.accounts.use((moved,))
    repassworded.session.accounts.use((replace(moved, password="new"),))
    status = {"status_code": "0", "max_print_width": "030", "protocol_version": "2.00"}
    assert kept.send("99", status).command == "98"
    assert kept.session.account == moved  # its other settings apply from this message
    for ended in (removed, repassworded):
        assert ended.send_raw(ended.frame("17", {"transaction_date": "20260302    090000"})) == b""
        assert ended.closed
    store.close()


def test_a_part_that_cannot_take_the_new_settings_leaves_every_part_as_it_was(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "libgate.toml"
    config.write_text(KIOSK, encoding="utf-8")
    reloader = Reloader(load_settings(str(config)))
    committed: list[str] = []
    reloader.add("sip2 accounts", lambda new: lambda: committed.append("accounts"))

    def refuse(new: Settings) -> Callable[[], None]:
        raise ValueError("no such calendar")

    reloader.add(POLICIES, refuse)
    before = reloader.settings
    config.write_text(KIOSK + NEW_KIOSK + CATEGORIES.format(days=7), encoding="utf-8")
    assert reloader.reload() is None
    assert committed == [] and reloader.settings is before
    assert "cannot apply the new settings (no such calendar); nothing applied" in caplog.text


def test_union_search_takes_new_targets_and_options() -> None:
    first = {"name": "PKU", "url": "z3950:z.pku.example:210/main"}
    second = {"name": "THU", "url": "http://sru.thu.example/main"}
    searcher = ReactorUnionSearcher(
        settings_from_dict({"union": {"targets": [first]}}), task.Clock()
    )
    assert searcher.library_names() == ["PKU"]
    union = {"targets": [first, second], "timeout": 5, "idle_connections_per_target": 0}
    searcher.reconfigure(settings_from_dict({"union": union}))
    assert searcher.library_names() == ["PKU", "THU"]
    assert searcher.timeout == 5 and searcher.pool.idle_per_target == 0
