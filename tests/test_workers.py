"""`libgate serve` with several workers (issue 12): the supervisor binds each listener once and
its workers all answer on it; an SRU result set made at one worker pages at another; a killed
worker is started again; SIGTERM stops them all; a port that cannot be bound stops the start
with one line. And two gateways (each with its workers) on one PostgreSQL serve one library.

Which worker served a connection is read from /proc (the process holding the server side of
the socket), so the protocols carry nothing extra for the tests."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from lxml import etree

from gateway import workers
from gateway.admission import Cap, Caps, ConnectionCaps, count_site_wide
from gateway.cli import main as libgate
from gateway.config import ConfigError, settings_from_dict
from gateway.listening import ListenError, bind_all, bind_all_again, close
from gateway.networks import Networks
from gateway.site_counts import SiteCounts
from tests.conftest import FIXTURES
from tests.serve_support import (
    free_port,
    running_gateway,
    serve_until_exit,
    serving_pid,
    sip2_and_sru_config,
    wait_for_workers,
    worker_pids,
)
from tests.sru_support import NS, control_numbers, xml
from tests.test_sru_sip2_availability import COPY, holdings, sip2

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux /proc")

QUERY = "cql.allRecords = 1"
WAIT_SECONDS = 60  # for a worker to be started again; the machine may be busy


class Gateway:
    def __init__(
        self, process: subprocess.Popen[bytes], config: Path, sip2_port: int, sru_port: int
    ) -> None:
        self.process = process
        self.log = config.with_suffix(".log")
        self.sip2_port = sip2_port
        self.sru_port = sru_port

    def workers(self) -> set[int]:
        return worker_pids(self.process.pid)

    def sru(self, **params: object) -> tuple[int | None, bytes]:
        """One SRU request on a new connection: (the worker that served it, the body)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.sru_port, timeout=30)
        try:
            params.setdefault("version", "1.2")
            params.setdefault("operation", "searchRetrieve")
            connection.request("GET", "/main?" + urlencode(params))
            body = connection.getresponse().read()
            # Kept alive: the server's side of the socket is still open in its worker.
            client_port = connection.sock.getsockname()[1]
            return serving_pid(self.sru_port, client_port, self.workers()), body
        finally:
            connection.close()

    def served_by(self, pids: set[int], attempts: int = 400) -> set[int]:
        """Workers seen answering, after asking until every one of `pids` has (or attempts
        run out: connections go to whichever worker accepts first)."""
        seen: set[int] = set()
        for _ in range(attempts):
            pid, _body = self.sru(operation="explain")
            if pid is not None:
                seen.add(pid)
            if pids <= seen:
                break
        return seen


def load_library(config: Path) -> None:
    for args in (
        ["load", "--database", "main", str(FIXTURES / "marc" / "demo_main.iso")],
        ["patrons", "import", str(FIXTURES / "patrons" / "demo_patrons.csv")],
    ):
        assert libgate(["--config", str(config), *args]) == 0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    home = tmp_path_factory.mktemp("workers")
    sip2_port, sru_port = free_port(), free_port()
    config = sip2_and_sru_config(home, sip2_port, sru_port, workers=2)
    load_library(config)
    with running_gateway(config, [sip2_port, sru_port]) as process:
        wait_for_workers(process.pid, 2)
        yield Gateway(process, config, sip2_port, sru_port)


def test_two_workers_answer_on_one_port(gateway: Gateway) -> None:
    workers = gateway.workers()
    assert len(workers) == 2
    assert gateway.served_by(workers) == workers


def test_a_result_set_made_by_one_worker_pages_at_another(gateway: Gateway) -> None:
    maker, body = gateway.sru(query=QUERY, resultSetTTL=60, maximumRecords=2)
    made = xml(body)
    set_id = made.findtext("zs:resultSetId", namespaces=NS)
    assert maker is not None and set_id
    _, everything = gateway.sru(query=QUERY, maximumRecords=20)
    expected = control_numbers(xml(everything))
    assert len(expected) > 4
    other_pages = 0
    for _ in range(400):
        pid, body = gateway.sru(query=f'cql.resultSetId = "{set_id}"', startRecord=3)
        page = xml(body)
        assert control_numbers(page)[:2] == expected[2:4]
        assert page.findtext("zs:resultSetId", namespaces=NS) == set_id
        if pid is not None and pid != maker:
            other_pages += 1
            break
    assert other_pages == 1


