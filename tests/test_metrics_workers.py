"""/metrics of a real `libgate serve` with two workers: whichever worker answers a scrape, the
counts are the site's (every worker's traffic, summed through the supervisor's metrics
directory); a worker killed with SIGKILL takes its open connections out of the gauge and leaves
its counts in the counters. And nothing imports prometheus-client before the supervisor has
chosen that directory (it decides at import where values live)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlencode

from tests.ops_support import Samples, parse, serving_config, value
from tests.serve_support import running_gateway, serving_pid, wait_for_workers, worker_pids
from tests.sip2_support import sip2_exchange

DEADLINE = 30  # seconds: a bound against hangs, never a measurement
SIP2_LOGIN = b"9300CNkiosk|COkiosk-pw|"


def scrape_by_worker(ops_port: int) -> tuple[int, Samples]:
    """(pid of the worker that answered, its /metrics): /health and /metrics over one kept-alive
    connection, so both come from the same worker."""
    connection = http.client.HTTPConnection("127.0.0.1", ops_port, timeout=15)
    try:
        connection.request("GET", "/health")
        health = connection.getresponse()
        pid = int(json.loads(health.read())["pid"])
        connection.request("GET", "/metrics")
        answer = connection.getresponse()
        assert answer.status == 200
        return pid, parse(answer.read())
    finally:
        connection.close()


def scrapes_from(ops_port: int, workers: set[int]) -> dict[int, Samples]:
    """A scrape answered by each of `workers` (new connections until each has answered one)."""
    found: dict[int, Samples] = {}
    deadline = time.monotonic() + DEADLINE
    while set(found) != workers:
        assert time.monotonic() < deadline, f"scrapes answered only by {set(found)} of {workers}"
        pid, samples = scrape_by_worker(ops_port)
        assert pid in workers, (pid, workers)
        found.setdefault(pid, samples)
    return found


def test_metrics_sum_every_workers_traffic_and_a_killed_worker_keeps_its_counts(
    tmp_path,
) -> None:
    config, ports = serving_config(tmp_path, workers=2)
    sip2_port, sru_port, ops_port = ports
    now = time.strftime("%Y%m%d    %H%M%S")
    with running_gateway(config, ports) as process:  # one probe connection to each port
        workers = wait_for_workers(process.pid, 2)
        # SIP2 sessions until each worker has served at least three (the kernel spreads new
        # connections over the workers' sockets; the bound only keeps a broken spread from
        # looping for ever).
        served: dict[int, int] = {pid: 0 for pid in workers}
        sessions = 0
        while min(served.values()) < 3:
            assert sessions < 200, f"the sessions went to {served}"
            with socket.create_connection(("127.0.0.1", sip2_port), timeout=10) as terminal:
                assert sip2_exchange(terminal, SIP2_LOGIN).startswith(b"941")
                patron = sip2_exchange(terminal, f"23000{now}AOMAIN|AAP0001|AC|".encode())
                assert patron.startswith(b"24")
                pid = serving_pid(sip2_port, terminal.getsockname()[1], workers)
                assert pid in served, pid
                served[pid] += 1
            sessions += 1
        for number in range(10):
            query = "dc.title = 红楼梦" if number % 2 else "dc.title = ("
            connection = http.client.HTTPConnection("127.0.0.1", sru_port, timeout=15)
            connection.request("GET", "/main?" + urlencode({"query": query}))
            assert connection.getresponse().status == 200
            connection.close()

        def settled() -> dict[int, Samples]:
            # The last connections' closes reach the workers a moment after their answers.
            deadline = time.monotonic() + DEADLINE
            while True:
                found = scrapes_from(ops_port, workers)
                if all(
                    value(s, "libgate_connections_open", protocol=p) == 0
                    for s in found.values()
                    for p in ("sip2", "sru")
                ) or (time.monotonic() > deadline):
                    return found
                time.sleep(0.2)

        for pid, found in settled().items():
            who = f"the scrape answered by worker {pid}"
            assert value(found, "libgate_connections_accepted_total", protocol="sip2") == (
                1 + sessions
            ), who
            assert value(found, "libgate_connections_open", protocol="sip2") == 0, who
            assert value(found, "libgate_sip2_messages_total", command="93", outcome="ok") == (
                sessions
            ), who
            assert value(found, "libgate_sip2_message_seconds_count", command="23") == sessions
            assert value(found, "libgate_connections_accepted_total", protocol="sru") == 1 + 10
            searches = "libgate_sru_requests_total"
            assert value(found, searches, operation="searchRetrieve", outcome="ok") == 5, who
            assert value(found, searches, operation="searchRetrieve", outcome="diagnostic") == 5
            assert (
                value(
                    found,
                    "libgate_sru_diagnostics_total",
                    operation="searchRetrieve",
                    diagnostic="10",
                )
                == 5
            ), who

        # A session held open on one worker, which is then killed: its connection leaves the
        # open gauge (the supervisor marks it dead), its counts stay.
        terminal = socket.create_connection(("127.0.0.1", sip2_port), timeout=10)
        try:
            assert sip2_exchange(terminal, SIP2_LOGIN).startswith(b"941")
            victim = serving_pid(sip2_port, terminal.getsockname()[1], workers)
            assert victim in workers
            for found in scrapes_from(ops_port, workers).values():
                assert value(found, "libgate_connections_open", protocol="sip2") == 1
            os.kill(victim, signal.SIGKILL)
            deadline = time.monotonic() + DEADLINE
            while victim in (now_running := worker_pids(process.pid)) or len(now_running) < 2:
                assert time.monotonic() < deadline, "the killed worker was not replaced"
                time.sleep(0.1)
            for found in scrapes_from(ops_port, now_running).values():
                assert value(found, "libgate_connections_open", protocol="sip2") == 0
                assert value(found, "libgate_connections_accepted_total", protocol="sip2") == (
                    1 + sessions + 1
                )
                assert value(found, "libgate_sip2_messages_total", command="93", outcome="ok") == (
                    sessions + 1
                )
        finally:
            terminal.close()


def test_nothing_imports_prometheus_client_before_the_supervisor_chooses_its_directory() -> None:
    """prometheus-client decides at its import whether values live in the process or in the
    workers' directory; `libgate serve` imports all of this before the supervisor decides."""
    probe = (
        "import sys, gateway.cli, gateway.supervisor, gateway.ops, gateway.metrics;"
        "print(sorted(m for m in sys.modules if m.startswith('prometheus_client')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
