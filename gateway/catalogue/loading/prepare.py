"""One framed record → a `MappedRecord` ready to store, or a `Rejection`: the reason, the field
at fault and what could be read of the record (001, title, the format it was read as).

Structure (iso2709) → format (UNIMARC or MARC21) → character set (charset) → field map →
copies (holdings profile) → canonical UTF-8 bytes and a digest that says "unchanged" on reload.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from gateway.catalogue.indexes import index_document
from gateway.catalogue.loading.messages import FORMAT_NAMES
from gateway.catalogue.model import MappedRecord
from gateway.config import DEFAULT_ON_SHELF_STATUS
from marc import charset
from marc.errors import COPIES_IN_OTHER_PROFILE, RecordRejected, RecordWarning
from marc.holdings import HoldingsProfile, ItemData, items_from_record
from marc.iso2709 import Chunk, RawRecord, parse_structure
from marc.marc21_map import linked_880, map_marc21
from marc.record import MarcRecord
from marc.text import clean
from marc.unimarc_map import map_unimarc
from marc.writer import canonical, to_iso2709

MAX_CONTROL_NUMBER = 64
MAX_TITLE = 200  # characters of a rejected record's title kept in the report
# The title field of each format, and the other format's (a record read as the wrong format
# still shows its title, and the reject says which title field it has).
TITLE_FIELDS = {"unimarc": "200", "marc21": "245"}


@dataclass(frozen=True, slots=True)
class Prepared:
    mapped: MappedRecord
    record_id: str
    digest: str
    encoding: str
    encoding_note: str | None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record cannot be loaded, with what could be read of it to find it again: its
    001, its title, the format it was read as (None: rejected before the format was decided)
    and the field at fault. Plain data: it crosses the worker processes' pipes."""

    reason: str
    field: str | None = None
    control_number: str | None = None
    title: str | None = None
    format: str | None = None


class PhaseClock:
    """Seconds spent parsing (structure, character set) and mapping, summed over records."""

    __slots__ = ("parse", "map")

    def __init__(self) -> None:
        self.parse = 0.0
        self.map = 0.0


def looks_unimarc_record(record: MarcRecord) -> bool:
    return charset.unimarc_by_content({f.tag for f in record.fields}, record.subfield("100", "a"))


def prepare_chunk(
    chunk: Chunk,
    fmt: str,
    encoding: str,
    profile: HoldingsProfile,
    on_shelf_status: str = DEFAULT_ON_SHELF_STATUS,
    clock: PhaseClock | None = None,
    other_profiles: tuple[HoldingsProfile, ...] = (),
) -> Prepared:
    """A framed record ready to store, or `RecordRejected` (see `prepare_or_reject`)."""
    outcome = prepare_or_reject(
        chunk, fmt, encoding, profile, on_shelf_status, clock, other_profiles
    )
    if isinstance(outcome, Rejection):
        raise RecordRejected(outcome.reason, outcome.field)
    return outcome


def prepare_or_reject(
    chunk: Chunk,
    fmt: str,
    encoding: str,
    profile: HoldingsProfile,
    on_shelf_status: str = DEFAULT_ON_SHELF_STATUS,
    clock: PhaseClock | None = None,
    other_profiles: tuple[HoldingsProfile, ...] = (),
) -> Prepared | Rejection:
    """A framed record ready to store, or why not with what could be read of it. `fmt` is
    "auto" (decided per record from its content), "unimarc" or "marc21"."""
    started = time.perf_counter()
    parsed: float | None = None
    raw: RawRecord | None = None
    record_format: str | None = None
    decision: charset.Decision | None = None
    try:
        raw = parse_structure(chunk)
        is_unimarc = fmt == "unimarc" or (fmt == "auto" and charset.looks_unimarc(raw))
        record_format = "unimarc" if is_unimarc else "marc21"
        decision = charset.decide(raw, is_unimarc, encoding)
        record, damage = charset.decode_record(raw, decision)
        mismatch = decision.warning()
        warnings = raw.warnings + ([mismatch] if mismatch else []) + damage
        parsed = time.perf_counter()
        return prepare_record(
            record,
            record_format,
            profile,
            decision.encoding,
            decision.note,
            warnings,
            on_shelf_status,
            other_profiles,
        )
    except RecordRejected as rejected:
        if isinstance(rejected, _Described):
            return rejected.rejection
        control_number, title = _read_raw(raw, record_format, decision)
        return Rejection(rejected.reason, rejected.field, control_number, title, record_format)
    finally:
        if clock is not None:
            now = time.perf_counter()
            clock.parse += (parsed or now) - started
            clock.map += now - (parsed or now)


class _Described(RecordRejected):
    """A reject raised once the record was decoded, with what was read of it."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.reason, rejection.field)
        self.rejection = rejection


def rejection_of(rejected: RecordRejected, fmt: str | None = None) -> Rejection:
    """`prepare_record`'s reject as a `Rejection` (what it read of the record included)."""
    if isinstance(rejected, _Described):
        return rejected.rejection
    return Rejection(rejected.reason, rejected.field, format=fmt)


def prepare_record(
    record: MarcRecord,
    fmt: str,
    profile: HoldingsProfile,
    encoding: str,
    encoding_note: str | None = None,
    warnings: list[RecordWarning] | None = None,
    on_shelf_status: str = DEFAULT_ON_SHELF_STATUS,
    other_profiles: tuple[HoldingsProfile, ...] = (),
) -> Prepared:
    """A record ready to store; a copy without a status word gets `on_shelf_status` (the
    loader passes the configured [circulation] on_shelf_status). A reject raised here carries
    the record's 001, title and format (`rejection_of`)."""
    try:
        stored = canonical(record, fmt)
        return _prepare(
            stored, fmt, profile, encoding, encoding_note, warnings, on_shelf_status, other_profiles
        )
    except RecordRejected as rejected:
        if isinstance(rejected, _Described):
            raise
        reason = rejected.reason + _other_format_hint(record, fmt, rejected.field)
        raise _Described(
            Rejection(
                reason,
                rejected.field,
                clean(record.control("001")) or None,
                _title(record, fmt),
                fmt,
            )
        ) from None


