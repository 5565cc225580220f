"""What the ILL HTTP tests share: a handler that records what the resource hands it."""

from __future__ import annotations

import threading

from gateway.circulation.ill_types import (
    Action,
    Confirmation,
    ErrorType,
    Message,
    Request,
    RequestingAgencyMessage,
    SupplyingAgencyMessage,
)


class RecordingHandler:
    """Takes every message, except: a Renew is refused as the engine refuses an unknown
    request, and a note saying 'crash' raises (a bug in the engine)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Message] = []

    def _record(self, message: Message) -> None:
        with self.lock:
            self.received.append(message)

    def on_request(self, request: Request) -> Confirmation:
        self._record(request)
        return Confirmation.accepted()

    def on_supplying_agency_message(self, message: SupplyingAgencyMessage) -> Confirmation:
        self._record(message)
        return Confirmation.accepted()

    def on_requesting_agency_message(self, message: RequestingAgencyMessage) -> Confirmation:
        self._record(message)
        if message.note == "crash":
            raise RuntimeError("the engine broke")
        if message.action is Action.RENEW:
            return Confirmation.error(
                ErrorType.UNRECOGNISED_DATA_VALUE,
                "requestingAgencyRequestId: request with a given ID not found",
            )
        return Confirmation.accepted()

    def take(self) -> list[Message]:
        with self.lock:
            taken, self.received = self.received, []
        return taken
