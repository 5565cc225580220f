"""SIP2 bytes ↔ typed messages, sans I/O. Liberal in what it reads, exact in what it writes.

Reading: fields in any order, a missing "required" field reads as empty, a missing or blank
date reads as empty (the PyPI `sip2` client sends 65 without its date and 18 blanks as the
no-block due date), unknown field ids are kept, and a checksum is accepted when it matches the
sum of the bytes as they came or the sum of the characters they decode to
(`checksum_matches`). Writing: every fixed field at its width, every required variable field
(empty if we have nothing), `|` and line breaks removed from values, each value capped at 255
encoded bytes, then `AYn` `AZxxxx` (over the bytes) when the exchange uses error detection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import cache

from sip2.spec import DATE_WIDTH, MAX_VALUE_BYTES, SPECS, MessageSpec, Terminator

_DATE = re.compile(r"\d{8}[ Z0-9A-Z]{4}\d{6}")
_TRAILER = re.compile(rb"(?:AY(\d))?AZ([0-9A-Fa-f]{1,4})$")
_FIELD_ID = re.compile(r"[A-Z][A-Z0-9]")
_UNSAFE = re.compile(r"[|\r\n]")


class FrameError(ValueError):
    """A frame that is not a SIP2 message we can read; answered with 96."""


def checksum(data: bytes) -> str:
    """The SIP2 checksum we send: 16-bit two's complement of the byte sum, 4 uppercase hex
    digits."""
    return f"{(-sum(data)) & 0xFFFF:04X}"


def checksum_matches(through_az: bytes, stated: int, encoding: str) -> bool:
    """Whether a received AZ value checks out over the frame up to and including `AZ`.

    The 3M guide defines the checksum as "the binary sum of the characters" and predates
    multi-byte charsets, so both readings are in the field: byte-oriented clients (Koha,
    Evergreen, FOLIO's `getBytes(charset)`, pysip2) sum the encoded bytes, while others (the
    PyPI `sip2` client) sum the code points of the decoded text. For ASCII the two agree; for
    a CJK location or name they never do, and insisting on one reading would answer 96
    forever to every client of the other kind. So either sum is accepted; what we send uses
    the byte sum, which every client that checks at all can verify.
    """
    if (sum(through_az) + stated) & 0xFFFF == 0:
        return True
    try:
        text = through_az.decode(encoding)
    except UnicodeDecodeError:
        return False  # not text in this charset: only the byte sum could have matched
    return (sum(map(ord, text)) + stated) & 0xFFFF == 0


@dataclass
class Message:
    """One SIP2 message. `fixed` holds the fixed fields by name (spec.py), `fields` the
    variable fields by id in the order they came or will go."""

    command: str
    fixed: dict[str, str] = field(default_factory=dict)
    fields: list[tuple[str, str]] = field(default_factory=list)
    sequence: int | None = None  # AY as received
    checksum_present: bool = False  # the request carried AZ (error detection in use)

    @property
    def spec(self) -> MessageSpec:
        return SPECS[self.command]

    def get(self, code: str, default: str = "") -> str:
        for key, value in self.fields:
            if key == code:
                return value
        return default

    def all(self, code: str) -> list[str]:
        return [value for key, value in self.fields if key == code]


def build(command: str, fixed: dict[str, str], **fields: str | list[str] | None) -> Message:
    """A message to send; `None` leaves an optional field out, a list repeats a field."""
    values: list[tuple[str, str]] = []
    for code, value in fields.items():
        if value is None:
            continue
        if isinstance(value, list):
            values.extend((code, item) for item in value)
        else:
            values.append((code, value))
    return Message(command, dict(fixed), values)


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """A decoded frame and what error detection found."""

    message: Message
    checksum_ok: bool | None  # None: no AZ was sent


def parse(frame: bytes, encoding: str) -> Received:
    """A request frame (without its CR) → message. Raises FrameError for what is not SIP2."""
    trailer = _TRAILER.search(frame)
    checksum_ok: bool | None = None
    sequence: int | None = None
    body = frame
    if trailer is not None and len(frame) >= 6:
        through_az = frame[: trailer.end(2) - len(trailer.group(2))]
        stated = int(trailer.group(2), 16)
        checksum_ok = checksum_matches(through_az, stated, encoding)
        sequence = int(trailer.group(1)) if trailer.group(1) is not None else None
        body = frame[: trailer.start()]
    text = body.decode(encoding, errors="replace")
    command = text[:2]
    spec = SPECS.get(command)
    if spec is None or not command.isdigit():
        raise FrameError(f"unknown command {command!r}")
    message = Message(command, sequence=sequence, checksum_present=checksum_ok is not None)
    position = _read_fixed(spec, text, message)
    _read_fields(text[position:], message)
    return Received(message, checksum_ok)


def _read_fixed(spec: MessageSpec, text: str, message: Message) -> int:
    position = 2
    for fixed in spec.fixed:
        chunk = text[position : position + fixed.width]
        if fixed.kind == "date" and not _looks_like_date(chunk):
            # No date here (65 from the PyPI client): leave it empty, read on from here.
            message.fixed[fixed.name] = ""
            continue
        matcher = fixed.matcher
        unlike = matcher is not None and matcher.fullmatch(chunk) is None
        if "|" in chunk or (
            (len(chunk) < fixed.width or unlike) and _FIELD_ID.match(chunk) is not None
        ):
            # A fixed field cannot hold `|`: it is missing and the variable fields start here
            # (63 without its summary, 37 without its currency).
            message.fixed[fixed.name] = ""
            continue
        message.fixed[fixed.name] = chunk
        position += len(chunk)
    return position


def _looks_like_date(chunk: str) -> bool:
    return len(chunk) == DATE_WIDTH and (chunk.strip() == "" or _DATE.fullmatch(chunk) is not None)


def _read_fields(text: str, message: Message) -> None:
    for piece in text.split("|"):
        if len(piece) < 2:
            continue  # an empty piece (`||`, trailing `|`) or a stray character
        code, value = piece[:2], piece[2:]
        message.fields.append((code, value))


def parse_date(value: str, zone: tzinfo) -> datetime | None:
    """`YYYYMMDDZZZZHHMMSS` → aware datetime; blanks in ZZZZ mean local (zone), `Z` means UTC.
    Empty, blank or malformed → None (a date we cannot read is treated as absent)."""
    if not value.strip() or len(value) != DATE_WIDTH:
        return None
    try:
        naive = datetime.strptime(value[:8] + value[12:], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    utc = value[8:12].strip().endswith("Z")
    return naive.replace(tzinfo=UTC if utc else zone)


def format_date(moment: datetime, zone: tzinfo) -> str:
    """An aware datetime → SIP2 local time (four blanks in ZZZZ), as the spec prefers."""
    local = moment.astimezone(zone)
    return (
        f"{local.year:04d}{local.month:02d}{local.day:02d}    "
        f"{local.hour:02d}{local.minute:02d}{local.second:02d}"
    )


# --- writing ---------------------------------------------------------------------------------


def clean(value: str) -> str:
    """A value safe inside a field: no `|` (field end) and no CR/LF (frame end)."""
    if "|" in value or "\r" in value or "\n" in value:
        return _UNSAFE.sub(" ", value)
    return value


def _capped(value: str, encoding: str) -> bytes:
    data = value.encode(encoding, errors="replace")
    if len(data) <= MAX_VALUE_BYTES:
        return data
    # Cut on a character boundary so a multi-byte character is never split.
    while len(data) > MAX_VALUE_BYTES:
        value = value[:-1]
        data = value.encode(encoding, errors="replace")
    return data


@cache
def _ascii_compatible(encoding: str) -> bool:
    """Whether `encoding` writes ASCII text as the same bytes (UTF-8, GB18030, Latin-1...)."""
    ascii_text = "".join(map(chr, range(128)))
    try:
        return ascii_text.encode(encoding) == ascii_text.encode("ascii")
    except (UnicodeError, LookupError):
        return False


def encode(
    message: Message,
    encoding: str,
    *,
    sequence: int | None = None,
    error_detection: bool = False,
    terminator: Terminator = Terminator.CR,
) -> bytes:
    """A message → one frame, ready for a single transport write."""
    spec = message.spec
    out = bytearray(message.command.encode("ascii"))
    values = message.fixed
    cut = [
        (value.rjust(fixed.width, "0") if fixed.fill == "0" else value.ljust(fixed.width, " "))[
            : fixed.width
        ]
        for fixed in spec.fixed
        for value in (values.get(fixed.name, ""),)
    ]
    joined = "".join(cut)
    if joined.isascii() and _ascii_compatible(encoding):
        out += joined.encode("ascii")  # what encoding each field on its own gives, at once
    else:
        for value in cut:
            out += value.encode(encoding, errors="replace")
    given: dict[str, list[str]] = {}
    for code, value in message.fields:
        given.setdefault(code, []).append(value)
    known = spec.vars
    for var in spec.fields:
        values_of = given.get(var.code)
        if not values_of:
            if not var.required:
                continue
            values_of = [""]
        elif not var.repeat:
            values_of = values_of[:1]
        prefix = var.code.encode("ascii")
        for value in values_of:
            out += prefix + _capped(clean(value), encoding) + b"|"
    for code, values_of in given.items():
        if code in known:
            continue
        prefix = code.encode("ascii")
        for value in values_of:
            out += prefix + _capped(clean(value), encoding) + b"|"
    if error_detection:
        if sequence is not None and message.command not in ("96", "97"):
            out += f"AY{sequence}".encode("ascii")  # 96 and 97 never carry AY
        out += b"AZ"
        out += checksum(bytes(out)).encode("ascii")
    return bytes(out) + terminator.wire


REQUEST_SC_RESEND = b"96AZFEF6"
