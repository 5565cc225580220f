"""The ILL listener's connections: the shared HTTP limits (gateway/http_listener.py: caps and
per-phase deadlines; between two requests on a kept-alive connection, `header_timeout` again),
with ISO 18626's answer to a body over `max_message_bytes`: it is not read to its end, but
answered at once with a BadlyFormedMessage confirmation (the standard's answer, not an HTTP
error), and the connection closed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from twisted.web import resource

from gateway.admission import ConnectionCaps
from gateway.circulation.ill_types import Confirmation, ErrorType
from gateway.config import IllSettings
from gateway.http_listener import CappedRequest, Deadlines, LimitedSite
from ill.wire import CONTENT_TYPE, ConfirmationHeader
from ill.writing import write_confirmation


def too_large(max_bytes: int) -> bytes:
    """A whole HTTP response (status line, headers, confirmation) for a body over the cap."""
    body = write_confirmation(
        None,
        ConfirmationHeader(),
        Confirmation.error(
            ErrorType.BADLY_FORMED_MESSAGE, f"the message is larger than {max_bytes} bytes"
        ),
        datetime.now(UTC),
    )
    return (
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: "
        + CONTENT_TYPE
        + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
    )


class IllRequest(CappedRequest):
    """A request whose body over the cap is answered with a BadlyFormedMessage confirmation."""

    max_bytes = 102400

    def refusal(self) -> bytes:
        return too_large(self.max_bytes)


def ill_site(root: resource.Resource, connections: ConnectionCaps, ill: IllSettings) -> LimitedSite:
    """The ILL site: limited connections, and bodies capped at `max_message_bytes`."""
    site = LimitedSite(
        "ILL",
        root,
        connections,
        Deadlines(ill.header_timeout, ill.body_timeout, keepalive=ill.header_timeout),
    )
    cap = ill.max_message_bytes

    class CappedIllRequest(IllRequest):
        max_bytes = cap

    site.requestFactory = CappedIllRequest
    return site


__all__ = ["IllRequest", "ill_site", "too_large"]
