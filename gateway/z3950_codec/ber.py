"""BER framing and hostile-input screening for Z39.50 APDUs, sans I/O.

asn1tools decodes the APDU types; this module stands in front of it. A TCP stream carries
APDUs back to back, each one BER TLV, so the framer must know where one ends before anything
is decoded, and a peer controls every length byte. Here, before asn1tools sees a byte:

- the stream is cut into APDUs by walking the outer TLV (definite or indefinite length),
  incrementally (`Framer`: no byte is looked at twice however the APDU is split);
- every nested TLV is checked: lengths that overrun their parent or the buffer, lengths of more
  than four bytes, tags of more than four bytes, primitive values with indefinite length,
  nesting deeper than `MAX_DEPTH` and APDUs over the session's size cap are all `BerError`;
- indefinite lengths (YAZ and other clients may send them) are rewritten as definite ones,
  because asn1tools' open ANY types accept only definite lengths.

The walk is iterative over each constructed value's children with an explicit depth count,
so a peer cannot exhaust the stack (asn1tools recursion is then bounded by MAX_DEPTH too).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_DEPTH = 64  # nested TLVs in one APDU; a 32-level RPN query needs about 40
MAX_TAG_BYTES = 4  # tag numbers up to 2**21: Z39.50 uses at most 3 digits
MAX_LENGTH_BYTES = 4  # a length field of more than 4 bytes is an attack, not an APDU


class BerError(ValueError):
    """Bytes that are not one well-formed BER value: the peer broke the protocol."""


@dataclass(frozen=True)
class Header:
    tag_class: int  # 0 universal, 1 application, 2 context, 3 private
    constructed: bool
    tag: int
    length: int | None  # None = indefinite
    size: int  # bytes of tag + length


def read_header(data: bytes | bytearray, offset: int, end: int) -> Header | None:
    """The tag and length at `offset`, or None when `data[:end]` ends before they do."""
    if offset >= end:
        return None
    first = data[offset]
    position = offset + 1
    tag = first & 0x1F
    if tag == 0x1F:  # high tag number form: base-128 digits, the last without bit 8
        tag = 0
        for count in range(MAX_TAG_BYTES + 1):
            if position >= end:
                return None
            byte = data[position]
            position += 1
            if count == 0 and byte == 0x80:
                raise BerError("a tag number with a leading zero digit")
            tag = (tag << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        else:
            raise BerError(f"a tag number longer than {MAX_TAG_BYTES} bytes")
    if position >= end:
        return None
    length_byte = data[position]
    position += 1
    length: int | None
    if length_byte < 0x80:
        length = length_byte
    elif length_byte == 0x80:
        length = None
    else:
        count = length_byte & 0x7F
        if count > MAX_LENGTH_BYTES:  # includes 0xFF, reserved by X.690
            raise BerError(f"a length field of {count} bytes")
        if position + count > end:
            return None
        length = int.from_bytes(data[position : position + count], "big")
        position += count
    constructed = bool(first & 0x20)
    if length is None and not constructed:
        raise BerError("a primitive value with indefinite length")
    return Header(first >> 6, constructed, tag, length, position - offset)


def apdu_length(data: bytes | bytearray, max_size: int) -> int | None:
    """Bytes of the first complete APDU in `data`, or None if more must arrive first.

    Raises BerError when the bytes cannot become an APDU (bad header, a length over
    `max_size`, an unterminated indefinite value that is already too long). Stateless: a
    connection's stream is framed with a `Framer`, which does not look at a byte twice.
    """
    return Framer(max_size).apdu_length(data)


class Framer:
    """Where the first APDU of a growing buffer ends, for one connection.

    An indefinite-length APDU ends only at its end-of-contents, so its children must be
    walked; the walk's place (the offset of the next TLV header and the open indefinite
    values) is kept between calls, so each arrival costs only its own bytes: a peer
    dribbling a long indefinite APDU in 2-byte pieces cannot make the reactor rescan the
    buffer from the start each time. The caller passes the same buffer, grown, until a length
    comes back, then removes those bytes from its front before the next call.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.headers_read = 0  # read_header calls, over the framer's life (for tests)
        self._reset()

    def _reset(self) -> None:
        self._header: Header | None = None
        self._open = 0  # indefinite values not yet closed by their end-of-contents
        self._position = 0  # offset of the next TLV header to read

    def apdu_length(self, data: bytes | bytearray) -> int | None:
        length = self._scan(data)
        if length is not None:
            self._reset()
        return length

    def _read(self, data: bytes | bytearray, offset: int, end: int) -> Header | None:
        self.headers_read += 1
        return read_header(data, offset, end)

    def _scan(self, data: bytes | bytearray) -> int | None:
        max_size = self.max_size
        if self._header is None:
            header = self._read(data, 0, min(len(data), max_size + 16))
            if header is None:
                if len(data) > 16:  # 16 bytes always hold a header we accept
                    raise BerError("an APDU header that never ends")
                return None
            if header.tag_class != 2 or not header.constructed:
                raise BerError("an APDU must be a constructed context-tagged value")
            if header.length is not None:
                total = header.size + header.length
                if total > max_size:
                    raise BerError(f"an APDU of {total} bytes; the session allows {max_size}")
            self._header, self._open, self._position = header, 1, header.size
        header = self._header
        if header.length is not None:
            total = header.size + header.length
            return total if len(data) >= total else None
        # Indefinite: the end is where the children's end-of-contents is. Walk on from where
        # the last call stopped.
        limit = min(len(data), max_size)
        while True:
            if self._position > max_size:
                raise BerError(f"an APDU longer than the session's {max_size} bytes")
            child = self._read(data, self._position, limit)
            if child is None:
                if len(data) >= max_size:
                    raise BerError(f"an APDU longer than the session's {max_size} bytes")
                return None
            if child.tag_class == 0 and child.tag == 0 and not child.constructed:
                if child.length != 0:
                    raise BerError("an end-of-contents marker with a length")
                self._position += child.size
                self._open -= 1
                if not self._open:
                    return self._position
            elif child.length is None:
                self._open += 1
                if self._open > MAX_DEPTH:
                    raise BerError(f"values nested more than {MAX_DEPTH} deep")
                self._position += child.size
            else:  # a definite value: skipped whole, even before all of it has arrived
                self._position += child.size + child.length


