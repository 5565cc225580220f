"""`POST /iso18626` on a real loopback port, with a real HTTP client (http.client): messages
reach the handler and its confirmation comes back valid against the v1.2 XSD; unreadable
messages are answered without it; wrong methods, content types, sizes, paths and too many or
too slow connections get what ill/resource.py and ill/channel.py promise. The server is the
production site (`ill.resource.build_site`) on Twisted's reactor in a background thread; the
handler is the test's own object recording what it was given."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from lxml import etree
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.threads import blockingCallFromThread
from twisted.python.threadpool import ThreadPool

from gateway.circulation.ill_types import (
    Action,
    Confirmation,
    ErrorType,
    ReasonForMessage,
)
from gateway.config import IllSettings
from ill.handler import IllHandler
from ill.reading import read_confirmation, read_message
from ill.resource import build_site
from ill.wire import MessageKind
from tests.conftest import FIXTURES
from tests.ill_http_support import RecordingHandler
from tests.sru_support import reactor_in_thread

ISO = FIXTURES / "iso18626"
LIMIT = 4096
XML = {"Content-Type": "application/xml"}


@dataclass
class Server:
    host: str
    port: int
    handler: RecordingHandler

    def post(
        self,
        body: bytes,
        headers: dict[str, str] | None = None,
        method: str = "POST",
        path: str = "/iso18626",
    ) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        connection.request(method, path, body=body, headers=XML if headers is None else headers)
        response = connection.getresponse()
        response.body = response.read()  # type: ignore[attr-defined]
        connection.close()
        return response


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(ISO / "ISO-18626-v1_2.xsd"), parser))


def start(settings: IllSettings, handler: IllHandler) -> Iterator[tuple[str, int]]:
    reactor = reactor_in_thread()
    pool = ThreadPool(minthreads=1, maxthreads=2, name="ill-test")
    pool.start()
    site = build_site(settings, handler, pool, reactor)
    endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
    port = blockingCallFromThread(reactor, endpoint.listen, site)
    yield "127.0.0.1", port.getHost().port
    blockingCallFromThread(reactor, port.stopListening)
    pool.stop()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    handler = RecordingHandler()
    for host, port in start(IllSettings(max_message_bytes=LIMIT), handler):
        yield Server(host, port, handler)


@pytest.fixture(autouse=True)
def fresh(request: pytest.FixtureRequest) -> None:
    if "server" in request.fixturenames:
        request.getfixturevalue("server").handler.take()


def sample(name: str) -> bytes:
    return (ISO / "samples" / name).read_bytes()


def confirmation_of(response: http.client.HTTPResponse, schema: etree.XMLSchema):
    assert response.status == 200
    assert response.getheader("content-type") == "application/xml; charset=UTF-8"
    body = response.body  # type: ignore[attr-defined]
    assert schema.validate(etree.fromstring(body)), schema.error_log
    return read_confirmation(body, LIMIT)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("RequestSample1ForISOService.xml", MessageKind.REQUEST),
        ("SupplyingAgencyMessageOverdue.xml", MessageKind.SUPPLYING_AGENCY_MESSAGE),
        ("RequestingAgencyMessageCancel.xml", MessageKind.REQUESTING_AGENCY_MESSAGE),
    ],
)
def test_a_message_reaches_the_handler_and_is_confirmed(
    server: Server, schema: etree.XMLSchema, name: str, kind: MessageKind
) -> None:
    data = sample(name)
    confirmation = confirmation_of(server.post(data), schema)
    assert confirmation.kind is kind
    assert confirmation.confirmation == Confirmation.accepted()
    message = read_message(data, LIMIT)
    assert server.handler.take() == [message]
    assert confirmation.header.requesting_agency == message.header.requesting_agency
    assert confirmation.header.supplying_agency == message.header.supplying_agency
    assert (
        confirmation.header.requesting_agency_request_id
        == message.header.requesting_agency_request_id
    )
    assert confirmation.header.timestamp == message.header.timestamp
    if kind is MessageKind.SUPPLYING_AGENCY_MESSAGE:
        assert confirmation.reason_for_message is ReasonForMessage.STATUS_CHANGE
    if kind is MessageKind.REQUESTING_AGENCY_MESSAGE:
        assert confirmation.action is Action.CANCEL


def test_the_handlers_error_is_the_confirmations(server: Server, schema: etree.XMLSchema) -> None:
    confirmation = confirmation_of(server.post(sample("RequestingAgencyMessageRenew.xml")), schema)
    assert confirmation.kind is MessageKind.REQUESTING_AGENCY_MESSAGE
    assert confirmation.action is Action.RENEW
    assert confirmation.confirmation == Confirmation.error(
        ErrorType.UNRECOGNISED_DATA_VALUE,
        "requestingAgencyRequestId: request with a given ID not found",
    )
    assert len(server.handler.take()) == 1


def test_text_xml_with_a_charset_is_taken(server: Server, schema: etree.XMLSchema) -> None:
    for content_type in ("text/xml; charset=utf-8", "Application/XML;charset=UTF-8"):
        response = server.post(
            sample("RequestingAgencyMessageReceived.xml"), {"Content-Type": content_type}
        )
        assert confirmation_of(response, schema).confirmation.ok
    assert len(server.handler.take()) == 2


@pytest.mark.parametrize(
    ("body", "error_type", "kind"),
    [
        (b"not xml at all", ErrorType.BADLY_FORMED_MESSAGE, MessageKind.REQUEST),
        (b"", ErrorType.BADLY_FORMED_MESSAGE, MessageKind.REQUEST),
        (
            sample("RequestingAgencyMessageRenew.xml").replace(b">Renew<", b">HoldReturn<"),
            ErrorType.UNSUPPORTED_ACTION_TYPE,
            MessageKind.REQUESTING_AGENCY_MESSAGE,
        ),
        (
            sample("SupplyingAgencyMessageOverdue.xml").replace(b">Overdue<", b">Lost<"),
            ErrorType.UNRECOGNISED_DATA_VALUE,
            MessageKind.SUPPLYING_AGENCY_MESSAGE,
        ),
        (
            sample("RequestConfirmationSample1.xml"),
            ErrorType.BADLY_FORMED_MESSAGE,
            MessageKind.REQUEST,
        ),
    ],
)
def test_an_unreadable_message_is_answered_without_the_handler(
    server: Server, schema: etree.XMLSchema, body: bytes, error_type: ErrorType, kind: MessageKind
) -> None:
    confirmation = confirmation_of(server.post(body), schema)
    assert confirmation.kind is kind
    assert not confirmation.confirmation.ok
    assert confirmation.confirmation.error_type is error_type
    assert confirmation.confirmation.error_value
    assert server.handler.take() == []


def test_a_refused_message_echoes_what_could_be_read(
    server: Server, schema: etree.XMLSchema
) -> None:
    body = sample("RequestingAgencyMessageRenew.xml").replace(b">Renew<", b">Explode<")
    confirmation = confirmation_of(server.post(body), schema)
    assert confirmation.header.requesting_agency is not None
    assert confirmation.header.requesting_agency.value == "OCLC-BCDEF"


def test_a_body_over_the_cap_is_a_badly_formed_confirmation(
    server: Server, schema: etree.XMLSchema
) -> None:
    big = sample("RequestSample1.xml").replace(
        b"<ns1:note>Note</ns1:note>", b"<ns1:note>" + b"x" * LIMIT + b"</ns1:note>"
    )
    confirmation = confirmation_of(server.post(big), schema)
    assert confirmation.confirmation.error_type is ErrorType.BADLY_FORMED_MESSAGE
    assert f"larger than {LIMIT} bytes" in confirmation.confirmation.error_value
    assert server.handler.take() == []


def test_a_chunked_body_over_the_cap_is_refused_as_it_grows(
    server: Server, schema: etree.XMLSchema
) -> None:
    chunk = b"<x>" + b"y" * 997
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5)) + b"0\r\n\r\n"
    # One write, so the server has it all when it answers and closes (a client still sending
    # then would be reset: the usual fate of an upload refused half way).
    raw = socket.create_connection((server.host, server.port), timeout=30)
    raw.sendall(
        b"POST /iso18626 HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + body
    )
    response = http.client.HTTPResponse(raw)
    response.begin()
    response.body = response.read()  # type: ignore[attr-defined]
    raw.close()
    refused = confirmation_of(response, schema).confirmation
    assert refused.error_type is ErrorType.BADLY_FORMED_MESSAGE
    assert f"larger than {LIMIT} bytes" in refused.error_value  # cut off, not read whole


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
def test_other_methods_get_405(server: Server, method: str) -> None:
    response = server.post(b"", method=method)
    assert response.status == 405
    assert response.getheader("allow") == "POST"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/json", "application/x-www-form-urlencoded", ""]
)
def test_other_content_types_get_415(server: Server, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = server.post(sample("RequestingAgencyMessageCancel.xml"), headers)
    assert response.status == 415
    assert server.handler.take() == []


@pytest.mark.parametrize("path", ["/", "/iso18626/extra", "/sru"])
def test_other_paths_get_404(server: Server, path: str) -> None:
    assert server.post(sample("RequestingAgencyMessageCancel.xml"), path=path).status == 404


def test_a_failing_handler_is_a_500_so_the_partner_sends_again(server: Server) -> None:
    body = sample("RequestingAgencyMessageCancel.xml").replace(
        b"</ns1:action>", b"</ns1:action><ns1:note>crash</ns1:note>"
    )
    response = server.post(body)
    assert response.status == 500
    assert b"ISO18626Message" not in response.body  # type: ignore[attr-defined]


def closed_by_server(sock: socket.socket) -> bool:
    """The server closed (or aborted) the connection without a byte of answer."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def test_connections_past_the_per_address_cap_are_closed() -> None:
    handler = RecordingHandler()
    settings = IllSettings(max_message_bytes=LIMIT, max_connections_per_address=2)
    for host, port in start(settings, handler):
        held = [socket.create_connection((host, port), timeout=30) for _ in range(2)]
        try:
            try:
                third = socket.create_connection((host, port), timeout=30)
            except ConnectionResetError:  # aborted before connect() had even returned
                pass
            else:
                assert closed_by_server(third)  # before any HTTP
                third.close()
            # the two let in still work
            held[0].sendall(
                b"POST /iso18626 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                b"Content-Length: 3\r\nConnection: close\r\n\r\nbad"
            )
            answer = b""
            while chunk := held[0].recv(65536):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200")
            assert b"BadlyFormedMessage" in answer
        finally:
            for sock in held:
                sock.close()


def test_a_client_too_slow_with_its_headers_is_closed() -> None:
    handler = RecordingHandler()
    settings = IllSettings(max_message_bytes=LIMIT, header_timeout=1)
    for host, port in start(settings, handler):
        slow = socket.create_connection((host, port), timeout=30)
        slow.sendall(b"POST /iso18626 HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        assert closed_by_server(slow)  # at the deadline, without an answer
        slow.close()
        assert handler.take() == []
