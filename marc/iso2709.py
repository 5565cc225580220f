"""ISO 2709 framing and structure, on bytes.

We frame on the record terminator (0x1D) ourselves: pymarc trusts leader/00-04 and stops the
whole file at the first wrong length, and real exports (Chinese ones included) count that
length in characters, not bytes. A wrong leader length is therefore only a warning here. The
directory is used when its offsets land on field terminators; when they do not, fields are
recovered by splitting on 0x1E, as long as the counts agree. Anything else is a reject.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from marc.errors import (
    BASE_ADDRESS,
    DIRECTORY_LENGTHS,
    DIRECTORY_RECOVERED,
    LEADER_BYTES,
    RECORD_LENGTH,
    RecordRejected,
    RecordWarning,
)

RT = 0x1D
FT = 0x1E
SD = 0x1F
LEADER_LENGTH = 24
# Bytes that exports leave between records (newlines, NUL padding, DOS end-of-file).
FILLER = b"\r\n\x00\x1a \t"
READ_SIZE = 1 << 20
MAX_RECORD_BYTES = 1 << 24  # 16 MiB: far above any real record, bounds memory on garbage


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes of one framed record with its place in the file (1-based number, byte offset)."""

    number: int
    offset: int
    data: bytes  # without the record terminator
    terminated: bool = True


def frame_records(stream: BinaryIO) -> Iterator[Chunk]:
    """Split a stream into records on 0x1D, skipping filler between records."""
    buffer = b""
    buffer_offset = 0  # file offset of buffer[0]
    number = 0
    discarding = False  # inside an over-long run already reported; skip to the next 0x1D
    while True:
        block = stream.read(READ_SIZE)
        buffer += block
        start = 0
        while (end := buffer.find(b"\x1d", start)) >= 0:
            raw = buffer[start:end]
            stripped = raw.lstrip(FILLER)
            if stripped and not discarding:
                number += 1
                yield Chunk(number, buffer_offset + end - len(stripped), stripped)
            discarding = False
            start = end + 1
        buffer = buffer[start:]
        buffer_offset += start
        if len(buffer) > MAX_RECORD_BYTES and not discarding:
            number += 1
            rest = buffer.lstrip(FILLER)
            yield Chunk(number, buffer_offset + len(buffer) - len(rest), rest[:4096], False)
            discarding = True
        if discarding:
            buffer_offset += len(buffer)
            buffer = b""
        if not block:
            break
    rest = buffer.lstrip(FILLER)
    if rest and not discarding:
        number += 1
        yield Chunk(number, buffer_offset + len(buffer) - len(rest), rest, terminated=False)


@dataclass(slots=True)
class RawRecord:
    """A structurally valid record whose field contents are still undecoded bytes."""

    leader: str
    entries: list[tuple[str, bytes]]  # (tag, field bytes without the field terminator)
    warnings: list[RecordWarning] = field(default_factory=list)
    indicator_count: int = 2


def _leader_digits(leader: bytes, start: int, end: int) -> int | None:
    text = leader[start:end]
    return int(text) if text.isdigit() else None


