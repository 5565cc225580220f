"""Attacks on the Z39.50 listener of a real `libgate serve` (its own process, real sockets,
127.0.0.x only): the attackers are bound to 127.0.0.2 and 127.0.0.3, the partner's client to
127.0.0.1. Under a flood of silent sockets the partner still opens sessions, Inits and
searches with p99 under 500 ms; a trusted network is held by neither per-address cap.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main as libgate
from gateway.z3950_codec import ber
from tests import z3950_support as z
from tests.flood_support import Flood, p99
from tests.serve_support import free_port, running_gateway

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PARTNER = "127.0.0.1"
ATTACKER, OTHER = "127.0.0.2", "127.0.0.3"
TRUSTED = OTHER  # trusted by the config of the test that says so
P99_BOUND = 0.5


@pytest.fixture(scope="module")
def loaded_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalogue, made once; each test serves its own copy of the file."""
    home = tmp_path_factory.mktemp("z3950-floods")
    config = home / "libgate.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{home / "base.db"}"\n', encoding="utf-8")
    for args in (
        ["init"],
        ["load", "--database", "main", str(FIXTURES / "marc" / "demo_main.iso")],
    ):
        assert libgate(["--config", str(config), *args]) == 0
    return home / "base.db"


def write_config(home: Path, database: Path, port: int, z3950_extra: str = "") -> Path:
    shutil.copy(database, home / "served.db")
    config = home / "libgate.toml"
    config.write_text(
        f"""
[storage]
url = "sqlite:///{home / "served.db"}"

[service]
workers = 1  # the caps and the descriptor limit measured here are one process's

[notices]
enabled = false

[sru]
listen = []

[sip2]
listen = []

[z3950]
listen = ["tcp:{port}:interface=127.0.0.1:backlog=1024"]  # the default's accept queue
{z3950_extra}
""",
        encoding="utf-8",
    )
    return config


class Client:
    """A blocking Z39.50 client bound to `source` that reads one APDU per request."""

    def __init__(self, port: int, source: str = PARTNER) -> None:
        self.sock = socket.socket()
        self.sock.settimeout(10)
        self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", port))
        self.buffer = b""

    def read(self) -> tuple[str, dict[str, Any]]:
        while (length := ber.apdu_length(self.buffer, 1 << 24)) is None:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the server")
            self.buffer += data
        apdu, self.buffer = self.buffer[:length], self.buffer[length:]
        return z.answer(apdu)

    def exchange(self, apdu: bytes) -> tuple[str, dict[str, Any]]:
        self.sock.sendall(apdu)
        return self.read()

    def init(self) -> None:
        name, value = self.exchange(z.init())
        assert name == "initResponse" and value["result"], value

    def search(self) -> None:
        name, value = self.exchange(z.search(z.term("历史", use=4)))
        assert name == "searchResponse" and value["resultCount"] > 0, value

    def close(self) -> None:
        self.sock.close()


def sessions_while(port: int, seconds: float, at_least: int = 150) -> list[float]:
    """Seconds each fresh session took to connect, Init and search, for `seconds` and at least
    `at_least` sessions (a p99 of fewer is only the maximum; 10 s at most on a busy machine)."""
    timings: list[float] = []
    began = time.monotonic()
    while True:
        elapsed = time.monotonic() - began
        if elapsed >= 10 or (elapsed >= seconds and len(timings) >= at_least):
            return timings
        started = time.monotonic()
        client = Client(port)
        try:
            client.init()
            client.search()
        finally:
            client.close()
        timings.append(time.monotonic() - started)
        time.sleep(0.01)


@pytest.fixture
def flood_stopper() -> Iterator[list[Flood]]:
    floods: list[Flood] = []
    yield floods
    for flood in floods:
        flood.stop.set()
        flood.join(10)


@dataclass(frozen=True)
class UnderFlood:
    """What the partner on 127.0.0.1 saw while a flood ran."""

    fresh: list[float]  # seconds each new session took to connect, Init and search
    searches: list[float]  # searches of a session opened before the flood
    opened: int  # sockets the flood opened
    log: str  # the gateway's log


