"""SIGTERM drains a real `libgate serve` (issue 18, "Clean start and stop"): it stops accepting
at once, finishes the transactions in flight and answers them, sends the due notices, and
exits within `[service] stop_timeout`, on both storage engines, with one process and under
the supervisor.

No timing decides an outcome here. A request is made to wait on a lock the test holds (the
SQLite write lock, or PostgreSQL's lock on the loans table), and it is known to be in the
gateway's hands once /proc/net/tcp shows its bytes acknowledged by the server's kernel and
read from the server's socket (the reactor hands a frame to the engine in the same turn as
it reads it; the signal is handled in a later turn)."""

from __future__ import annotations

import email
import http.client
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from gateway.catalogue.loading.loader import Loader, LoadOptions
from gateway.circulation.clock import stamp
from gateway.config import BUILTIN_PROFILES, ConfigError, DatabaseSettings, settings_from_dict
from gateway.draining import EXIT_STOP_FORCED, STOP_MARGIN_SECONDS
from gateway.listening import SharedSocket
from gateway.store import StoreError, open_store
from gateway.store.migrate import migrate
from gateway.supervisor import sharing
from gateway.z3950_codec import ber
from gateway.z3950_codec.messages import CLOSE_SHUTDOWN
from tests import z3950_support as z
from tests.serve_support import START_SECONDS, free_port, wait_for_workers
from tests.support import cnmarc, iso

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux /proc")

PATRONS = ["S0001", "S0002", "S0003"]
COPIES_EACH = 4  # copies per kiosk: each kiosk circulates its own
EXIT_SECONDS = 60  # generous: only to end a hung test


# --- a library, a config, a gateway ------------------------------------------------------------


def copies_of(patron: str) -> list[str]:
    return [f"{patron}-C{n}" for n in range(COPIES_EACH)]


def make_library(url: str, home: Path) -> None:
    """Each patron's copies, one title each, loaded through the loader; the patrons without
    PIN; the email address is for notices."""
    store = open_store(url)
    try:
        migrate(store)
        records = [
            cnmarc(f"T-{copy}", f"书名{copy}", barcodes=(copy,))
            for patron in PATRONS
            for copy in copies_of(patron)
        ]
        path = home / "library.iso"
        path.write_bytes(iso(*records))
        profile = next(p for p in BUILTIN_PROFILES if p.name == "libgate")
        Loader(store, LoadOptions(database=DatabaseSettings(name="main"), profile=profile)).load(
            [path]
        )
        with store.write() as tx:
            for number, barcode in enumerate(PATRONS):
                tx.insert(
                    "INSERT INTO patrons (barcode, name, pin_hash, category, email)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (barcode, f"读者{number}", "", "本科生", f"{barcode.lower()}@example.cn"),
                )
    finally:
        store.close()


@dataclass
class Ports:
    sip2: int = field(default_factory=free_port)
    sru: int = field(default_factory=free_port)
    z3950: int = field(default_factory=free_port)


def write_config(
    home: Path, url: str, ports: Ports, workers: int, stop_timeout: float, extra: str = ""
) -> Path:
    config = home / "libgate.toml"
    config.write_text(
        f"""
[storage]
url = "{url}"
busy_timeout_ms = 60000
search_index_dir = "{home / "index"}"

[service]
workers = {workers}
stop_timeout = {stop_timeout}

[sip2]
listen = ["tcp:{ports.sip2}:interface=127.0.0.1"]

[[sip2.accounts]]
login = "kiosk"
password = "kiosk-pw"
location = "一楼自助借还机"
role = "selfcheck"

[sru]
listen = ["tcp:{ports.sru}:interface=127.0.0.1"]

[z3950]
listen = ["tcp:{ports.z3950}:interface=127.0.0.1"]
{extra}
""",
        encoding="utf-8",
    )
    return config


@contextmanager
def serving(config: Path, ports: Ports, workers: int) -> Iterator[subprocess.Popen[bytes]]:
    """`libgate serve` until the block ends (killed if still running); its output beside
    CONFIG. The tests send the signal and read the exit code themselves."""
    log_path = config.with_suffix(".log")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + START_SECONDS
            for port in (ports.sip2, ports.sru, ports.z3950):
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        break
                    except OSError:
                        assert process.poll() is None, log_path.read_text("utf-8")
                        assert time.monotonic() < deadline, "libgate serve did not listen"
                        time.sleep(0.1)
            if workers > 1:
                wait_for_workers(process.pid, workers)
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def log_text(config: Path) -> str:
    return config.with_suffix(".log").read_text("utf-8")


