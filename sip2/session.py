"""One SC connection's protocol state, sans I/O: login, error detection, resend, replay.

The adapter hands each frame to `Session.receive`, which either answers at once (`Reply`: 96,
97, login, status, a replayed response) or asks for a handler run (`Dispatch`), whose response
the adapter passes back through `Session.respond` to be encoded and remembered. Nothing here
touches a socket, a thread or the database.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import NamedTuple

from gateway.config import Sip2Account, Sip2Settings
from sip2 import codec
from sip2.accounts import Accounts
from sip2.codec import FrameError, Message
from sip2.framing import OVERSIZE
from sip2.spec import LANGUAGES, SUPPORTED_MESSAGES_ORDER, ErrorDetection, Terminator

# Requests that change something: an identical retransmission (same AY and AZ) gets the
# remembered response instead of a second transaction (a kiosk that missed our answer).
STATEFUL = frozenset({"11", "09", "01", "29", "65", "15", "37", "19", "25"})
PRE_LOGIN_ENCODING = "utf-8"  # CN/CO are ASCII in practice; UTF-8 reads them either way
TIMEOUT_PERIOD = "050"  # 98: tenths of a second an SC should wait for us
RETRIES_ALLOWED = "003"


@dataclass(frozen=True)
class Reply:
    data: bytes
    command: str  # the request's command ("??" when unreadable), for the log
    outcome: str  # ok / refused / resend / replay / bad-login …
    close: bool = False


@dataclass(frozen=True)
class Dispatch:
    """A request for the handlers (engine work, in the thread pool)."""

    message: Message
    account: Sip2Account
    error_detection: bool
    frame: bytes  # as received, to recognise a retransmission


@dataclass(frozen=True)
class Authenticate:
    """A 93: its password check (scrypt for hashed passwords) runs in the thread pool, then
    `Session.logged_in` answers."""

    message: Message
    error_detection: bool


class Exchange(NamedTuple):
    """The last request frame answered and the bytes of its answer (replayed when the SC
    sends the same frame again)."""

    request: bytes
    response: bytes


class Session:
    def __init__(
        self,
        settings: Sip2Settings,
        accounts: Accounts,
        peer_host: str,
        now: Callable[[], datetime],
        zone: tzinfo,
        library_name: str = "",
    ) -> None:
        self.settings = settings
        self.accounts = accounts
        self.peer_host = peer_host
        self.now = now
        self.zone = zone
        self.library_name = library_name
        self.account: Sip2Account | None = None
        self.bad_logins = 0
        self.last_response: bytes | None = None  # for 97
        self._last_exchange: Exchange | None = None

    # --- what the adapter calls ----------------------------------------------------------

    def receive(self, frame: bytes) -> Reply | Dispatch | Authenticate:
        if self.account is not None:
            current = self.accounts.still_valid(self.account, self.peer_host)
            if current is None:
                # A config reload removed the account, or changed its password or addresses:
                # the terminal's login would fail now, so its session ends here, unanswered.
                return Reply(b"", _command_of(frame), "account-revoked", close=True)
            self.account = current  # a reload's other changes to it apply from this message
        if frame == OVERSIZE:
            return self._resend_request("??", "oversize")
        try:
            received = self._read_login(frame) if frame.startswith(b"93") else self._read(frame)
        except FrameError:
            return self._resend_request("??", "unreadable")
        message = received.message
        mode = ErrorDetection(self.account.error_detection) if self.account else ErrorDetection.AUTO
        if mode is not ErrorDetection.OFF and received.checksum_ok is False:
            return self._resend_request(message.command, "bad-checksum")
        if mode is ErrorDetection.REQUIRED and received.checksum_ok is None:
            return self._resend_request(message.command, "no-checksum")
        use_checksum = mode is not ErrorDetection.OFF and received.checksum_ok is True
        if message.command == "97":
            if self.last_response is None:
                return self._resend_request("97", "nothing-to-resend")
            return Reply(self.last_response, "97", "resend")
        if (
            use_checksum
            and message.command in STATEFUL
            and self._last_exchange is not None
            and self._last_exchange.request == frame
        ):
            # The very same bytes again (same AY and AZ): the SC missed our answer.
            return Reply(self._last_exchange.response, message.command, "replay")
        if message.command == "93":
            return Authenticate(message, use_checksum)
        if message.command == "99":
            account = self.account or self.accounts.status_before_login(self.peer_host)
            if account is not None:
                response = self.status_response(account)
                return Reply(self._remember(response, message, use_checksum, account), "99", "ok")
        if self.account is None:
            return self._resend_request(message.command, "not-logged-in")
        if message.command not in SUPPORTED_MESSAGES_ORDER or message.command in ("93", "97"):
            return self._resend_request(message.command, "not-a-request")
        return Dispatch(message, self.account, use_checksum, frame)

    def _read(self, frame: bytes) -> codec.Received:
        return codec.parse(frame, self.account.encoding if self.account else PRE_LOGIN_ENCODING)

    def _read_login(self, frame: bytes) -> codec.Received:
        """A 93 is read in the charset of the account its CN names, so that a location (CP) in
        that charset decodes and its checksum checks out under either sum. When CN names no
        account, the checksum is accepted if it checks out in any account's charset: the
        answer to an unknown login must not differ from a wrong password's (94 with 0), or a
        96 would tell which logins exist."""
        candidates = [self._read(frame)]
        for encoding in self._account_encodings():
            received = codec.parse(frame, encoding)
            named = self.accounts.by_login.get(received.message.get("CN"))
            if named is not None and _same_codec(named.encoding, encoding):
                return received
            candidates.append(received)
        checked = [received for received in candidates if received.checksum_ok]
        return checked[0] if checked else candidates[0]

    def _account_encodings(self) -> list[str]:
        names: dict[str, str] = {}
        for account in self.accounts.by_login.values():
            names.setdefault(codecs.lookup(account.encoding).name, account.encoding)
        return list(names.values())

    def respond(self, dispatch: Dispatch, response: Message) -> bytes:
        """Encode a handler's response to a dispatched request, and remember the pair, so an
        identical retransmission gets this answer and no second transaction."""
        data = self._remember(
            response, dispatch.message, dispatch.error_detection, dispatch.account
        )
        self._last_exchange = Exchange(dispatch.frame, data)
        return data

    def failed(self, dispatch: Dispatch) -> bytes:
        """A handler failed (our bug, the database gone): ask the SC to send it again; the
        retransmission must be carried out, not answered from memory."""
        return self._resend_request(dispatch.message.command, "error").data

    # --- login and status ----------------------------------------------------------------

    def logged_in(self, step: Authenticate, account: Sip2Account | None) -> Reply:
        """The outcome of a 93, whose password check ran off the reactor thread."""
        message, use_checksum = step.message, step.error_detection
        if account is None:
            self.account = None  # a failed login on a logged-in connection logs it out
            self.bad_logins += 1
            close = self.bad_logins >= self.settings.max_bad_logins
            response = codec.build("94", {"ok": "0"})
            data = self._remember(response, message, use_checksum, None)
            return Reply(data, "93", "bad-login", close=close)
        self.account = account
        self.bad_logins = 0
        data = self._remember(codec.build("94", {"ok": "1"}), message, use_checksum, account)
        return Reply(data, "93", "ok")

    def _resend_request(self, command: str, outcome: str) -> Reply:
        """96. Before a good login it counts like a bad login: a client that never logs in
        cannot hold a connection by sending junk."""
        data = codec.REQUEST_SC_RESEND + self._terminator
        self.last_response = data
        self._last_exchange = None
        if self.account is not None:
            return Reply(data, command, outcome)
        self.bad_logins += 1
        close = self.bad_logins >= self.settings.max_bad_logins
        return Reply(data, command, outcome, close=close)

    def status_response(self, account: Sip2Account) -> Message:
        return codec.build(
            "98",
            {
                "online_status": "Y",
                "checkin_ok": "Y",
                "checkout_ok": "Y",
                "acs_renewal_policy": "Y",
                "status_update_ok": "Y",
                "offline_ok": "N",
                "timeout_period": TIMEOUT_PERIOD,
                "retries_allowed": RETRIES_ALLOWED,
                "date_time_sync": codec.format_date(self.now(), self.zone),
                "protocol_version": "2.00",
            },
            AO=account.institution,
            AM=self.library_name or None,
            BX="Y" * len(SUPPORTED_MESSAGES_ORDER),
            AN=account.location or None,
        )

    # --- encoding --------------------------------------------------------------------------

    @property
    def _terminator(self) -> bytes:
        return terminator_of(self.account).wire

    def _remember(
        self, response: Message, request: Message, use_checksum: bool, account: Sip2Account | None
    ) -> bytes:
        encoding = account.encoding if account else PRE_LOGIN_ENCODING
        data = codec.encode(
            response,
            encoding,
            sequence=request.sequence,
            error_detection=use_checksum,
            terminator=terminator_of(account),
        )
        self.last_response = data
        self._last_exchange = None  # only the exchange just before may be replayed
        return data


def terminator_of(account: Sip2Account | None) -> Terminator:
    """CR before login (the spec's), then the account's."""
    return Terminator(account.terminator) if account is not None else Terminator.CR


def _command_of(frame: bytes) -> str:
    """The command a frame starts with, for the log ("??" when it is not two digits)."""
    head = frame[:2]
    return head.decode("ascii") if len(head) == 2 and head.isdigit() else "??"


def _same_codec(first: str, second: str) -> bool:
    return codecs.lookup(first).name == codecs.lookup(second).name


def language_of(request: Message, account: Sip2Account) -> str:
    """The screen-message language: the request's language field if we speak it, else the
    account's."""
    return LANGUAGES.get(request.fixed.get("language", ""), account.language)