def test_sip2_and_sru_through_the_workers(gateway: Gateway) -> None:
    """A checkout over SIP2 at whichever worker shows in the next SRU response at any."""
    now = time.strftime("%Y%m%d    %H%M%S")
    login, checkout = sip2(
        gateway.sip2_port,
        b"9300CNkiosk|COkiosk-pw|",
        f"11YN{now}{' ' * 18}AOMAIN|AAP0001|AB{COPY}|AC|".encode(),
    )
    assert login.startswith(b"941") and checkout.startswith(b"121"), checkout
    for _ in range(4):  # new connections: more than one worker answers
        assert holdings(gateway.sru_port)[COPY][:2] == ("false", "借出")
    _, checkin = sip2(
        gateway.sip2_port,
        b"9300CNkiosk|COkiosk-pw|",
        f"09N{now}{now}AP|AOMAIN|AB{COPY}|AC|".encode(),
    )
    assert checkin.startswith(b"101"), checkin
    assert holdings(gateway.sru_port)[COPY] == ("true", "归还", None)


def test_a_killed_worker_is_started_again(gateway: Gateway) -> None:
    before = gateway.workers()
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        now = gateway.workers()
        if len(now) == 2 and victim not in now:
            break
        assert time.monotonic() < deadline, f"workers now {now}, before {before}"
        time.sleep(0.2)
    replacement = (now - before).pop()
    # The replacement serves the same port as soon as it has started.
    deadline = time.monotonic() + WAIT_SECONDS
    while replacement not in gateway.served_by({replacement}, attempts=50):
        assert time.monotonic() < deadline, "the new worker never answered"
    text = gateway.log.read_text("utf-8")
    assert "was killed by SIGKILL" in text and "starting it again" in text


def test_sigterm_stops_every_worker(tmp_path: Path) -> None:
    sip2_port, sru_port = free_port(), free_port()
    config = sip2_and_sru_config(tmp_path, sip2_port, sru_port, workers=2)
    with running_gateway(config, [sip2_port, sru_port]) as process:
        workers = wait_for_workers(process.pid, 2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    text = config.with_suffix(".log").read_text("utf-8")
    assert "stopping 2 workers" in text


def test_a_port_that_cannot_be_bound_stops_the_start_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sru_port = free_port()
        config = sip2_and_sru_config(tmp_path, port, sru_port, workers=2)
        done = serve_until_exit(config)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"libgate: cannot listen: Couldn't listen on 127.0.0.1:{port}:"
        f" [Errno 98] Address already in use (tcp:{port}:interface=127.0.0.1)"
    ]
    assert "worker" not in done.stdout  # nothing was started
    with socket.socket() as probe:  # the SRU port bound before the failure was let go
        probe.bind(("127.0.0.1", sru_port))


def test_two_gateways_on_one_postgresql_serve_one_library(
    tmp_path: Path, postgres_url: str
) -> None:
    """Two `libgate serve` (two workers each) on one PostgreSQL: a checkout at one shows in the
    other's SRU holdings, a checkin at the other in the first's, and an SRU result set made at
    one pages at the other."""
    homes = [tmp_path / "first", tmp_path / "second"]
    gateways = []
    for home in homes:
        home.mkdir()
        sip2_port, sru_port = free_port(), free_port()
        config = sip2_and_sru_config(home, sip2_port, sru_port, workers=2)
        text = config.read_text("utf-8")
        config.write_text(
            text.replace(f'url = "sqlite:///{home / "library.db"}"', f'url = "{postgres_url}"'),
            encoding="utf-8",
        )
        gateways.append((config, sip2_port, sru_port))
    load_library(gateways[0][0])
    (first, first_sip2, first_sru), (second, second_sip2, second_sru) = gateways
    now = time.strftime("%Y%m%d    %H%M%S")
    with (
        running_gateway(first, [first_sip2, first_sru]),
        running_gateway(second, [second_sip2, second_sru]),
    ):
        assert holdings(second_sru)[COPY][:2] == ("true", "归还")
        _, checkout = sip2(
            first_sip2,
            b"9300CNkiosk|COkiosk-pw|",
            f"11YN{now}{' ' * 18}AOMAIN|AAP0001|AB{COPY}|AC|".encode(),
        )
        assert checkout.startswith(b"121"), checkout
        assert holdings(second_sru)[COPY][:2] == ("false", "借出")
        _, checkin = sip2(
            second_sip2,
            b"9300CNkiosk|COkiosk-pw|",
            f"09N{now}{now}AP|AOMAIN|AB{COPY}|AC|".encode(),
        )
        assert checkin.startswith(b"101"), checkin
        assert holdings(first_sru)[COPY] == ("true", "归还", None)
        made = sru_get(first_sru, query=QUERY, resultSetTTL=60, maximumRecords=2)
        set_id = made.findtext("zs:resultSetId", namespaces=NS)
        expected = control_numbers(sru_get(first_sru, query=QUERY, maximumRecords=4))
        page = sru_get(second_sru, query=f'cql.resultSetId = "{set_id}"', startRecord=3)
        assert control_numbers(page)[:2] == expected[2:4]