# --- a self-check terminal ---------------------------------------------------------------------


def now() -> str:
    return time.strftime("%Y%m%d    %H%M%S")


class Kiosk:
    """A SIP2 terminal on a real socket: sends a request with its byte-sum checksum and reads
    the answer up to CR (the checksum is not checked here: tests/sip2_support.py does)."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=EXIT_SECONDS)
        self.buffer = b""
        self.sequence = 0

    def send(self, request: str) -> None:
        head = request.encode("utf-8") + f"AY{self.sequence}AZ".encode("ascii")
        self.socket.sendall(head + f"{(-sum(head)) & 0xFFFF:04X}\r".encode("ascii"))
        self.sequence = (self.sequence + 1) % 10

    def answer(self) -> str:
        """The next answer; ConnectionError when the server closed the connection first."""
        while b"\r" not in self.buffer:
            chunk = self.socket.recv(4096)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.buffer += chunk
        frame, _, self.buffer = self.buffer.partition(b"\r")
        return frame.decode("utf-8")

    def exchange(self, request: str) -> str:
        self.send(request)
        return self.answer()

    def login(self) -> None:
        assert self.exchange("9300CNkiosk|COkiosk-pw|").startswith("941")

    def closed_by_server(self) -> bool:
        """True once the server has closed the connection (EOF, or a reset)."""
        try:
            return self.socket.recv(4096) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.socket.close()


def checkout(patron: str, copy: str) -> str:
    return f"11YN{now()}{' ' * 18}AOMAIN|AA{patron}|AB{copy}|AC|"


def checkin(copy: str) -> str:
    return f"09N{now()}{now()}AP|AOMAIN|AB{copy}|AC|"


def item_information(copy: str) -> str:
    return f"17{now()}AOMAIN|AB{copy}|"


class Z3950Association:
    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=EXIT_SECONDS)
        self.buffer = b""

    def receive(self) -> tuple[str, dict[str, Any]]:
        while (length := ber.apdu_length(self.buffer, 1 << 24)) is None:
            chunk = self.socket.recv(65536)
            assert chunk, "closed without an APDU"
            self.buffer += chunk
        apdu, self.buffer = self.buffer[:length], self.buffer[length:]
        return z.answer(apdu)

    def exchange(self, apdu: bytes) -> tuple[str, dict[str, Any]]:
        self.socket.sendall(apdu)
        return self.receive()


def tcp_queues(local_port: int, remote_port: int) -> tuple[int, int] | None:
    """(tx_queue, rx_queue) of the 127.0.0.1 TCP socket from `local_port` to `remote_port`."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
        if (local, remote) == (local_port, remote_port):
            tx, rx = fields[4].split(":")
            return int(tx, 16), int(rx, 16)
    return None


def wait_until_read_by_server(client: socket.socket, server_port: int) -> None:
    """Until what `client` sent is acknowledged by the server's kernel and read by the server."""
    client_port = client.getsockname()[1]
    deadline = time.monotonic() + EXIT_SECONDS
    while True:
        sent = tcp_queues(client_port, server_port)
        received = tcp_queues(server_port, client_port)
        if sent is not None and received is not None and sent[0] == 0 and received[1] == 0:
            return
        assert time.monotonic() < deadline, (sent, received)
        time.sleep(0.01)


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def wait_until_refused(port: int) -> None:
    """Until a new connection to `port` is refused (the stop closes the listeners at once; a
    worker may accept one more before its signal is handled)."""
    deadline = time.monotonic() + EXIT_SECONDS
    while not refused(port):
        assert time.monotonic() < deadline, f"port {port} still accepts"
        time.sleep(0.05)


# --- the store's side ------------------------------------------------------------------------


