"""`libgate serve` as its own process for tests with real clients: a free port, a start that
waits until every listener accepts, and a stop that checks the log holds no traceback."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

START_SECONDS = 30


def free_port() -> int:
    """A port nobody listens on now (the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_gateway(
    config: Path, ports: Sequence[int], descriptor_limit: int | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `libgate --config CONFIG serve` until the block ends; its log is beside CONFIG.
    `descriptor_limit` lowers the process's hard (and soft) RLIMIT_NOFILE before it starts."""
    log_path = config.with_suffix(".log")

    def limit_descriptors() -> None:
        if descriptor_limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (descriptor_limit, descriptor_limit))

    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"],
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
