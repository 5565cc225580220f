"""Where `serve`'s log goes and in what form: `[service] log_format` (text | json) and
`log_file` (with `log_max_bytes`, `log_backups`), or stderr when no file is named, which is
what journald wants from a service unit.

One process (`workers = 1`) rotates its own file at `log_max_bytes`. Several workers share one
file opened for appending (each line is one write, so lines do not interleave) but cannot
rotate it among themselves, as one renaming the file under the others would lose lines: they
reopen it when it is moved (`WatchedFileHandler`), so logrotate or similar does the rotating.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime

from gateway.access_log import ACCESS_ATTRIBUTE
from gateway.config import ServiceSettings


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, an access line's fields, the message."""

    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        if self.worker is not None:
            entry["worker"] = self.worker
        access = getattr(record, ACCESS_ATTRIBUTE, None)
        if isinstance(access, dict):
            entry.update(access)
        entry["message"] = record.getMessage()
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def log_handler(service: ServiceSettings, *, rotating: bool = True) -> logging.Handler:
    """The handler `service` asks for; `rotating` is False when several processes write."""
    if not service.log_file:
        return logging.StreamHandler(sys.stderr)
    if rotating and service.log_max_bytes > 0:
        return logging.handlers.RotatingFileHandler(
            service.log_file,
            maxBytes=service.log_max_bytes,
            backupCount=service.log_backups,
            encoding="utf-8",
        )
    return logging.handlers.WatchedFileHandler(service.log_file, encoding="utf-8")


def install_logging(
    service: ServiceSettings, *, worker: int | None = None, rotating: bool = True
) -> None:
    """Replace the root logger's handlers with the one `service` asks for."""
    handler = log_handler(service, rotating=rotating)
    if service.log_format == "json":
        handler.setFormatter(JsonFormatter(worker))
    else:
        # Under a supervisor each line names its worker, so a partner's trouble can be followed.
        named = f"worker={worker} " if worker is not None else ""
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s %(name)s {named}%(message)s")
        )
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(service.log_level.upper())