def sru_get(port: int, **params: object) -> etree._Element:
    params.setdefault("version", "1.2")
    params.setdefault("operation", "searchRetrieve")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/main?" + urlencode(params))
    root = xml(connection.getresponse().read())
    connection.close()
    return root


# --- the pieces, without processes ------------------------------------------------------------


def test_the_caps_count_every_workers_connections() -> None:
    """Two workers' ConnectionCaps on one board: the per-address and pending figures are the
    site's; a dead worker's region is cleared. (In one process: the board's `worker` says
    whose region a change goes to.)"""
    board = SiteCounts(workers=2, slots=64)
    caps = Caps(Cap(5, "max_connections"), Cap(3, "per_address"), Cap(2, "pending"), None)
    count_site_wide(board)
    try:
        first, second = ConnectionCaps(caps, Networks(())), ConnectionCaps(caps, Networks(()))
    finally:
        count_site_wide(None)
    board.worker = 1
    for _ in range(2):
        assert first.refusal("192.0.2.1") is None
        first.opened("192.0.2.1")
    board.worker = 2
    assert second.refusal("192.0.2.1") == "2 connections not logged in (pending)"
    first_login = "192.0.2.1"
    board.worker = 1
    first.logged_in(first_login)
    board.worker = 2
    assert second.refusal("192.0.2.1") is None
    second.opened("192.0.2.1")
    assert second.refusal("192.0.2.1") == (
        "3 connections open from 192.0.2.1, the most from one address (per_address)"
    )
    assert second.refusal("198.51.100.9") == "2 connections not logged in (pending)"
    assert (first.active, second.active) == (2, 1)  # each worker's own counts stay its own
    board.clear(1)  # worker 1 died: its connections with it
    assert second.refusal("192.0.2.1") is None
    assert board.totals(second.kind, "192.0.2.1") == (1, 1, 1, 1)
    for n in range(200):  # many addresses come and go: the table is compacted, never full
        second.opened(f"203.0.113.{n % 250}")
        second.closed(f"203.0.113.{n % 250}", was_logged_in=False)
    assert board.totals(second.kind, "192.0.2.1") == (1, 1, 1, 1)


def test_the_site_figure_holds_over_two_workers(tmp_path: Path) -> None:
    """[sru] max_connections_per_address = 4 with two workers: four connections from one
    address are served, whichever workers took them, and a fifth is refused; when a worker
    holding some is killed, its places are free again."""
    sip2_port, sru_port = free_port(), free_port()
    config = sip2_and_sru_config(
        tmp_path, sip2_port, sru_port, "max_connections_per_address = 4", workers=2
    )
    with running_gateway(config, [sip2_port, sru_port]) as process:
        pids = wait_for_workers(process.pid, 2)
        for _ in range(20):  # until the four open connections are spread over both workers
            # The previous round's closes reach the workers a moment after the client made
            # them: until they have, those places are still taken.
            held = [served_connection(sru_port) for _ in range(4)]
            owners = {serving_pid(sru_port, c.sock.getsockname()[1], pids) for c in held}
            refused = http.client.HTTPConnection("127.0.0.1", sru_port, timeout=30)
            assert not explain(refused)  # the fifth, whichever worker the kernel gave it to
            refused.close()
            if owners == pids:
                break
            for connection in held:
                connection.close()
        assert owners == pids
        victim = min(pids)
        freed = sum(serving_pid(sru_port, c.sock.getsockname()[1], pids) == victim for c in held)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + WAIT_SECONDS
        while victim in worker_pids(process.pid):  # until the supervisor has reaped it
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # The victim's places are free once the supervisor reaped it, whether or not its
        # replacement has started (connections to it wait in its queue).
        fresh = [
            http.client.HTTPConnection("127.0.0.1", sru_port, timeout=30) for _ in range(freed)
        ]
        assert all(explain(connection) for connection in fresh)
        assert not explain(http.client.HTTPConnection("127.0.0.1", sru_port, timeout=30))


