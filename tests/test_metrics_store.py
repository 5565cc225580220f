"""The metrics a serving process reads from the store at scrape time, on both engines, with two
workers: the batches of a `libgate load` run by the CLI (another process, which nobody
scrapes), counted once whichever worker answers; and on PostgreSQL the connection pools,
summed over the workers, with a pool timeout counted from a real pool."""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from gateway import metrics
from gateway.cli.errors import EXIT_OK, EXIT_REJECTED
from gateway.store import StoreError
from gateway.store.postgres import PostgresStore
from tests.conftest import FIXTURES
from tests.ops_support import Samples, parse, samples, serving_config, value
from tests.serve_support import running_gateway, wait_for_workers

DEADLINE = 30  # seconds: a bound against hangs (the batch figures are cached for 5 s)
NO_TITLE = FIXTURES / "marc" / "loading" / "dp2_bnu_cnmarcxml_no_title.xml"  # 9 load, 1 reject
POOL_SIZE = 3


def until(probe: Callable[[], Samples | None], what: str) -> Samples:
    deadline = time.monotonic() + DEADLINE
    while True:
        found = probe()
        if found is not None:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def test_a_cli_load_and_the_pools_show_in_the_metrics_of_a_running_serve(
    tmp_path: Path, store_url: str
) -> None:
    config, ports = serving_config(tmp_path, store_url, workers=2)
    text = config.read_text("utf-8").replace(
        "[storage]\n",
        f'[storage]\npool_size = {POOL_SIZE}\nsearch_index_dir = "{tmp_path / "index"}"\n',
    )
    config.write_text(text, encoding="utf-8")
    ops_port = ports[2]
    postgresql = store_url.startswith("postgresql")
    with running_gateway(config, ports) as process:
        wait_for_workers(process.pid, 2)
        if postgresql:
            # Before any other scrape, every scrape over one kept-alive connection (so one
            # worker answers them all): the other worker's pool reaches the sums by its own
            # periodic copy, not by answering a scrape.
            pinned = http.client.HTTPConnection("127.0.0.1", ops_port, timeout=15)
            try:

                def both_pools_pinned() -> Samples | None:
                    pinned.request("GET", "/metrics")
                    found = parse(pinned.getresponse().read())
                    most = value(found, "libgate_db_pool_max_connections")
                    return found if most == 2 * POOL_SIZE else None

                until(both_pools_pinned, "the other worker's pool, copied by that worker")
            finally:
                pinned.close()
        before = samples(ops_port)
        assert value(before, "libgate_batch_records_total", kind="load", outcome="new") == 0

        load = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), "load"]
            + ["--database", "main", str(NO_TITLE)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert load.returncode in (EXIT_OK, EXIT_REJECTED), load.stderr

        def loaded() -> Samples | None:
            found = samples(ops_port)
            new = value(found, "libgate_batch_records_total", kind="load", outcome="new")
            return found if new else None

        # Several scrapes (new connections: either worker answers): never summed per worker.
        for _ in range(4):
            found = until(loaded, "the load's batch in /metrics")
            assert value(found, "libgate_batches", kind="load", state="done") == 1
            records = "libgate_batch_records_total"
            assert value(found, records, kind="load", outcome="new") == 9
            assert value(found, records, kind="load", outcome="reject") == 1
            assert not [name for name, _ in found if name.startswith("libgate_load_")]

        pool = [(name, labels) for name, labels in found if name.startswith("libgate_db_pool")]
        if not postgresql:
            assert pool == []  # SQLite has no pool
            return

        def both_pools() -> Samples | None:
            # Each worker copies its pool's figures every few seconds, the answering one at once.
            found = samples(ops_port)
            most = value(found, "libgate_db_pool_max_connections")
            return found if most == 2 * POOL_SIZE else None

        found = until(both_pools, "both workers' pools in /metrics")
        open_now = value(found, "libgate_db_pool_connections", state="in_use") + value(
            found, "libgate_db_pool_connections", state="idle"
        )
        assert 2 <= open_now <= 2 * POOL_SIZE  # each pool keeps one open, at least
        assert value(found, "libgate_db_pool_requests_total") > 0
        assert value(found, "libgate_db_pool_waiting_requests") == 0
        assert value(found, "libgate_db_pool_timeouts_total") == 0


def test_a_pool_timeout_is_counted(postgres_url: str) -> None:
    """A real one-connection pool: one reader holds the connection, a health check gives up
    waiting for it; the pool's statistics then count one timeout and two requests."""
    store = PostgresStore(postgres_url, pool_size=1)
    try:
        watch = metrics.PoolWatch(store)
        watch.refresh()

        def counted(name: str) -> float:
            return REGISTRY.get_sample_value(name) or 0.0

        timeouts = counted("libgate_db_pool_timeouts_total")
        holding, release = threading.Event(), threading.Event()

        def reader() -> None:
            with store.read() as tx:
                tx.one("SELECT 1")
                holding.set()
                release.wait(30)

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            assert holding.wait(30)
            watch.refresh()
            assert REGISTRY.get_sample_value(
                "libgate_db_pool_connections", {"state": "in_use"}
            ) == (1)
            with pytest.raises(StoreError):
                store.ping(0.2)
        finally:
            release.set()
            thread.join(30)
        watch.refresh()
        assert counted("libgate_db_pool_timeouts_total") == timeouts + 1
        assert REGISTRY.get_sample_value("libgate_db_pool_max_connections") == 1
    finally:
        store.close()