def loans_by_copy(url: str) -> dict[str, tuple[int, int, int, int]]:
    """Per copy: (loans, loans returned, checkout events, checkin events)."""
    store = open_store(url)
    try:
        with store.read() as tx:
            rows = tx.execute(
                "SELECT i.barcode,"
                " (SELECT COUNT(*) FROM loans l WHERE l.item_pk = i.id),"
                " (SELECT COUNT(*) FROM loans l WHERE l.item_pk = i.id"
                "  AND l.returned_at IS NOT NULL),"
                " (SELECT COUNT(*) FROM circulation_events e WHERE e.item_pk = i.id"
                "  AND e.action = 'checkout'),"
                " (SELECT COUNT(*) FROM circulation_events e WHERE e.item_pk = i.id"
                "  AND e.action = 'checkin')"
                " FROM items i"
            )
    finally:
        store.close()
    return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}


# --- the tests -------------------------------------------------------------------------------


@dataclass
class Burst:
    """One kiosk's stream of checkouts and checkins of its own copies, until the server closes
    the connection: what was acknowledged, and the one request left without an answer."""

    patron: str
    kiosk: Kiosk  # logged in
    acknowledged: list[tuple[str, str]] = field(default_factory=list)  # (11 or 09, copy)
    unanswered: tuple[str, str] | None = None
    unexpected: list[str] = field(default_factory=list)

    def run(self) -> None:
        kiosk = self.kiosk
        try:
            while True:
                for copy in copies_of(self.patron):
                    for command, request, ok in (
                        ("11", checkout(self.patron, copy), "121"),
                        ("09", checkin(copy), "101"),
                    ):
                        self.unanswered = (command, copy)
                        try:
                            answer = kiosk.exchange(request)
                        except OSError:  # closed (ConnectionError) or reset by the stop
                            return
                        self.unanswered = None
                        if not answer.startswith(ok):
                            self.unexpected.append(answer)
                            return
                        self.acknowledged.append((command, copy))
        finally:
            kiosk.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_during_a_sip2_burst_loses_no_acknowledged_transaction(
    tmp_path: Path, store_url: str, workers: int
) -> None:
    make_library(store_url, tmp_path)
    ports = Ports()
    config = write_config(tmp_path, store_url, ports, workers, stop_timeout=20)
    with serving(config, ports, workers) as process:
        # Logged in one after the other: a site queues at most two password checks per address.
        kiosks = [Kiosk(ports.sip2) for _ in PATRONS]
        for kiosk in kiosks:
            kiosk.login()
        bursts = [Burst(patron, kiosk) for patron, kiosk in zip(PATRONS, kiosks, strict=True)]
        threads = [threading.Thread(target=burst.run) for burst in bursts]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + EXIT_SECONDS
        while sum(len(b.acknowledged) for b in bursts) < 30:  # mid-burst: every kiosk busy
            assert time.monotonic() < deadline and all(t.is_alive() for t in threads)
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=EXIT_SECONDS) == 0, log_text(config)
        for thread in threads:
            thread.join(timeout=EXIT_SECONDS)
    text = log_text(config)
    assert "SIGTERM: stopping" in text and "Traceback" not in text, text
    assert "abandoned" not in text
    assert not any(b.unexpected for b in bursts), [b.unexpected for b in bursts]
    stored = loans_by_copy(store_url)
    for burst in bursts:
        for copy in copies_of(burst.patron):
            checkouts = burst.acknowledged.count(("11", copy))
            checkins = burst.acknowledged.count(("09", copy))
            # The one request sent without an answer may or may not have been carried out
            # (its answer written as the connection closed); every acknowledged one was.
            maybe_out = int(burst.unanswered == ("11", copy))
            maybe_in = int(burst.unanswered == ("09", copy))
            loans, returned, checkout_events, checkin_events = stored[copy]
            assert checkouts <= loans <= checkouts + maybe_out, (copy, burst.acknowledged)
            assert checkins <= returned <= checkins + maybe_in, (copy, burst.acknowledged)
            # Nothing half-written: each loan with its event, each return with its event.
            assert (checkout_events, checkin_events) == (loans, returned)


