"""What each serving process is: its place among the workers, the limits it enforces, and the
hooks it runs when the search index changes.

`libgate serve` runs `[service] workers` processes (gateway/supervisor.py). They are alike but
for worker 1, which also:

- runs the scheduled loops (hold deadlines, the notices outbox). Both are safe to run in
  several processes at once (hold deadlines take the title's lock and re-check; a notice is
  claimed with a lease before it is sent), which is what makes two gateways on one PostgreSQL
  correct; running them once per site instead of once per worker only saves the work.
- is the search index writer (`ProcessRole.index_writer`): a search index kept in a directory
  (one writer, many readers) is written by that process only. After it commits it calls
  `announce_index_change()`, and every worker (itself included) runs its reload hooks
  (`on_index_change`). With one process the hooks run at once, in that process.

Connection limits keep meaning the site's figure by division: each worker enforces
`share_of(figure, workers)`, the figure divided by the number of workers, rounded up (see
`settings_for_worker`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config import Settings

log = logging.getLogger("libgate")

# The signal the supervisor forwards to every worker: "the search index changed, reload it".
RELOAD_SIGNAL = signal.SIGHUP


@dataclass(frozen=True)
class ProcessRole:
    index: int  # 1-based
    count: int  # workers in all (1: a single process, no supervisor)

    @property
    def runs_schedules(self) -> bool:
        """Worker 1 runs the scheduled loops (hold deadlines, notices)."""
        return self.index == 1

    @property
    def index_writer(self) -> bool:
        """Worker 1 is the one process that may write the search index directory."""
        return self.index == 1

    @property
    def supervised(self) -> bool:
        return self.count > 1

    def __str__(self) -> str:
        return f"worker {self.index} of {self.count}"


SINGLE = ProcessRole(1, 1)
_role = SINGLE


def current_role() -> ProcessRole:
    return _role


def set_role(role: ProcessRole) -> None:
    global _role
    _role = role


# --- limits -------------------------------------------------------------------------------

# The connection caps each front-end counts per process (gateway/admission.ConnectionCaps).
# Thread pools and their queues (sip2 threads, max_queued_requests, ...) are a process's own
# resources and stay per worker.
DIVIDED_CAPS = {
    "sip2": (
        "max_connections",
        "max_connections_per_address",
        "max_unauthenticated",
        "max_unauthenticated_per_address",
    ),
    "sru": ("max_connections", "max_connections_per_address"),
    "z3950": (
        "max_sessions",
        "max_sessions_per_peer",
        "max_uninitialised",
        "max_uninitialised_per_peer",
    ),
}


def share_of(figure: int, workers: int) -> int:
    """One worker's part of a site-wide cap: the figure divided, rounded up, so a cap smaller
    than the number of workers still lets each worker take one."""
    return max(1, -(-figure // workers))


def settings_for_worker(settings: Settings, workers: int) -> Settings:
    """`settings` with every connection cap divided among `workers` processes."""
    if workers <= 1:
        return settings
    sections = {}
    for section, keys in DIVIDED_CAPS.items():
        current = getattr(settings, section)
        sections[section] = dataclasses.replace(
            current, **{key: share_of(getattr(current, key), workers) for key in keys}
        )
    return dataclasses.replace(settings, **sections)


# --- the search index seam ------------------------------------------------------------------

_reload_hooks: list[Callable[[], None]] = []


def on_index_change(hook: Callable[[], None]) -> None:
    """Run `hook` (e.g. reopen an index reader) in this process whenever the index writer
    announces a change. Hooks run in the reactor's thread pool, never on the reactor."""
    _reload_hooks.append(hook)


def run_reload_hooks() -> None:
    for hook in list(_reload_hooks):
        try:
            hook()
        except Exception:  # noqa: BLE001 - one failing reader must not stop the others
            log.exception("index reload hook %r failed", hook)


def announce_index_change() -> None:
    """Called by the index writer after a commit: every serving process reloads. Under a
    supervisor the signal goes to it, and it forwards the signal to every worker."""
    if _role.supervised:
        os.kill(os.getppid(), RELOAD_SIGNAL)
    else:
        run_reload_hooks()
