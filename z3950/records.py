"""Retrieval records: a stored record in the syntax and element set a Z39.50 client asked for.

| syntax | element sets | what is sent |
|---|---|---|
| UNIMARC (5.1) | F, B | CNMARC/UNIMARC records as stored (ISO 2709, UTF-8, 100$a says so); MARC 21 records converted by `marc.marc21_to_unimarc` |
| USMARC (5.10) | F, B | MARC 21 records as stored; a CNMARC record is diagnostic 238 (we do not turn UNIMARC into MARC 21) |
| XML (5.109.10) | F = marcxml, B = dc, or any SRU schema name | the SRU record builders (`gateway.records.xml`), so both protocols send the same XML |
| SUTRS (5.101) | F, B | labelled lines of text |
| OPAC (5.102) | F, B | the bibliographic record in its true syntax (UNIMARC or USMARC, F or B) and one holdingsAndCirc per copy from the engine |

No preference means the record's own syntax. `B` (brief) keeps the identifying fields. The
choice of syntax and element set is checked once per request (`RecordSpec.resolve`: 239 or 25
for the whole request); a record that cannot be given in a valid syntax is a surrogate
diagnostic (238) in its place.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.catalogue.model import BibRecord
from gateway.catalogue.repository import RetrievedRecord
from gateway.circulation.availability import ShelfState
from gateway.circulation.engine import TitleAvailability
from gateway.records import xml as record_xml
from gateway.records.opac import opac_holdings, restriction
from gateway.records.schemas import find_schema
from gateway.z3950_codec import oids
from gateway.z3950_codec.diagnostics import Diagnostic
from gateway.z3950_codec.messages import RetrievalRecord
from marc.export import stored_record
from marc.marc21_to_unimarc import convert
from marc.record import MarcRecord
from marc.writer import canonical, to_iso2709
from z3950 import codec
from z3950.diagnostics import Z3950Error

FULL = "F"
BRIEF = "B"
SUPPORTED_SYNTAXES = frozenset(
    {oids.UNIMARC, oids.USMARC, oids.XML_TEXT, oids.XML_APPLICATION, oids.SUTRS, oids.OPAC}
)
XML_DEFAULTS = {FULL: "marcxml", BRIEF: "dc"}
# Fields a brief (B) MARC record keeps: identification, title, responsibility, edition,
# publication, extent, series and names.
BRIEF_TAGS = {
    "unimarc": frozenset(
        {"001", "005", "010", "011", "100", "101", "200", "205", "210", "215", "225"}
        | {f"7{n:02d}" for n in range(0, 23)}
    ),
    "marc21": frozenset(
        {"001", "005", "008", "020", "022", "100", "110", "111", "245", "250", "260", "264"}
        | {"300", "490", "700", "710", "711", "880"}
    ),
}


@dataclass(frozen=True)
class RecordSpec:
    """A validated (syntax, element set) pair for one Present or piggy-backed Search."""

    syntax: str | None  # None: each record's own MARC syntax
    element_set: str  # F, B, or an SRU schema name for XML

    @classmethod
    def resolve(cls, syntax: str | None, element_set: str | None) -> RecordSpec:
        if syntax is not None and syntax not in SUPPORTED_SYNTAXES:
            raise Z3950Error(239, oids.name_of(syntax))
        name = (element_set or FULL).strip()
        if syntax in (oids.XML_TEXT, oids.XML_APPLICATION):
            schema = find_schema(XML_DEFAULTS.get(name.upper(), name))
            if schema is None:
                raise Z3950Error(25, name)
            return cls(syntax, schema.name)
        if name.upper() not in (FULL, BRIEF):
            raise Z3950Error(25, name)
        return cls(syntax, name.upper())

    @property
    def needs_availability(self) -> bool:
        if self.syntax == oids.OPAC:
            return True
        if self.syntax in (oids.XML_TEXT, oids.XML_APPLICATION):
            schema = find_schema(self.element_set)
            return bool(schema and schema.holdings)
        return self.syntax == oids.SUTRS and self.element_set == FULL


def build(
    spec: RecordSpec, record: RetrievedRecord, availability: TitleAvailability | None
) -> RetrievalRecord | Diagnostic:
    """One record in the requested form, or the surrogate diagnostic that replaces it."""
    if spec.syntax in (None, oids.UNIMARC, oids.USMARC):
        return _marc(record, spec.syntax, spec.element_set)
    if spec.syntax == oids.OPAC:
        return RetrievalRecord(oids.OPAC, asn1=opac(record, availability, spec.element_set))
    if spec.syntax == oids.SUTRS:
        text = sutrs(record, availability, spec.element_set)
        return RetrievalRecord(oids.SUTRS, asn1=codec.general_string(text))
    schema = find_schema(spec.element_set)
    assert schema is not None
    return RetrievalRecord(spec.syntax, octets=record_xml.serialised(schema, record, availability))


def native_syntax(record: RetrievedRecord) -> str:
    return oids.UNIMARC if record.format == "unimarc" else oids.USMARC


def marc_bytes(record: RetrievedRecord, syntax: str, element_set: str) -> bytes | None:
    """ISO 2709 in `syntax`, or None when the record cannot be given in it."""
    if syntax == native_syntax(record):
        if element_set == FULL:
            return record.marc  # stored as we export: canonical UTF-8 ISO 2709
        return to_iso2709(_brief(stored_record(record.marc), record.format), record.format)
    if syntax == oids.UNIMARC:  # a MARC 21 record, converted as `libgate load` can
        converted = canonical(convert(stored_record(record.marc)), "unimarc")
        if element_set == BRIEF:
            converted = _brief(converted, "unimarc")
        return to_iso2709(converted, "unimarc")
    return None


def _marc(
    record: RetrievedRecord, syntax: str | None, element_set: str
) -> RetrievalRecord | Diagnostic:
    wanted = syntax or native_syntax(record)
    data = marc_bytes(record, wanted, element_set)
    if data is None:
        return Diagnostic(238, oids.name_of(native_syntax(record)))
    return RetrievalRecord(wanted, octets=data)


def _brief(record: MarcRecord, fmt: str) -> MarcRecord:
    keep = BRIEF_TAGS["unimarc" if fmt == "unimarc" else "marc21"]
    return MarcRecord(record.leader, [f for f in record.fields if f.tag in keep])


# --- OPAC ----------------------------------------------------------------------------------


def _text(value: str) -> bytes:
    return value.encode("utf-8")


def opac(
    record: RetrievedRecord, availability: TitleAvailability | None, element_set: str
) -> bytes:
    """An OPACRecord: the bibliographic record labelled with its own syntax (UNIMARC for
    CNMARC, not USMARC as YAZ's OPAC XML conversion labels it) and one holdingsAndCirc per
    copy (`opac_holdings`, as SRU's opacxml) with its live circulation record."""
    syntax = native_syntax(record)
    bibliographic = marc_bytes(record, syntax, BRIEF if element_set == BRIEF else FULL)
    holdings = []
    for holding in opac_holdings(availability):
        copy = holding.circulation
        circulation: dict[str, object] = {
            "availableNow": copy.available_now,
            "itemId": _text(copy.item_id),
            "renewable": copy.renewable,
            "onHold": copy.on_hold,
        }
        if copy.availability_date:
            circulation["availablityDate"] = _text(copy.availability_date)  # the ASN.1's spelling
        if copy.restrictions:
            circulation["restrictions"] = _text(copy.restrictions)
        data: dict[str, object] = {"circulationData": [circulation]}
        if holding.local_location:
            data["localLocation"] = _text(holding.local_location)
        if holding.call_number:
            data["callNumber"] = _text(holding.call_number)
        if holding.public_note:
            data["publicNote"] = _text(holding.public_note)
        holdings.append(("holdingsAndCirc", data))
    value: dict[str, object] = {
        "bibliographicRecord": {
            "direct-reference": syntax,
            "encoding": ("octet-aligned", bibliographic or b""),
        },
        "holdingsData": holdings,
    }
    return codec.encode_value("OPACRecord", value)


# --- SUTRS ---------------------------------------------------------------------------------


def sutrs(record: RetrievedRecord, availability: TitleAvailability | None, element_set: str) -> str:
    """Labelled lines, one value per line, for people and for clients that show text."""
    bib = BibRecord.from_json(record.bib_json)
    lines: list[tuple[str, str]] = [("Title", bib.display_title)]
    lines += [("Author", name.name) for name in bib.names]
    lines.append(("Date", bib.date or (str(bib.year) if bib.year else "")))
    if element_set == FULL:
        lines += [("Other title", title) for title in bib.other_titles]
        lines += [("Responsibility", text) for text in bib.responsibility]
        lines.append(("Edition", bib.edition))
        lines.append(("Place", bib.place))
        lines.append(("Publisher", bib.publisher))
        lines.append(("Extent", bib.extent))
        lines += [("Series", series) for series in bib.series]
        lines += [("Subject", subject) for subject in bib.subjects]
        lines += [("CLC", clc) for clc in bib.clc]
        lines += [("ISBN", isbn) for isbn in bib.isbns]
        lines += [("ISSN", issn) for issn in bib.issns]
        lines += [("Language", language) for language in bib.languages]
        lines.append(("Summary", bib.summary))
        lines += [("Note", note) for note in bib.notes]
    lines.append(("Record id", record.record_id))
    if availability is not None:
        for copy in availability.copies:
            where = " ".join(v for v in (copy.location, copy.call_number) if v)
            state = "available" if copy.state is ShelfState.AVAILABLE else copy.status
            if copy.state is ShelfState.LIBRARY_USE_ONLY:
                state = restriction(copy) or state
            if copy.due_at:
                state += f", due {copy.due_at[:10]}"
            lines.append(("Copy", f"{copy.barcode} {where} ({state})".replace("  ", " ")))
    return "".join(
        f"{label}: {_one_line(value)}\n" for label, value in lines if value and value.strip()
    )


def _one_line(value: str) -> str:
    return " ".join(value.split())