def partner_under_flood(
    config: Path, port: int, flood: Flood, flood_stopper: list[Flood]
) -> UnderFlood:
    with running_gateway(config, [port]):
        working = Client(port)
        working.init()
        working.search()  # the first search warms the catalogue's caches, flood or not
        flood_stopper.append(flood)
        flood.start()
        time.sleep(1.5)
        fresh = sessions_while(port, 3.0)
        searches = []
        for _ in range(20):
            started = time.monotonic()
            working.search()
            searches.append(time.monotonic() - started)
        opened = flood.opened
        flood.stop.set()
        flood.join(10)
        working.close()
    return UnderFlood(fresh, searches, opened, config.with_suffix(".log").read_text("utf-8"))


def test_silent_sockets_do_not_keep_a_partner_out(
    loaded_database: Path, tmp_path: Path, flood_stopper: list[Flood]
) -> None:
    port = free_port()
    config = write_config(tmp_path, loaded_database, port)  # every limit at its default
    flood = Flood(port, per_source=300, payload=None, sources=(ATTACKER,))
    seen = partner_under_flood(config, port, flood, flood_stopper)
    assert seen.opened >= 300
    assert "(max_uninitialised_per_peer)" in seen.log  # the pre-Init budget held the flood
    assert seen.log.count("refused:") <= 4  # one line per burst, not one per socket
    assert p99(seen.fresh) < P99_BOUND, (p99(seen.fresh), len(seen.fresh))
    assert p99(seen.searches) < P99_BOUND, seen.searches


def test_silent_sockets_cannot_fill_the_sessions_the_per_address_cap_leaves(
    loaded_database: Path, tmp_path: Path, flood_stopper: list[Flood]
) -> None:
    # Two addresses may hold 2 x 20 sessions, more than the 30 there are: without the pre-Init
    # budget (8 per address), their silent sockets alone would keep every partner out.
    port = free_port()
    config = write_config(tmp_path, loaded_database, port, "max_sessions = 30")
    flood = Flood(port, per_source=150, payload=None, sources=(ATTACKER, OTHER))
    seen = partner_under_flood(config, port, flood, flood_stopper)
    assert seen.opened >= 300
    assert "(max_uninitialised_per_peer)" in seen.log
    assert "(max_sessions)" not in seen.log
    assert p99(seen.fresh) < P99_BOUND, (p99(seen.fresh), len(seen.fresh))


def closed_at_once(client: Client) -> bool:
    """Whether the server answered a new connection with Close (resources) and hung up."""
    client.sock.settimeout(2)
    name, value = client.read()
    return name == "close" and value["closeReason"] == 4 and client.sock.recv(1) == b""


def test_a_trusted_network_is_not_held_by_the_per_address_caps(
    loaded_database: Path, tmp_path: Path
) -> None:
    port = free_port()
    config = write_config(
        tmp_path,
        loaded_database,
        port,
        f'trusted_networks = ["{TRUSTED}/32"]\nmax_sessions_per_peer = 4\n'
        "max_uninitialised_per_peer = 2",
    )
    with running_gateway(config, [port]):
        silent = [Client(port, TRUSTED) for _ in range(5)]  # past the pre-Init 2
        working = [Client(port, TRUSTED) for _ in range(5)]  # 10 in all: past the 4
        for client in working:
            client.init()
            client.search()
        attacker = [Client(port, ATTACKER) for _ in range(3)]
        assert closed_at_once(attacker[2])  # its third silent socket: past the pre-Init 2
        for client in silent:  # the trusted silent ones are still open
            client.sock.settimeout(0.2)
            with pytest.raises(TimeoutError):
                client.sock.recv(1)
        for client in silent + working + attacker:
            client.close()
    log = config.with_suffix(".log").read_text("utf-8")
    assert log.count("refused:") == 1 and "(max_uninitialised_per_peer)" in log