@contextmanager
def write_lock(url: str, home: Path) -> Iterator[None]:
    """Hold the store's write lock for loans and result sets until the block ends: SQLite's
    one writer lock, or a PostgreSQL lock on those tables that lets reads through and stops
    a checkout's insert and an SRU search's kept result set."""
    if url.startswith("sqlite:"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    import psycopg

    with psycopg.connect(url) as locking:
        locking.execute("LOCK TABLE loans, result_sets IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            locking.rollback()


@pytest.mark.parametrize(
    ("workers", "stop_signal"),
    # Ctrl-C at a terminal running one process; systemd's SIGTERM to the supervisor.
    [(1, signal.SIGINT), (2, signal.SIGTERM)],
)
def test_new_connections_are_refused_while_requests_in_flight_complete(
    tmp_path: Path, store_url: str, workers: int, stop_signal: signal.Signals
) -> None:
    make_library(store_url, tmp_path)
    ports = Ports()
    config = write_config(tmp_path, store_url, ports, workers, stop_timeout=20)
    patron, copy = PATRONS[0], copies_of(PATRONS[0])[0]
    with serving(config, ports, workers) as process:
        idle = Kiosk(ports.sip2)  # logged in, between messages: closed at once by the stop
        idle.login()
        kiosk = Kiosk(ports.sip2)
        kiosk.login()
        # A Z39.50 association between requests: Close (shutdown) at once.
        association = Z3950Association(ports.z3950)
        assert association.exchange(z.init())[0] == "initResponse"
        # An HTTP connection kept alive after its answer: closed at once by the stop.
        idle_http = http.client.HTTPConnection("127.0.0.1", ports.sru, timeout=EXIT_SECONDS)
        idle_http.request("GET", "/main?operation=explain&version=1.2")
        assert idle_http.getresponse().read()
        sru = http.client.HTTPConnection("127.0.0.1", ports.sru, timeout=EXIT_SECONDS)
        # A search's kept result set is written to the store (with workers, or on PostgreSQL,
        # sru/resultsets.py), so the search waits on the lock too; one SQLite process keeps
        # it in memory.
        sru_waits = workers > 1 or not store_url.startswith("sqlite:")
        waiting = [kiosk.socket]
        with write_lock(store_url, tmp_path):
            kiosk.send(checkout(patron, copy))
            wait_until_read_by_server(kiosk.socket, ports.sip2)  # in the engine, waiting
            if sru_waits:
                query = {"operation": "searchRetrieve", "version": "1.2", "resultSetTTL": 60}
                sru.request("GET", f"/main?{urlencode(query | {'query': 'cql.allRecords = 1'})}")
                assert sru.sock is not None
                wait_until_read_by_server(sru.sock, ports.sru)
                waiting.append(sru.sock)
            process.send_signal(stop_signal)
            wait_until_refused(ports.sip2)
            wait_until_refused(ports.sru)
            assert idle.closed_by_server()
            assert idle_http.sock is not None and idle_http.sock.recv(1) == b""
            name, value = association.receive()
            assert (name, value["closeReason"]) == ("close", CLOSE_SHUTDOWN)
            assert association.socket.recv(1) == b""
            wait_until_refused(ports.z3950)
            assert process.poll() is None  # still draining: the requests wait on the lock
            readable, _, _ = select.select(waiting, [], [], 0)
            assert not readable  # no answer, and no close, while they cannot be done
        answer = kiosk.answer()  # the lock released: the checkout completes and is answered
        assert answer.startswith("121"), answer
        assert kiosk.closed_by_server()  # then the connection closes
        if sru_waits:  # and so does the search
            response = sru.getresponse()
            assert response.status == 200 and response.getheader("Connection") == "close"
            assert b"resultSetId>" in response.read()
            assert sru.sock is None or sru.sock.recv(1) == b""
        for closing in (kiosk, idle):
            closing.close()
        sru.close()
        idle_http.close()
        association.socket.close()
        assert process.wait(timeout=EXIT_SECONDS) == 0, log_text(config)
    text = log_text(config)
    assert "Traceback" not in text and "abandoned" not in text, text
    assert f"{stop_signal.name}: stopping" in text
    if workers == 1:  # the checkout, and the search when it waits (connections: the idle
        # ones too, and maybe a start-up probe whose close the server has not yet read)
        assert f"({1 + int(sru_waits)} request" in text, text
    assert loans_by_copy(store_url)[copy][:2] == (1, 0)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_bound_holds_when_postgresql_is_gone(
    tmp_path: Path, own_postgres_database: tuple[str, Any, str], workers: int
) -> None:
    url, admin, name = own_postgres_database
    make_library(url, tmp_path)
    ports = Ports()
    stop_timeout = 2
    config = write_config(tmp_path, url, ports, workers, stop_timeout=stop_timeout)
    patron, copy = PATRONS[0], copies_of(PATRONS[0])[0]
    with serving(config, ports, workers) as process:
        kiosk = Kiosk(ports.sip2)
        kiosk.login()
        assert kiosk.exchange(checkout(patron, copy)).startswith("121")
        # The database goes away: no new connection, and the gateway's are ended.
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        )
        # A request on a pooled connection that was ended fails at once (96); once the pool
        # has none left, the next waits for one (the pool's 30 s): that one is in flight.
        for _ in range(20):
            kiosk.send(item_information(copy))
            wait_until_read_by_server(kiosk.socket, ports.sip2)
            if not select.select([kiosk.socket], [], [], 2)[0]:
                break
            assert kiosk.answer().startswith("96")
        else:
            pytest.fail("every request was answered: nothing waits for the store")
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = process.wait(timeout=stop_timeout + STOP_MARGIN_SECONDS + 10)  # far below 30 s
        took = time.monotonic() - signalled
        kiosk.close()
    text = log_text(config)
    assert code == EXIT_STOP_FORCED, text
    forced = f"stop_timeout {stop_timeout} s passed: exiting with code {EXIT_STOP_FORCED}"
    lines = [line for line in text.splitlines() if forced in line]
    # One line per process that was forced: the kiosk's, and under the supervisor maybe the
    # other worker too (worker 1's loops may also be waiting on the store that is gone).
    assert 1 <= len(lines) <= workers, text
    assert [line for line in lines if "abandoned: SIP2 1 connection (1 request in flight)" in line]
    print(f"stopped {took:.1f} s after SIGTERM with stop_timeout {stop_timeout} s")


@pytest.fixture
def smtp_sink() -> Iterator[tuple[int, list[email.message.Message]]]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list[email.message.Message] = []

    class Collect(Message):
        def handle_message(self, message: email.message.Message) -> None:
            received.append(message)

    controller = Controller(Collect(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, received
    controller.stop()


def queue_notice(url: str, patron: str, due: datetime) -> int:
    store = open_store(url)
    try:
        with store.write() as tx:
            patron_pk = tx.scalar("SELECT id FROM patrons WHERE barcode = ?", (patron,))
            return tx.insert(
                "INSERT INTO notices (created_at, patron_pk, kind, language, to_address,"
                " subject, body, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    stamp(datetime.now(UTC)),
                    patron_pk,
                    "hold_ready",
                    "zh",
                    f"{patron.lower()}@example.cn",
                    "预约到书",
                    "您预约的图书已到。",
                    stamp(due),
                ),
            )
    finally:
        store.close()


def notice_row(url: str, notice_id: int) -> tuple[str, str | None]:
    store = open_store(url)
    try:
        with store.read() as tx:
            row = tx.one("SELECT state, sent_at FROM notices WHERE id = ?", (notice_id,))
    finally:
        store.close()
    assert row is not None
    return row[0], row[1]


def test_the_notice_outbox_is_flushed_at_stop(
    tmp_path: Path, store_url: str, smtp_sink: tuple[int, list[email.message.Message]]
) -> None:
    smtp_port, received = smtp_sink
    make_library(store_url, tmp_path)
    ports = Ports()
    # Rounds an hour apart: after the one at start, only the stop's last round sends.
    notices = f"""
[notices]
enabled = true
smtp_port = {smtp_port}
from_address = "library@example.org"
send_every_seconds = 3600
"""
    config = write_config(tmp_path, store_url, ports, workers=1, stop_timeout=20, extra=notices)
    with serving(config, ports, workers=1) as process:
        for _ in range(2):
            # Due a moment after the start's round, which is usually under way before the port
            # listens; on a busy machine that round can come late and send this notice itself:
            # then a second one, which only the stop's round can send (the next is an hour off).
            received.clear()
            due = datetime.now(UTC) + timedelta(seconds=2)
            notice_id = queue_notice(store_url, PATRONS[1], due)
            # Past due by more than the second a stamp may round off, before the signal.
            time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 1.5)
            if not received:
                break
        assert not received
        signalled = datetime.now(UTC)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=EXIT_SECONDS) == 0, log_text(config)
    (message,) = received  # arrived before the process exited
    assert message["To"] == "s0002@example.cn"
    state, sent_at = notice_row(store_url, notice_id)
    assert state == "sent" and sent_at is not None
    assert sent_at >= stamp(signalled - timedelta(seconds=1))  # by the stop's round
    text = log_text(config)
    assert "notices at stop: 1 sent, 0 failed attempts" in text, text
    assert "Traceback" not in text


