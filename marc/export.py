"""`libgate export`: stored records out as ISO 2709, MARCXML or marcxchange."""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO

from marc import charset
from marc.errors import RecordRejected
from marc.iso2709 import Chunk, parse_structure
from marc.record import MarcRecord, is_control_tag
from marc.writer import MARCXCHANGE_NS, MARCXML_NS, XmlField, fields_xml, write_xml

FORMATS = ("iso2709", "marcxml", "marcxchange")


def stored_record(marc: bytes) -> MarcRecord:
    """A stored record (always UTF-8 ISO 2709 written by us) back as a `MarcRecord`."""
    raw = parse_structure(Chunk(0, 0, marc.rstrip(b"\x1d")))
    record, _notes = charset.decode_record(raw, charset.Decision(charset.UTF8, "stored"))
    return record


def stored_record_xml(marc: bytes, fmt: str, namespace: str) -> bytes:
    """`record_xml(stored_record(marc), fmt, namespace)` without building the `MarcRecord`:
    the stored record's fields decoded (UTF-8, as `stored_record` decodes them) straight into
    MARCXML or marcxchange. Raises what `stored_record` raises for a record it cannot read."""
    raw = parse_structure(Chunk(0, 0, marc.rstrip(b"\x1d")))
    width = raw.indicator_count

    def fields() -> Iterable[XmlField]:
        for tag, content in raw.entries:
            if is_control_tag(tag):
                yield tag, content.decode("utf-8"), "", ()
                continue
            subfields = []
            for part in content[width:].split(b"\x1f")[1:]:
                if not part:
                    continue
                if part[0] >= 0x80 or part[0] < 0x20:
                    raise RecordRejected(
                        f"field {tag} has a subfield code that is not a letter or digit"
                        f" (byte 0x{part[0]:02X})"
                    )
                subfields.append((chr(part[0]), part[1:].decode("utf-8")))
            yield tag, None, content[:width].decode("latin-1"), subfields

    return fields_xml(raw.leader, fields(), fmt, namespace)


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