def _prepare(
    stored: MarcRecord,
    fmt: str,
    profile: HoldingsProfile,
    encoding: str,
    encoding_note: str | None,
    warnings: list[RecordWarning] | None,
    on_shelf_status: str,
    other_profiles: tuple[HoldingsProfile, ...],
) -> Prepared:
    bib = map_unimarc(stored) if fmt == "unimarc" else map_marc21(stored)
    items, item_warnings = items_from_record(stored, profile, on_shelf_status)
    elsewhere = _copies_in_other_profile(stored, profile, items, other_profiles, on_shelf_status)
    try:
        marc = to_iso2709(stored, fmt)
    except ValueError as error:
        # Our own writer's words ("field 856 is 12000 bytes; ISO 2709 allows 9999").
        raise RecordRejected(f"cannot be stored as ISO 2709: {error}") from None
    control_number = bib.control_number
    if control_number and len(control_number) > MAX_CONTROL_NUMBER:
        raise RecordRejected(
            f"001 is {len(control_number)} characters long; at most {MAX_CONTROL_NUMBER} allowed",
            "001",
        )
    record_id = control_number or "h" + hashlib.sha256(marc).hexdigest()[:20]
    items_json = json.dumps([i.as_tuple() for i in items], ensure_ascii=False)
    digest = hashlib.sha256(marc + b"\x00" + items_json.encode("utf-8")).hexdigest()
    mapped = MappedRecord(
        bib=bib,
        items=tuple(items),
        marc=marc,
        format=fmt,
        warnings=tuple((warnings or []) + item_warnings + elsewhere),
        index=index_document(bib),
        bib_json=bib.to_json(),
    )
    return Prepared(mapped, record_id, digest, encoding, encoding_note)


def _copies_in_other_profile(
    record: MarcRecord,
    profile: HoldingsProfile,
    items: list[ItemData],
    others: tuple[HoldingsProfile, ...],
    on_shelf_status: str,
) -> list[RecordWarning]:
    """When the chosen profile finds no copy in a record but another profile finds copies with
    real-looking barcodes (digits in them), the file is probably that source's: say so. A
    profile without an item tag (`none`) was chosen to take no copies: nothing to say."""
    if items or not profile.item_tag:
        return []
    for other in others:
        if other.name == profile.name or other.item_tag in ("", profile.item_tag):
            continue
        if record.first(other.item_tag) is None:
            continue
        try:
            found, _ = items_from_record(record, other, on_shelf_status)
        except RecordRejected:
            continue
        barcodes = [i.barcode for i in found]  # digitless values are not copies already
        if barcodes:
            copies = "copy" if len(barcodes) == 1 else "copies"
            return [
                RecordWarning(
                    COPIES_IN_OTHER_PROFILE,
                    f"profile {profile.name} finds no copy in {profile.item_tag}, but profile"
                    f" {other.name} finds {len(barcodes)} {copies} in {other.item_tag}"
                    f" (barcode {barcodes[0]})",
                    other.item_tag,
                    f"--profile {other.name}",
                )
            ]
    return []


def _other_format_hint(record: MarcRecord, fmt: str, field: str | None) -> str:
    """A missing title field when the other format's title field is there: the record was
    probably read as the wrong format."""
    if field != TITLE_FIELDS.get(fmt):
        return ""
    other = "marc21" if fmt == "unimarc" else "unimarc"
    tag = TITLE_FIELDS[other]
    if not record.subfield(tag, "a"):
        return ""
    return f"; it has {tag} $a: is it {FORMAT_NAMES[other]}? try --format {other}"


def _title(record: MarcRecord, fmt: str | None) -> str | None:
    """The record's title as it can be read: its format's title field first, then the other
    format's (a record read as the wrong format)."""
    order = ("unimarc", "marc21") if fmt == "unimarc" else ("marc21", "unimarc")
    for name in order:
        if name == "marc21":
            fields = linked_880(record, "245") + record.get_fields("245")
        else:
            fields = record.get_fields("200")
        for found in fields:
            title = clean(found.get("a"))
            if title:
                return title[:MAX_TITLE]
    return None


def _read_raw(
    raw: RawRecord | None, fmt: str | None, decision: charset.Decision | None
) -> tuple[str | None, str | None]:
    """001 and title of a record rejected before it was decoded, when their bytes can be read
    for sure (the decided character set, else UTF-8; never a guess)."""
    if raw is None:
        return None, None
    encoding = decision.encoding if decision and decision.encoding != charset.MARC8 else "utf-8"
    control_number = title = None
    wanted = [TITLE_FIELDS["unimarc"], TITLE_FIELDS["marc21"]]
    if fmt == "marc21":
        wanted.reverse()
    titles: dict[str, str] = {}
    for tag, content in raw.entries:
        if tag == "001" and control_number is None:
            control_number = _strict(content, encoding)
        elif tag in wanted and tag not in titles:
            start = content.find(b"\x1fa")
            if start >= 0:
                text = _strict(content[start + 2 :].split(b"\x1f", 1)[0], encoding)
                if text:
                    titles[tag] = text
    title = clean(next((titles[tag] for tag in wanted if tag in titles), None))[:MAX_TITLE]
    return clean(control_number) or None, title or None


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None
