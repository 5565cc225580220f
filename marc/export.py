"""`libgate export`: stored records out as ISO 2709, MARCXML or marcxchange, as loaded or
with their current copies in the holdings fields (`records_with_copies`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import BinaryIO

from marc import charset
from marc.errors import RecordRejected
from marc.holdings import HoldingsProfile, ItemData
from marc.holdings_export import LostValue, with_copies
from marc.iso2709 import Chunk, parse_structure
from marc.record import MarcRecord, is_control_tag
from marc.writer import MARCXCHANGE_NS, MARCXML_NS, XmlField, fields_xml, to_iso2709, write_xml

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


def records_with_copies(
    rows: Iterable[tuple[str, str, bytes]],
    copies: Mapping[str, Sequence[ItemData]],
    profile: HoldingsProfile,
    on_shelf_status: str,
    lost: list[LostValue],
) -> Iterator[tuple[str, str, bytes]]:
    """`rows` (record id, format, stored ISO 2709) with each record's item fields replaced by
    its copies in `copies` (by record id), written as `profile` places them. What a load of
    the result would not give back is appended to `lost`. A record with no item field and no
    copy is passed through as stored."""
    for record_id, record_format, marc in rows:
        items = copies.get(record_id, ())
        if not items and profile.item_tag.encode() not in marc[24:]:
            yield record_id, record_format, marc  # cheap test first: no such tag in the bytes
            continue
        record = stored_record(marc)
        if not items and not record.get_fields(profile.item_tag):
            yield record_id, record_format, marc
            continue
        rebuilt, record_lost = with_copies(record, profile, items, on_shelf_status, record_id)
        lost.extend(record_lost)
        yield record_id, record_format, to_iso2709(rebuilt, record_format)
