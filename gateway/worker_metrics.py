"""The supervisor's side of metrics across workers (gateway/supervisor.py).

Each worker is its own process, so each would count for itself and a scrape of `/metrics`
would show whichever worker accepted it. prometheus-client's multiprocess mode keeps every
worker's values in files of one directory, and the worker answering a scrape sums them
(gateway/metrics.Exposition). The supervisor:

- chooses the directory before any worker exists: `PROMETHEUS_MULTIPROC_DIR` when the operator
  set it (its `*.db` files, a previous run's, are removed: counting starts again at each start,
  as a single process's does), else a private new one (0700) under systemd's
  `$RUNTIME_DIRECTORY` or the temporary directory, removed when the supervisor ends;
- marks a worker that ended as dead, so its live gauges (open connections, pool connections)
  leave the sums; its counters stay in them, as a site's counts should.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gateway import metrics


@dataclass(frozen=True)
class SharedMetrics:
    directory: str
    ours: bool  # made by us, so removed by us

    def worker_gone(self, pid: int) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, self.directory)  # type: ignore[no-untyped-call]

    def remove(self) -> None:
        if self.ours:
            shutil.rmtree(self.directory, ignore_errors=True)


def share_metrics_between_workers() -> SharedMetrics:
    given = os.environ.get(metrics.MULTIPROCESS_DIR, "")
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for earlier in Path(given).glob("*.db"):
            earlier.unlink(missing_ok=True)
        shared = SharedMetrics(given, ours=False)
    else:
        runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0] or None
        shared = SharedMetrics(tempfile.mkdtemp(prefix="libgate-metrics-", dir=runtime), True)
    metrics.use_directory_between_workers(shared.directory)
    # Imported now (the directory is set), so reaping a worker never waits for an import.
    importlib.import_module("prometheus_client.multiprocess")
    return shared


__all__ = ["SharedMetrics", "share_metrics_between_workers"]
