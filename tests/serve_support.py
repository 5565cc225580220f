"""`libgate serve` as its own process for tests with real clients: a free port, a start that
waits until every listener accepts, and a stop that checks the log holds no traceback."""

from __future__ import annotations

import os
import random
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

START_SECONDS = 30


def _ephemeral_ports() -> range:
    """The range the kernel hands out to outgoing sockets (Linux; a usual default elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def free_port() -> int:
    """A port nobody listens on now (the server binds it a moment later).

    It is taken from below the ephemeral range: a port the kernel picked with bind(0) can be
    given, a moment later, to one of the hundreds of client sockets a flood test opens, and the
    server then fails to bind it (CI saw exactly that)."""
    ephemeral = _ephemeral_ports()
    candidates = range(20000, max(20001, min(ephemeral.start, 32768)))
    for _ in range(200):
        port = random.choice(candidates)
        if port in _handed_out:  # free now, but a test's config may be about to bind it
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port below the ephemeral range")


# Every port free_port gave in this test run: two calls for one config (SIP2 and SRU) must not
# get the same port, which nothing is bound to yet (CI saw "sru.listen[0] … is already
# sip2.listen[0]"). A run uses a few hundred of the 12,000 candidates.
_handed_out: set[int] = set()


def sip2_and_sru_config(
    home: Path, sip2_port: int, sru_port: int, sru_extra: str = "", workers: int = 1
) -> Path:
    """A config serving SIP2 (one kiosk account, `kiosk` / `kiosk-pw`) and SRU on 127.0.0.1,
    over a SQLite library in `home`, without Z39.50 or notices; `sru_extra` goes in [sru]."""
    config = home / "libgate.toml"
    config.write_text(
        f"""
[storage]
url = "sqlite:///{home / "library.db"}"

[service]
workers = {workers}

[notices]
enabled = false

[sru]
listen = ["tcp:{sru_port}:interface=127.0.0.1"]
{sru_extra}

[sip2]
listen = ["tcp:{sip2_port}:interface=127.0.0.1"]

[z3950]
listen = []

[[sip2.accounts]]
login = "kiosk"
password = "kiosk-pw"
location = "一楼自助借还机"
role = "selfcheck"
""",
        encoding="utf-8",
    )
    return config


def serve_until_exit(config: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `libgate --config CONFIG serve` expecting it to stop by itself (a start refused),
    with its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def running_gateway(
    config: Path,
    ports: Sequence[int],
    descriptor_limit: int | None = None,
    serve_args: Sequence[str] = (),
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `libgate --config CONFIG serve [SERVE_ARGS]` until the block ends; its output is
    beside CONFIG. `descriptor_limit` lowers the process's hard (and soft) RLIMIT_NOFILE."""
    log_path = config.with_suffix(".log")

    def limit_descriptors() -> None:
        if descriptor_limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (descriptor_limit, descriptor_limit))

    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve", *serve_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=limit_descriptors,
        )
        try:
            deadline = time.monotonic() + START_SECONDS
            for port in ports:
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        break
                    except OSError:
                        if process.poll() is not None:
                            raise AssertionError(log_path.read_text("utf-8")) from None
                        if time.monotonic() > deadline:
                            raise AssertionError("libgate serve did not start listening") from None
                        time.sleep(0.1)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    text = log_path.read_text("utf-8")
    assert "Traceback" not in text, text


# --- which process serves a connection (Linux /proc) ----------------------------------------


def worker_pids(supervisor: int) -> set[int]:
    """The processes whose parent is `supervisor` (its workers)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == supervisor:
            found.add(int(entry.name))
    return found


def serving_pid(server_port: int, client_port: int, candidates: set[int]) -> int | None:
    """Which of `candidates` holds the server side of the TCP connection from local port
    `client_port` to `server_port` on 127.0.0.1: the socket's inode from /proc/net/tcp, then
    the process whose descriptors include it."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            inode = fields[9]
            break
    if inode is None:
        return None
    for pid in candidates:
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(descriptor) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def wait_for_workers(supervisor: int, count: int, seconds: float = START_SECONDS) -> set[int]:
    """The supervisor's workers once `count` of them run (its ports accept connections into
    their queues from the moment they are bound, before any worker is forked)."""
    deadline = time.monotonic() + seconds
    while len(workers := worker_pids(supervisor)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(workers)} workers, not {count}")
        time.sleep(0.1)
    return workers
