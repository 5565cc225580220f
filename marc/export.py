"""`libgate export`: stored records out as ISO 2709, MARCXML or marcxchange."""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO

from marc import charset
from marc.iso2709 import Chunk, parse_structure
from marc.record import MarcRecord
from marc.writer import MARCXCHANGE_NS, MARCXML_NS, write_xml

FORMATS = ("iso2709", "marcxml", "marcxchange")


def stored_record(marc: bytes) -> MarcRecord:
    """A stored record (always UTF-8 ISO 2709 written by us) back as a `MarcRecord`."""
    raw = parse_structure(Chunk(0, 0, marc.rstrip(b"\x1d")))
    record, _notes = charset.decode_record(raw, charset.Decision(charset.UTF8, "stored"))
    return record


def export_records(rows: Iterable[tuple[str, str, bytes]], fmt: str, out: BinaryIO) -> int:
    if fmt == "iso2709":
        count = 0
        for _, _, marc in rows:
            out.write(marc)
            count += 1
        return count
    namespace = MARCXML_NS if fmt == "marcxml" else MARCXCHANGE_NS
    return write_xml(
        ((stored_record(marc), record_format) for _, record_format, marc in rows), out, namespace
    )
