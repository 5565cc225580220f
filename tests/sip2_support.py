"""SIP2 terminals for tests: `Terminal` sends bytes through the real codec, session and
handlers without sockets; `ByteSummingClient` is an SC on a real socket written from the spec
text alone (none of our codec), summing the encoded bytes for its checksums; `sip2_exchange`
and `sip2_session` send ready-made frames over a real socket and read each answer to its CR."""

from __future__ import annotations

import socket
from datetime import UTC
from typing import Any

from gateway.circulation.clock import FixedClock
from gateway.circulation.engine import Engine
from gateway.config import Sip2Account, Sip2Settings
from sip2 import codec
from sip2.accounts import Accounts
from sip2.codec import Message
from sip2.handlers import Handlers
from sip2.session import Authenticate, Reply, Session

NOW = "20260302    090000"


class Terminal:
    """One SC connection: `send` encodes a request with AY/AZ and returns the parsed reply."""

    def __init__(
        self,
        engine: Engine,
        clock: FixedClock,
        role: str = "selfcheck",
        *,
        accounts: tuple[Sip2Account, ...] | None = None,
        peer: str = "127.0.0.1",
        **account: Any,
    ) -> None:
        if accounts is None:
            accounts = (
                Sip2Account(login="sc", password="pw", role=role, location="二楼借书处", **account),
            )
        self.settings = Sip2Settings(accounts=accounts)
        self.session = Session(self.settings, Accounts(self.settings), peer, clock.now, UTC)
        self.handlers = Handlers(engine, clock, UTC)
        self.sequence = 0
        self.closed = False
        self.encoding = accounts[0].encoding if accounts else "utf-8"

    def send_raw(self, frame: bytes) -> bytes:
        step = self.session.receive(frame)
        if isinstance(step, Authenticate):
            message = step.message
            account = self.session.accounts.authenticate(
                message.get("CN"), message.get("CO"), self.session.peer_host
            )
            step = self.session.logged_in(step, account)
        if isinstance(step, Reply):
            self.closed = self.closed or step.close
            return step.data
        terminal = f"{step.account.login}@{self.session.peer_host}"
        response = self.handlers.handle(step.account, step.message, terminal)
        return self.session.respond(step, response)

    def frame(self, command: str, fixed: dict[str, str] | None = None, **fields: Any) -> bytes:
        message = codec.build(command, fixed or {}, **fields)
        data = codec.encode(message, self.encoding, sequence=self.sequence, error_detection=True)
        self.sequence = (self.sequence + 1) % 10
        return data[:-1]

    def send(self, command: str, fixed: dict[str, str] | None = None, **fields: Any) -> Message:
        reply = self.send_raw(self.frame(command, fixed, **fields))
        assert reply.endswith((b"\r", b"\r\n"))
        received = codec.parse(reply.rstrip(b"\r\n"), self.encoding)
        assert received.checksum_ok is True, reply
        return received.message

    def login(self, login: str = "sc", password: str = "pw") -> Message:
        return self.send("93", {"uid_algorithm": "0", "pwd_algorithm": "0"}, CN=login, CO=password)

    # the requests of a self-check day, with the fields kiosks send

    def checkout(self, patron: str, item: str, **extra: Any) -> Message:
        fixed = {"sc_renewal_policy": "N", "no_block": "N", "transaction_date": NOW}
        return self.send("11", fixed, AO="MAIN", AA=patron, AB=item, AC="", **extra)

    def checkin(self, item: str) -> Message:
        fixed = {"no_block": "N", "transaction_date": NOW, "return_date": NOW}
        return self.send("09", fixed, AP="desk", AO="MAIN", AB=item, AC="")

    def renew(self, patron: str, item: str) -> Message:
        fixed = {"third_party_allowed": "N", "no_block": "N", "transaction_date": NOW}
        return self.send("29", fixed, AO="MAIN", AA=patron, AB=item)

    def hold(self, mode: str, patron: str, **fields: Any) -> Message:
        return self.send(
            "15", {"hold_mode": mode, "transaction_date": NOW}, AO="MAIN", AA=patron, **fields
        )

    def patron_information(self, patron: str, summary: str = " " * 10, **fields: Any) -> Message:
        fixed = {"language": "019", "transaction_date": NOW, "summary": summary}
        return self.send("63", fixed, AO="MAIN", AA=patron, **fields)

    def item_information(self, item: str) -> Message:
        return self.send("17", {"transaction_date": NOW}, AO="MAIN", AB=item)

    def patron_status(self, patron: str, **fields: Any) -> Message:
        fixed = {"language": "000", "transaction_date": NOW}
        return self.send("23", fixed, AO="MAIN", AA=patron, AC="", **fields)


class ByteSummingClient:
    """A byte-oriented SC over TCP, as the Koha, Evergreen and FOLIO peers and pysip2 are: it
    sends each request in the account's charset with `AYn` and an `AZ` that is the 16-bit two's
    complement of the sum of the encoded bytes, reads up to CR, and checks the response's
    checksum the same way. It shares no code with sip2/ (an independent peer)."""

    def __init__(self, port: int, encoding: str = "utf-8", timeout: float = 10) -> None:
        self.encoding = encoding
        self.sequence = 0
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def exchange(self, request: str) -> str:
        """Send one request (command, fixed fields, `XXvalue|` fields); return the response
        without its AY/AZ and CR, after checking its byte-sum checksum."""
        head = request.encode(self.encoding) + f"AY{self.sequence}AZ".encode("ascii")
        self.socket.sendall(head + f"{(-sum(head)) & 0xFFFF:04X}".encode("ascii") + b"\r")
        self.sequence = (self.sequence + 1) % 10
        while b"\r" not in self.buffer:
            chunk = self.socket.recv(4096)
            if not chunk:
                raise ConnectionError(f"closed; received so far {self.buffer!r}")
            self.buffer += chunk
        frame, _, self.buffer = self.buffer.partition(b"\r")
        assert frame[-6:-4] == b"AZ", frame
        assert (sum(frame[:-4]) + int(frame[-4:], 16)) & 0xFFFF == 0, f"bad checksum: {frame!r}"
        body = frame[:-6]
        if body[-3:-1] == b"AY":
            body = body[:-3]
        return body.decode(self.encoding)

    def close(self) -> None:
        self.socket.close()


def variable_fields(response: str, fixed_width: int) -> dict[str, list[str]]:
    """The `XXvalue|` fields after a response's command and `fixed_width` characters."""
    fields: dict[str, list[str]] = {}
    for piece in response[2 + fixed_width :].split("|"):
        if len(piece) >= 2:
            fields.setdefault(piece[:2], []).append(piece[2:])
    return fields


def sip2_exchange(terminal: socket.socket, message: bytes) -> bytes:
    """Send one SIP2 message (without its CR) and read its answer, up to and with the CR."""
    terminal.sendall(message + b"\r")
    answer = b""
    while not answer.endswith(b"\r"):
        chunk = terminal.recv(4096)
        assert chunk, "the SIP2 server closed the connection"
        answer += chunk
    return answer


def sip2_session(port: int, *messages: bytes) -> list[bytes]:
    """One connection to a SIP2 port: each message's answer, in order."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as terminal:
        return [sip2_exchange(terminal, message) for message in messages]