def test_a_silent_mail_server_does_not_force_the_stop(tmp_path: Path, store_url: str) -> None:
    """The last round is cut short before the bound: the stop stays clean (exit 0) and the
    notice stays queued for the next start."""
    make_library(store_url, tmp_path)
    ports = Ports()
    with socket.socket() as silent:  # accepts into its queue, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        notices = f"""
[notices]
enabled = true
smtp_port = {silent.getsockname()[1]}
send_every_seconds = 3600
"""
        config = write_config(tmp_path, store_url, ports, workers=1, stop_timeout=3, extra=notices)
        with serving(config, ports, workers=1) as process:
            due = datetime.now(UTC) + timedelta(seconds=2)
            notice_id = queue_notice(store_url, PATRONS[1], due)
            time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.5)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=EXIT_SECONDS) == 0, log_text(config)
    text = log_text(config)
    assert "notices at stop: not done by stop_timeout" in text, text
    assert "abandoned" not in text and "Traceback" not in text, text
    assert notice_row(store_url, notice_id) == ("queued", None)


# --- the pieces, without processes ------------------------------------------------------------


def test_the_banner_says_how_each_socket_is_shared() -> None:
    """SO_REUSEPORT only where each worker has a socket of its own; systemd's sockets (socket
    activation) and plain shared ones say so."""
    descriptions = {
        "tcp:6001": (True, "a socket of its own per worker (SO_REUSEPORT)"),
        "tcp:6002": (False, "one socket shared by every worker"),
        "systemd:domain=INET:index=0": (False, "one socket from systemd, shared by every worker"),
    }
    for description, (per_worker, said) in descriptions.items():
        with socket.socket() as bound:
            shared = SharedSocket(
                description, bound, socket.AF_INET, ("127.0.0.1", 0), per_worker=per_worker
            )
            assert sharing(shared) == said


@pytest.mark.parametrize("value", [0, -1, 601, "20"])
def test_stop_timeout_must_be_a_bound(value: object) -> None:
    with pytest.raises(ConfigError, match="service.stop_timeout"):
        settings_from_dict({"service": {"stop_timeout": value}})
    assert settings_from_dict({"service": {"stop_timeout": 2.5}}).service.stop_timeout == 2.5


def test_a_stop_cuts_the_store_waits_that_begin_after_it(store_url: str) -> None:
    """`limit_waits`: a write that waits for the SQLite write lock (busy timeout 60 s here), or
    for a PostgreSQL pool connection (30 s), gives up after the limit instead. The generous
    join below only ends a hang; it is far below both engines' own waits."""
    store = open_store(store_url, busy_timeout_ms=60000, pool_size=1)
    try:
        migrate(store)
        if store_url.startswith("sqlite:"):  # another process's write, as it were
            holder = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            held: AbstractContextManager[object] = closing(holder)
        else:  # the pool's one connection
            held = store.write()
        with held:
            store.limit_waits(0.2)
            outcome: list[BaseException | None] = []

            def write() -> None:
                try:
                    with store.write() as tx:
                        tx.execute("SELECT 1")
                    outcome.append(None)
                except BaseException as error:  # noqa: BLE001 - what the waiting write got
                    outcome.append(error)

            waiting = threading.Thread(target=write)
            waiting.start()
            waiting.join(timeout=15)
            assert not waiting.is_alive(), "the write still waits"
        (error,) = outcome
        assert error is not None, "the write did not wait for the lock"
        assert isinstance(error, sqlite3.OperationalError | StoreError), repr(error)
    finally:
        store.close()