def served_connection(port: int) -> http.client.HTTPConnection:
    """A kept-alive SRU connection that was answered, trying again while places just freed by
    closed connections are still counted (at most WAIT_SECONDS)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        if explain(connection):
            return connection
        connection.close()
        assert time.monotonic() < deadline, "the closed connections never gave their places back"
        time.sleep(0.05)


def explain(connection: http.client.HTTPConnection) -> bool:
    """An SRU explain on a kept-alive connection: True when answered, False when refused."""
    try:
        connection.request("GET", "/main?version=1.2&operation=explain")
        return connection.getresponse().read().startswith(b"<?xml")
    except (ConnectionError, http.client.HTTPException, OSError):
        return False


def test_workers_config_key() -> None:
    assert settings_from_dict({"service": {"workers": 3}}).service.worker_count() == 3
    assert settings_from_dict({}).service.worker_count() == max(1, os.cpu_count() or 1)
    for bad in (0, -2, 65):
        with pytest.raises(ConfigError, match="service.workers"):
            settings_from_dict({"service": {"workers": bad}})


def test_listeners_that_cannot_be_shared_are_named() -> None:
    with pytest.raises(ListenError, match="tcp:, tcp6:, ssl: and systemd:"):
        bind_all(["unix:/tmp/libgate-test.sock"])
    with pytest.raises(ListenError, match="nonsense"):
        bind_all(["nonsense:1"])
    bound = bind_all(["tcp:0:interface=127.0.0.1", "tcp6:0:interface=\\:\\:1"], reuse_port=True)
    again = bind_all_again(bound)  # a second worker's: the same ports, sockets of its own
    try:
        assert [s.socket.getsockname()[0] for s in bound] == ["127.0.0.1", "::1"]
        assert all(s.port > 0 and not s.socket.getblocking() for s in bound)
        assert [s.port for s in again] == [s.port for s in bound]
        assert {s.socket.fileno() for s in again}.isdisjoint(s.socket.fileno() for s in bound)
    finally:
        close([*bound, *again])


def test_a_worker_that_cannot_start_stops_the_supervisor(tmp_path: Path) -> None:
    """A setting only a worker checks ([sru] default_schema) stops the start, not a loop of
    restarts."""
    sip2_port, sru_port = free_port(), free_port()
    config = sip2_and_sru_config(
        tmp_path, sip2_port, sru_port, 'default_schema = "no-such-schema"', workers=2
    )
    done = serve_until_exit(config, timeout=120)
    assert done.returncode == 1
    assert "sru.default_schema: 'no-such-schema'" in done.stderr
    assert "cannot start with this configuration; stopping" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_second_gateway_cannot_join_the_first_ones_port(gateway: Gateway, tmp_path: Path) -> None:
    """SO_REUSEPORT lets any socket that asks join a port: a second `libgate serve` on the
    same ports must still stop with "cannot listen", not split the connections."""
    config = sip2_and_sru_config(tmp_path, gateway.sip2_port, gateway.sru_port, workers=2)
    done = serve_until_exit(config)
    assert done.returncode == 1
    assert f"Couldn't listen on 127.0.0.1:{gateway.sip2_port}" in done.stderr


def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    sip2_port, sru_port = free_port(), free_port()
    config = sip2_and_sru_config(tmp_path, sip2_port, sru_port, workers=2)
    with running_gateway(config, [sip2_port, sru_port]) as process:
        workers = wait_for_workers(process.pid, 2)
        process.kill()
        process.wait()
        deadline = time.monotonic() + WAIT_SECONDS
        while any(Path(f"/proc/{pid}").exists() for pid in workers):
            assert time.monotonic() < deadline, "orphaned workers kept running"
            time.sleep(0.2)


def test_the_index_writer_announces_a_change_to_every_worker() -> None:
    """The seam for a search index one process writes: with one process the hooks run at once;
    under a supervisor the announcement is SIGUSR1 to it (it forwards it to every worker, whose
    handler runs the hooks: gateway/app.py); SIGHUP is left to config reloads."""
    ran: list[str] = []
    workers.on_index_change(lambda: ran.append("reloaded"))
    try:
        assert workers.current_role().index_writer  # one process writes its own index
        workers.announce_index_change()
        assert ran == ["reloaded"]
        heard: list[int] = []
        previous = signal.signal(signal.SIGUSR1, lambda number, _frame: heard.append(number))
        try:
            child = os.fork()
            if child == 0:  # a worker 2 of 2, whose supervisor is this test
                code = 1
                try:
                    workers.set_role(workers.ProcessRole(2, 2))
                    code = 0 if not workers.current_role().index_writer else 2
                    workers.announce_index_change()
                finally:
                    os._exit(code)  # never back into pytest
            _, status = os.waitpid(child, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            deadline = time.monotonic() + WAIT_SECONDS
            while not heard:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        finally:
            signal.signal(signal.SIGUSR1, previous)
        assert heard == [signal.SIGUSR1] and ran == ["reloaded"]  # the supervisor forwards it
    finally:
        workers._reload_hooks.clear()
