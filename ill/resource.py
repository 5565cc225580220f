"""`POST /iso18626`: a partner's ISO 18626 message in, its confirmation out (HTTP 200).

Only wrong methods (405) and content types (415) get HTTP errors, as the peers do; everything
about the message itself is answered in the confirmation. A message that cannot be read is
answered here with its errorType without reaching the handler; a readable one goes to the
handler (ill/handler.py) in a thread of the ILL pool, decoding and encoding included, so the
reactor only moves bytes. If the handler fails, the answer is 500 with no confirmation: the
partner was not at fault and should send again, which a confirmation would tell it not to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web import resource, server

from gateway import metrics
from gateway.admission import ConnectionCaps
from gateway.circulation.ill_types import (
    Confirmation,
    Message,
    Request,
    RequestingAgencyMessage,
    SupplyingAgencyMessage,
)
from gateway.config import IllSettings, Settings
from gateway.http_access import HttpAccess
from gateway.http_listener import LimitedSite, connection_caps
from gateway.networks import Networks
from gateway.services import ThreadPoolService, add_listeners, engine_threads
from gateway.store import Store
from ill.channel import ill_site
from ill.handler import IllHandler
from ill.reading import read_message
from ill.wire import CONTENT_TYPE, ConfirmationHeader, MessageError, MessageKind
from ill.writing import write_confirmation

log = logging.getLogger("libgate.ill")
PATH = b"iso18626"
XML_TYPES = (b"application/xml", b"text/xml")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Iso18626Resource(resource.Resource):
    isLeaf = True

    # Resource.__init__ is called by name: Twisted leaves it unannotated.
    def __init__(
        self,
        handler: IllHandler,
        pool: ThreadPool,
        max_bytes: int,
        reactor: IReactorFromThreads | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        resource.Resource.__init__(self)
        self.handler = handler
        self.pool = pool
        self.max_bytes = max_bytes
        if reactor is None:
            from twisted.internet import reactor as default

            reactor = default  # type: ignore[assignment]
        self.reactor = reactor
        self.now = now

    def render(self, request: server.Request) -> int | bytes:
        if any(request.postpath or ()):  # /iso18626/ is /iso18626; /iso18626/x is nothing
            return _plain(request, 404, b"No such resource: POST to /iso18626\n")
        if request.method != b"POST":
            request.setHeader(b"allow", b"POST")
            return _plain(request, 405, b"ISO 18626 messages are POSTed here\n")
        content_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if content_type not in XML_TYPES:
            return _plain(request, 415, b"POST application/xml or text/xml\n")
        body = request.content.read(self.max_bytes + 1) if request.content else b""
        access = HttpAccess(request, "ill", log, "POST /iso18626")
        received = self.now()
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _failure: gone.append(True))
        assert self.reactor is not None
        deferred = deferToThreadPool(self.reactor, self.pool, self.answer, body, received, access)

        def write(answer: bytes) -> None:
            if gone:  # the partner went away; it will send again and be answered then
                return
            request.setResponseCode(200)
            request.setHeader(b"content-type", CONTENT_TYPE)
            request.setHeader(b"content-length", b"%d" % len(answer))
            request.write(answer)
            request.finish()

        def fail(failure: Failure) -> None:
            log.error("ILL handler failed: %s", failure.getTraceback())
            metrics.ill_received(None, "internal-error")
            if not gone:
                request.setResponseCode(500)
                request.setHeader(b"content-type", b"text/plain; charset=UTF-8")
                request.write(b"internal error; send the message again later\n")
                request.finish()

        deferred.addCallbacks(write, fail)
        return server.NOT_DONE_YET

    def answer(self, body: bytes, received: datetime, access: HttpAccess | None = None) -> bytes:
        """The confirmation for one POSTed body (runs in a pool thread); `access`, when given,
        learns the message's kind and the confirmation's status (read once it is answered)."""
        try:
            message = read_message(body, self.max_bytes)
        except MessageError as error:
            log.info("ILL message refused: %s", error)
            refusal = write_confirmation(
                error.kind,
                error.header,
                error.confirmation,
                received,
                reason_for_message=error.reason_for_message,
                action=error.action,
            )
            metrics.ill_received(error.kind.value if error.kind else None, error.error_type.value)
            if access is not None:
                access.command = error.kind.value if error.kind else access.command
                access.outcome = f"error {error.error_type}"
            return refusal
        confirmation = self.dispatch(message)
        answer = write_confirmation(
            MessageKind.of(message),
            ConfirmationHeader.echoing(message.header),
            confirmation,
            received,
            reason_for_message=getattr(message, "reason_for_message", None),
            action=getattr(message, "action", None),
        )
        # Counted once the answer is written: a failure before it is counted by `fail` alone.
        metrics.ill_received(
            MessageKind.of(message).value,
            "ok" if confirmation.ok else str(confirmation.error_type or "error"),
        )
        if access is not None:
            access.command = MessageKind.of(message).value
            access.outcome = "ok" if confirmation.ok else f"error {confirmation.error_type}"
        return answer

    def dispatch(self, message: Message) -> Confirmation:
        if isinstance(message, Request):
            return self.handler.on_request(message)
        if isinstance(message, SupplyingAgencyMessage):
            return self.handler.on_supplying_agency_message(message)
        assert isinstance(message, RequestingAgencyMessage)
        return self.handler.on_requesting_agency_message(message)


class Root(resource.Resource):
    """`/iso18626` and nothing else."""

    def __init__(self, endpoint: Iso18626Resource) -> None:
        resource.Resource.__init__(self)
        self.endpoint = endpoint

    def getChild(self, path: bytes, request: server.Request) -> resource.Resource:
        return self.endpoint if path == PATH else self

    def render(self, request: server.Request) -> bytes:
        return _plain(request, 404, b"No such resource: POST to /iso18626\n")


def _plain(request: server.Request, code: int, text: bytes) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"text/plain; charset=UTF-8")
    return text


def build_site(
    ill: IllSettings,
    handler: IllHandler,
    pool: ThreadPool,
    reactor: IReactorFromThreads | None = None,
) -> LimitedSite:
    root = Root(Iso18626Resource(handler, pool, ill.max_message_bytes, reactor))
    connections = ConnectionCaps(connection_caps(ill), Networks(()))
    return ill_site(root, connections, ill)


def ill_services(
    settings: Settings, store: Store, handler: IllHandler
) -> tuple[MultiService, list[str]]:
    """The ILL listeners from `[ill] listen`, under their thread pool's service."""
    from twisted.internet import reactor  # the process's reactor, as strports would take

    threads = engine_threads(store, settings.storage, settings.ill.threads)
    pool = ThreadPool(minthreads=1, maxthreads=threads, name="ill")
    site = build_site(settings.ill, handler, pool)
    service = ThreadPoolService(pool)
    described = add_listeners(
        service,
        reactor,
        settings.ill.listen,
        site,
        lambda endpoint: f"ISO 18626 ILL on {endpoint} (POST /iso18626)",
    )
    return service, described


__all__ = ["Iso18626Resource", "build_site", "ill_services"]
