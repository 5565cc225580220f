"""Progress of `libgate load`: a bar per file on a terminal, nothing when piped or logged."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import TaskID


class NoProgress:
    # False when the load was interrupted: the last bar stays where the load stopped.
    complete = True

    def __enter__(self) -> NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def start_file(self, path: Path) -> None: ...

    def advance(self, done: int) -> None: ...


class RichProgress(NoProgress):
    """A progress bar per file, by bytes read, on a terminal only."""

    def __init__(self) -> None:
        # rich is imported here, not at the top: every other command starts faster without it.
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None and self.complete:
            self._progress.update(self._task, completed=self._progress.tasks[-1].total)
        self._progress.stop()

    def start_file(self, path: Path) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=self._progress.tasks[-1].total)
        self._task = self._progress.add_task(path.name, total=path.stat().st_size)

    def advance(self, done: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=done)


def progress_for(paths: list[Path]) -> NoProgress:
    return RichProgress() if sys.stderr.isatty() else NoProgress()
