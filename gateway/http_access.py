"""The access line of one HTTP request (SRU, ISO 18626, the portal), written when the request
ends: answered, refused before any work (busy, too large), or abandoned by the client.

Waiting for the end (`notifyFinish`) rather than logging where each answer is written gives
every path of a front-end its line, the refusals included, and `ms` then covers the queue,
the work and the write. The front-end fills in what only it knows (the operation, the query,
a diagnostic) as it learns it.
"""

from __future__ import annotations

import logging
import time

from twisted.python.failure import Failure
from twisted.web import server

from gateway.access_log import Access, log_access


class HttpAccess:
    def __init__(
        self, request: server.Request, channel: str, logger: logging.Logger, command: str
    ) -> None:
        self.request = request
        self.channel = channel
        self.logger = logger
        self.command = command
        self.query: str | None = None
        self.outcome: str | None = None  # None: read from the status code
        self.account = ""
        self.started = time.perf_counter()
        client = request.getClientAddress()
        self.peer = str(getattr(client, "host", client))
        request.notifyFinish().addCallbacks(self._answered, self._gone)

    def _answered(self, _: object) -> None:
        code = int(self.request.code or 200)
        self._write(f"http {code}" if code >= 400 else self.outcome or "ok")

    def _gone(self, _failure: Failure) -> None:
        self._write("client-gone")

    def _write(self, outcome: str) -> None:
        log_access(
            self.logger,
            Access(
                channel=self.channel,
                account=self.account,
                peer=self.peer,
                command=self.command,
                query=self.query,
                outcome=outcome,
                ms=(time.perf_counter() - self.started) * 1000,
            ),
        )
