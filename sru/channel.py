"""The SRU listener's connections: the shared HTTP limits (gateway/http_listener.py: caps,
header, body and keep-alive deadlines) with SRU's own answers, SRU documents, for a request line
or header line that is too long."""

from __future__ import annotations

from twisted.web import resource

from gateway.admission import ConnectionCaps
from gateway.http_listener import Deadlines, LimitedChannel, LimitedSite
from sru.diagnostics import Diagnostic
from sru.response import diagnostic_response, serialize
from sru.versions import HIGHEST


def refusal_document(number: int, details: str, message: str) -> bytes:
    """A searchRetrieve response holding only one diagnostic."""
    return serialize(
        diagnostic_response(HIGHEST, "searchRetrieve", Diagnostic(number, details, message))
    )


def raw_refusal(status: bytes, number: int, details: str, message: str) -> bytes:
    """A whole HTTP response (status line, headers, SRU document) for a request Twisted never
    turned into a Request object, after which the connection is closed."""
    body = refusal_document(number, details, message)
    return (
        b"HTTP/1.1 " + status + b"\r\nConnection: close\r\n"
        b"Content-Type: text/xml; charset=UTF-8\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


class SruChannel(LimitedChannel):
    """A limited HTTP connection whose over-long lines get 414 or 431 with an SRU document."""

    def lineLengthExceeded(self, line: bytes) -> None:
        if self.transport is None:
            return
        if not self.requests:  # still in the request line: the URI is too long
            status, what = b"414 URI Too Long", "the request line"
        else:
            status, what = b"431 Request Header Fields Too Large", "a header line"
        self.transport.write(
            raw_refusal(status, 6, "request", f"{what} is longer than {self.MAX_LENGTH} bytes")
        )
        self.transport.loseConnection()


class SruSite(LimitedSite):
    channel_class = SruChannel

    def __init__(
        self,
        root: resource.Resource,
        connections: ConnectionCaps,
        deadlines: Deadlines,
        max_line_bytes: int,
    ) -> None:
        LimitedSite.__init__(self, "SRU", root, connections, deadlines, max_line_bytes)


__all__ = ["Deadlines", "SruChannel", "SruSite", "raw_refusal", "refusal_document"]
