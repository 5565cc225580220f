"""A Z39.50 origin's session with one target, sans I/O: requests out as bytes, bytes in as
answers, and a state table that says which answer each state waits for.

One operation at a time (no concurrent operations: few targets offer them and a union search
needs none). Terms go out in the target's `encoding`; with `negotiate_utf8` the Init proposes
UTF-8 (CharSetandLanguageNegotiation-3), which a legacy target may ignore: then the terms are
in `encoding` all the same, as YAZ's clients do. The Twisted adapter is union/z3950_client.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gateway
from gateway.catalogue.query import Query
from gateway.z3950_codec import ber, oids
from gateway.z3950_codec.from_query import query_to_rpn
from gateway.z3950_codec.messages import (
    CLOSE_FINISHED,
    CharsetProposal,
    Close,
    InitRequest,
    InitResponse,
    PresentRequest,
    RpnQuery,
    SearchRequest,
)
from gateway.z3950_codec.origin import (
    Answer,
    OriginRequest,
    PresentAnswer,
    SearchAnswer,
    decode_response,
    encode_request,
)

# Record syntaxes by the names targets' configuration uses (the issue's `syntax` key).
SYNTAXES: dict[str, str] = {
    "unimarc": oids.UNIMARC,
    "usmarc": oids.USMARC,
    "marc21": oids.USMARC,
    "xml": oids.XML_TEXT,
    "opac": oids.OPAC,
}
OPTIONS = frozenset({"search", "present", "namedResultSets", "negotiationModel"})
MESSAGE_SIZE = 1 << 22  # 4 MiB: what we accept in one APDU from a target

# States: a request may be sent only when OPEN (Init only when NEW); each *_SENT state waits
# for exactly one answer type and returns to OPEN. A Close from the target ends any state.
NEW, INIT_SENT, OPEN, SEARCH_SENT, PRESENT_SENT, CLOSE_SENT, CLOSED = (
    "new",
    "init sent",
    "open",
    "search sent",
    "present sent",
    "close sent",
    "closed",
)
SENDS: dict[tuple[str, type], str] = {
    (NEW, InitRequest): INIT_SENT,
    (OPEN, SearchRequest): SEARCH_SENT,
    (OPEN, PresentRequest): PRESENT_SENT,
    (OPEN, Close): CLOSE_SENT,
}
RECEIVES: dict[tuple[str, type], str] = {
    (INIT_SENT, InitResponse): OPEN,
    (SEARCH_SENT, SearchAnswer): OPEN,
    (PRESENT_SENT, PresentAnswer): OPEN,
    (CLOSE_SENT, Close): CLOSED,
}


class SessionError(Exception):
    """Our bug: a request sent in a state that does not allow it."""


class UnexpectedAnswer(Exception):
    """The target's bug: an APDU that answers nothing we asked (or bytes that are no APDU)."""


@dataclass
class OriginSession:
    """One connection's protocol state. `database` is the target's database name."""

    database: str
    encoding: str = "utf-8"
    negotiate_utf8: bool = False
    state: str = NEW
    result_set: str = "default"
    framer: ber.Framer = field(default_factory=lambda: ber.Framer(MESSAGE_SIZE))
    buffer: bytearray = field(default_factory=bytearray)
    selected_charset: str | None = None

    def _send(self, message: OriginRequest) -> bytes:
        next_state = SENDS.get((self.state, type(message)))
        if next_state is None:
            raise SessionError(f"{type(message).__name__} cannot be sent when {self.state}")
        data = encode_request(message)
        self.state = next_state
        return data

    def init(self) -> bytes:
        proposal = CharsetProposal(("UTF-8",), (), True) if self.negotiate_utf8 else None
        return self._send(
            InitRequest(
                versions=frozenset({2, 3}),
                options=OPTIONS,
                preferred_message_size=MESSAGE_SIZE,
                exceptional_record_size=MESSAGE_SIZE,
                implementation_id="libgate",
                implementation_name="libgate union search",
                implementation_version=gateway.__version__,
                charset_proposal=proposal,
            )
        )

    def search(self, query: Query | RpnQuery) -> bytes:
        """A Search with no piggy-backed records (Present asks for them in the syntax wanted)."""
        # A target that accepted UTF-8 in Init reads UTF-8 whatever its configured encoding.
        encoding = "utf-8" if self.selected_charset == "UTF-8" else self.encoding
        rpn = query if isinstance(query, RpnQuery) else query_to_rpn(query, encoding=encoding)
        return self._send(
            SearchRequest(
                small_set_upper_bound=0,
                large_set_lower_bound=1,
                medium_set_present_number=0,
                replace_indicator=True,
                result_set_name=self.result_set,
                database_names=(self.database,),
                query=rpn,
            )
        )

    def present(self, start: int, count: int, syntax: str, element_set: str = "F") -> bytes:
        """`syntax`: a name from SYNTAXES or an OID."""
        return self._send(
            PresentRequest(
                result_set_id=self.result_set,
                result_set_start_point=start,
                number_of_records_requested=count,
                element_set_name=element_set,
                preferred_record_syntax=SYNTAXES.get(syntax.lower(), syntax),
            )
        )

    def close(self) -> bytes:
        return self._send(Close(close_reason=CLOSE_FINISHED))

    def receive(self, data: bytes) -> list[Answer]:
        """The answers complete in `data` (with what came before). Raises UnexpectedAnswer."""
        self.buffer += data
        answers = []
        while self.buffer:
            try:
                length = self.framer.apdu_length(self.buffer)
            except ber.BerError as error:
                raise UnexpectedAnswer(f"not BER: {error}") from None
            if length is None:
                break
            apdu = bytes(self.buffer[:length])
            del self.buffer[:length]
            answers.append(self._accept(apdu))
        return answers

    def _accept(self, apdu: bytes) -> Answer:
        try:
            answer = decode_response(apdu)
        except ValueError as error:  # ApduError, BerError
            raise UnexpectedAnswer(str(error)) from None
        if isinstance(answer, Close):
            self.state = CLOSED
            return answer
        next_state = RECEIVES.get((self.state, type(answer)))
        if next_state is None:
            raise UnexpectedAnswer(f"{type(answer).__name__} when {self.state}")
        if isinstance(answer, InitResponse):
            self.selected_charset = answer.selected_charset
            next_state = OPEN if answer.result else CLOSED
        self.state = next_state
        return answer
