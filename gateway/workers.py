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

Connection caps keep meaning the site's figure: every worker counts on one board in shared
memory (gateway/site_counts.py, through gateway/admission.py).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("libgate")

# The signal the index writer sends the supervisor, which forwards it to every worker: "the
# search index changed, reopen it". SIGUSR1, which nothing else here uses: SIGHUP is the
# operator's "reload the configuration file" (gateway/reload.py; `systemctl reload`).
INDEX_CHANGED_SIGNAL = signal.SIGUSR1
# Held back (blocked) from the start of `serve` until the process has its handlers: either
# signal's default action would end a process still starting (gateway/app.py unblocks them).
HELD_SIGNALS = {signal.SIGHUP, INDEX_CHANGED_SIGNAL}


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


# --- the search index seam ------------------------------------------------------------------

_reload_hooks: list[Callable[[], None]] = []


def on_index_change(hook: Callable[[], None]) -> None:
    """Run `hook` (e.g. reopen an index reader) in this process whenever the index writer
    announces a change. Hooks run in the reactor's thread pool, never on the reactor."""
    _reload_hooks.append(hook)


def run_reload_hooks() -> None:
    log.debug("search index changed: %d reload hooks run", len(_reload_hooks))
    for hook in list(_reload_hooks):
        try:
            hook()
        except Exception:  # noqa: BLE001 - one failing reader must not stop the others
            log.exception("index reload hook %r failed", hook)


def announce_index_change() -> None:
    """Called by the index writer after a commit: every serving process reloads. Under a
    supervisor the signal (INDEX_CHANGED_SIGNAL) goes to it, and it forwards the signal to every
    worker."""
    if _role.supervised:
        os.kill(os.getppid(), INDEX_CHANGED_SIGNAL)
    else:
        run_reload_hooks()