def parse_structure(chunk: Chunk) -> RawRecord:
    """Leader + directory + fields, or `RecordRejected` with the reason."""
    data = chunk.data
    if not chunk.terminated:
        raise RecordRejected(
            f"the file ends inside a record: {len(data)} bytes after the last record "
            "terminator (0x1D) never end; the file is probably truncated"
        )
    if len(data) < LEADER_LENGTH + 1:
        raise RecordRejected(
            f"too short to be a MARC record ({len(data)} bytes, no leader)", "leader"
        )
    leader_bytes = data[:LEADER_LENGTH]
    warnings: list[RecordWarning] = []
    if any(b < 0x20 or b > 0x7E for b in leader_bytes):
        if FT in leader_bytes or SD in leader_bytes:
            raise RecordRejected("no leader: the record starts with field data", "leader")
        warnings.append(
            RecordWarning(
                LEADER_BYTES,
                "the leader contains non-ASCII or control bytes; they were kept as read",
                "leader",
            )
        )
    leader = leader_bytes.decode("latin-1")

    declared_length = _leader_digits(leader_bytes, 0, 5)
    actual_length = len(data) + 1
    if declared_length is None:
        warnings.append(
            RecordWarning(
                RECORD_LENGTH,
                f"leader/00-04 record length “{leader[:5]}” is not a number",
                "leader",
            )
        )
    elif declared_length != actual_length:
        warnings.append(
            RecordWarning(
                RECORD_LENGTH,
                f"leader says {declared_length} bytes, the record has {actual_length}"
                " (lengths counted in characters?)",
                "leader",
            )
        )

    directory_end = data.find(b"\x1e", LEADER_LENGTH)
    if directory_end < 0:
        raise RecordRejected(
            "no field terminator after the directory: the directory is broken", "directory"
        )
    base = _leader_digits(leader_bytes, 12, 17)
    if base is None or base != directory_end + 1:
        if base is not None:
            warnings.append(
                RecordWarning(
                    BASE_ADDRESS,
                    f"leader base address {base} corrected to {directory_end + 1}",
                    "leader",
                )
            )
        base = directory_end + 1
    length_width = _leader_digits(leader_bytes, 20, 21) or 4
    start_width = _leader_digits(leader_bytes, 21, 22) or 5
    entry_width = 3 + length_width + start_width
    directory = data[LEADER_LENGTH:directory_end]
    if len(directory) % entry_width:
        # Some writers put a wrong 20-21; try the standard 4/5 before giving up.
        if len(directory) % 12 == 0:
            length_width, start_width, entry_width = 4, 5, 12
        else:
            raise RecordRejected(
                f"the directory is damaged: {len(directory)} bytes is not a whole number"
                f" of {entry_width}-byte entries",
                "directory",
            )
    if not directory:
        raise RecordRejected("the record has no fields (empty directory)", "directory")

    entries_meta: list[tuple[str, int | None, int | None]] = []
    for i in range(0, len(directory), entry_width):
        entry = directory[i : i + entry_width]
        tag_bytes = entry[:3]
        if any(b < 0x20 or b > 0x7E for b in tag_bytes):
            raise RecordRejected(
                f"directory entry {i // entry_width + 1} has an unreadable tag"
                f" (bytes {tag_bytes.hex(' ').upper()})",
                "directory",
            )
        length_text = entry[3 : 3 + length_width]
        start_text = entry[3 + length_width :]
        entries_meta.append(
            (
                tag_bytes.decode("ascii"),
                int(length_text) if length_text.isdigit() else None,
                int(start_text) if start_text.isdigit() else None,
            )
        )

    body = data[base:]
    fields = _fields_by_directory(body, entries_meta)
    if fields is None:
        fields = _fields_by_minimum_length(body, entries_meta)
        if fields is not None:
            warnings.append(
                RecordWarning(
                    DIRECTORY_LENGTHS,
                    "directory lengths are smaller than the fields (counted in characters?);"
                    " fields read up to their terminators",
                    "directory",
                )
            )
    if fields is None:
        pieces = body.split(b"\x1e")
        if pieces and pieces[-1].strip(FILLER) == b"":
            pieces.pop()
        if len(pieces) != len(entries_meta):
            raise RecordRejected(
                f"the directory does not match the fields: {len(entries_meta)} directory"
                f" entries but {len(pieces)} fields in the data",
                "directory",
            )
        by_start = sorted(range(len(entries_meta)), key=lambda k: (entries_meta[k][2] or 0, k))
        recovered: list[tuple[str, bytes]] = [("", b"")] * len(entries_meta)
        for piece, k in zip(pieces, by_start, strict=True):
            recovered[k] = (entries_meta[k][0], piece)
        fields = recovered
        warnings.append(
            RecordWarning(
                DIRECTORY_RECOVERED,
                "directory offsets or lengths are wrong; fields recovered by terminators",
                "directory",
            )
        )
    indicator_count = _leader_digits(leader_bytes, 10, 11)
    if indicator_count is None or indicator_count > 9:
        indicator_count = 2
    return RawRecord(leader, fields, warnings, indicator_count)


def _fields_by_minimum_length(
    body: bytes, entries: list[tuple[str, int | None, int | None]]
) -> list[tuple[str, bytes]] | None:
    """Walk fields in directory order, each ending at the first terminator at or after its
    declared length: right when lengths were counted in characters of a multibyte text."""
    if any(length is None or length < 1 for _, length, _ in entries):
        return None
    fields: list[tuple[str, bytes]] = []
    position = 0
    for tag, length, _ in entries:
        assert length is not None
        end = body.find(b"\x1e", position + length - 1)
        if end < 0:
            return None
        fields.append((tag, body[position:end]))
        position = end + 1
    if body[position:].strip(FILLER):
        return None
    return fields


def _fields_by_directory(
    body: bytes, entries: list[tuple[str, int | None, int | None]]
) -> list[tuple[str, bytes]] | None:
    fields: list[tuple[str, bytes]] = []
    for tag, length, start in entries:
        if length is None or start is None or length < 1:
            return None
        end = start + length
        if end > len(body) or body[end - 1] != FT:
            return None
        content = body[start : end - 1]
        if FT in content:
            return None
        fields.append((tag, content))
    return fields


def encode_record(leader: str, fields: list[tuple[str, bytes]], entry_map: str = "4500") -> bytes:
    """Build ISO 2709 bytes; leader/00-04 and 12-16 are computed, 20-23 set to `entry_map`."""
    directory = bytearray()
    body = bytearray()
    for tag, content in fields:
        length = len(content) + 1
        if length > 9999:
            raise ValueError(f"field {tag} is {length} bytes; ISO 2709 allows 9999")
        directory += f"{tag:>3.3}{length:04d}{len(body):05d}".encode("ascii")
        body += content
        body.append(FT)
    directory.append(FT)
    base = LEADER_LENGTH + len(directory)
    total = base + len(body) + 1
    if total > 99999:
        raise ValueError(f"record is {total} bytes; ISO 2709 allows 99999")
    leader = (leader + " " * 24)[:24]
    head = f"{total:05d}{leader[5:12]}{base:05d}{leader[17:20]}{entry_map}"
    return head.encode("ascii", "replace") + bytes(directory) + bytes(body) + b"\x1d"
