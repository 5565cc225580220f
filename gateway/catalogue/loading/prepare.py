"""One framed record → a `MappedRecord` ready to store, or `RecordRejected` with the reason.

Structure (iso2709) → format (UNIMARC or MARC21) → character set (charset) → field map →
copies (holdings profile) → canonical UTF-8 bytes and a digest that says "unchanged" on reload.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from gateway.catalogue.indexes import index_document
from gateway.catalogue.model import MappedRecord
from gateway.config import DEFAULT_ON_SHELF_STATUS
from marc import charset
from marc.errors import RecordRejected
from marc.holdings import HoldingsProfile, items_from_record
from marc.iso2709 import Chunk, parse_structure
from marc.marc21_map import map_marc21
from marc.record import MarcRecord
from marc.unimarc_map import map_unimarc
from marc.writer import canonical, to_iso2709

MAX_CONTROL_NUMBER = 64


@dataclass(frozen=True, slots=True)
class Prepared:
    mapped: MappedRecord
    record_id: str
    digest: str
    encoding: str
    encoding_note: str | None


class PhaseClock:
    """Seconds spent parsing (structure, character set) and mapping, summed over records."""

    __slots__ = ("parse", "map")

    def __init__(self) -> None:
        self.parse = 0.0
        self.map = 0.0


def looks_unimarc_record(record: MarcRecord) -> bool:
    tags = {f.tag for f in record.fields}
    if "245" in tags or "008" in tags:
        return False
    coded = record.subfield("100", "a") or ""
    if len(coded) >= 9 and coded[:8].isdigit():
        return True
    return "200" in tags


def prepare_chunk(
    chunk: Chunk,
    fmt: str,
    encoding: str,
    profile: HoldingsProfile,
    on_shelf_status: str = DEFAULT_ON_SHELF_STATUS,
    clock: PhaseClock | None = None,
) -> Prepared:
    started = time.perf_counter()
    parsed: float | None = None
    try:
        raw = parse_structure(chunk)
        is_unimarc = fmt == "unimarc" or (fmt == "auto" and charset.looks_unimarc(raw))
        decision = charset.decide(raw, is_unimarc, encoding)
        record, damage = charset.decode_record(raw, decision)
        notes = [n for n in (decision.note, *damage) if n]
        warnings = raw.warnings + notes
        parsed = time.perf_counter()
        return prepare_record(
            record,
            "unimarc" if is_unimarc else "marc21",
            profile,
            decision.encoding,
            decision.note,
            warnings,
            on_shelf_status,
        )
    finally:
        if clock is not None:
            now = time.perf_counter()
            clock.parse += (parsed or now) - started
            clock.map += now - (parsed or now)


def prepare_record(
    record: MarcRecord,
    fmt: str,
    profile: HoldingsProfile,
    encoding: str,
    encoding_note: str | None = None,
    warnings: list[str] | None = None,
    on_shelf_status: str = DEFAULT_ON_SHELF_STATUS,
) -> Prepared:
    """A record ready to store; a copy without a status word gets `on_shelf_status` (the
    loader passes the configured [circulation] on_shelf_status)."""
    stored = canonical(record, fmt)
    bib = map_unimarc(stored) if fmt == "unimarc" else map_marc21(stored)
    items, item_warnings = items_from_record(stored, profile, on_shelf_status)
    try:
        marc = to_iso2709(stored, fmt)
    except ValueError as error:
        raise RecordRejected(f"cannot be stored as ISO 2709: {error}") from None
    control_number = bib.control_number
    if control_number and len(control_number) > MAX_CONTROL_NUMBER:
        raise RecordRejected(
            f"001 is {len(control_number)} characters long; at most {MAX_CONTROL_NUMBER} allowed"
        )
    record_id = control_number or "h" + hashlib.sha256(marc).hexdigest()[:20]
    items_json = json.dumps([i.as_tuple() for i in items], ensure_ascii=False)
    digest = hashlib.sha256(marc + b"\x00" + items_json.encode("utf-8")).hexdigest()
    mapped = MappedRecord(
        bib=bib,
        items=tuple(items),
        marc=marc,
        format=fmt,
        warnings=tuple((warnings or []) + item_warnings),
        index=index_document(bib),
        bib_json=bib.to_json(),
    )
    return Prepared(mapped, record_id, digest, encoding, encoding_note)