def normalise(apdu: bytes) -> bytes:
    """The APDU checked all the way down, with every indefinite length made definite.

    Returns `apdu` itself when it had no indefinite lengths (the common case: no copying).
    """
    header = read_header(apdu, 0, len(apdu))
    if header is None:
        raise BerError("a truncated APDU")
    if _all_definite(apdu, 0, len(apdu), 0) == len(apdu):
        return apdu  # checked without copying a byte
    rewritten, end, changed = _walk(apdu, 0, len(apdu), 0)
    if end != len(apdu):
        raise BerError("bytes after the end of the APDU")
    return bytes(rewritten) if changed else apdu


def _all_definite(data: bytes, offset: int, limit: int, depth: int) -> int:
    """The offset after the TLV at `offset` when it and everything in it have definite
    lengths that nest properly; -1 when an indefinite length is met (`_walk` rewrites it).
    Raises BerError as `_walk` does for what is broken. Recursion is bounded by MAX_DEPTH."""
    if depth > MAX_DEPTH:
        raise BerError(f"values nested more than {MAX_DEPTH} deep")
    header = read_header(data, offset, limit)
    if header is None:
        raise BerError("a value cut short")
    if header.length is None:
        return -1
    start = offset + header.size
    end = start + header.length
    if end > limit:
        raise BerError("a length that runs past its enclosing value")
    if header.constructed:
        position = start
        while position < end:
            position = _all_definite(data, position, end, depth + 1)
            if position < 0:
                return -1
    return end


def _walk(data: bytes, offset: int, limit: int, depth: int) -> tuple[bytearray, int, bool]:
    """One TLV at `offset` within `data[:limit]`: (its bytes with definite lengths, the
    offset after it in the input, whether anything was rewritten). Recursion is bounded by
    MAX_DEPTH, far below Python's limit."""
    if depth > MAX_DEPTH:
        raise BerError(f"values nested more than {MAX_DEPTH} deep")
    header = read_header(data, offset, limit)
    if header is None:
        raise BerError("a value cut short")
    start = offset + header.size
    if header.length is not None:
        end = start + header.length
        if end > limit:
            raise BerError("a length that runs past its enclosing value")
        if not header.constructed:
            return bytearray(data[offset:end]), end, False
        children = bytearray()
        changed = False
        position = start
        while position < end:
            child, position, child_changed = _walk(data, position, end, depth + 1)
            if child_changed:
                changed = True
            children += child
        if not changed:
            return bytearray(data[offset:end]), end, False
        return _tlv(data[offset], data, offset, children), end, True
    # Indefinite constructed value: children up to end-of-contents.
    children = bytearray()
    position = start
    while True:
        if position + 2 <= limit and data[position] == 0 and data[position + 1] == 0:
            return _tlv(data[offset], data, offset, children), position + 2, True
        if position >= limit:
            raise BerError("an indefinite-length value without end-of-contents")
        child, position, _ = _walk(data, position, limit, depth + 1)
        children += child


def _tlv(first: int, data: bytes, offset: int, contents: bytearray) -> bytearray:
    """The value's own tag bytes followed by a definite length and `contents`."""
    tag_end = offset + 1
    if first & 0x1F == 0x1F:
        while data[tag_end] & 0x80:
            tag_end += 1
        tag_end += 1
    out = bytearray(data[offset:tag_end])
    out += encode_length(len(contents))
    out += contents
    return out


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def top_level(apdu: bytes) -> tuple[int, list[tuple[Header, bytes]]]:
    """The APDU's tag number and its direct children (header, contents), for answering APDUs
    we do not decode (their referenceId is echoed). Expects a normalised APDU."""
    header = read_header(apdu, 0, len(apdu))
    if header is None or header.length is None:
        raise BerError("a truncated APDU")
    children = []
    position = header.size
    end = header.size + header.length
    while position < end:
        child = read_header(apdu, position, end)
        if child is None or child.length is None:
            raise BerError("a value cut short")
        start = position + child.size
        children.append((child, apdu[start : start + child.length]))
        position = start + child.length
    return header.tag, children
