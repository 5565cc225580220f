"""Records as partner catalogues send them (ISO 2709 in UTF-8, GBK/GB18030 or MARC-8; MARCXML
or MARCXchange), read through marc/ into the one display model: the same readers, character
set decisions and field maps the loader uses for our own catalogue."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from marc.bibliographic import BibRecord
from marc.charset import decide, decode_record, looks_unimarc, normalise_encoding_name
from marc.errors import RecordRejected
from marc.iso2709 import Chunk, parse_structure
from marc.marc21_map import map_marc21
from marc.record import MarcRecord
from marc.unimarc_map import map_unimarc
from marc.xml_input import record_from_element

UTF8_NAMES = ("utf-8", "utf8", "auto")
# lxml without entity expansion or network access: a partner's XML is not trusted.
SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


@dataclass(frozen=True)
class ReadRecord:
    bib: BibRecord
    record: MarcRecord
    notes: tuple[str, ...] = ()  # what the character set decision noticed


def _is_unimarc(record: MarcRecord, syntax: str) -> bool:
    if syntax == "unimarc":
        return True
    if syntax == "usmarc":
        return False
    tags = {field.tag for field in record.fields}
    return "200" in tags and "245" not in tags and "008" not in tags


def read_iso2709(data: bytes, syntax: str, encoding: str = "utf-8") -> ReadRecord:
    """One ISO 2709 record. `encoding` is the target's declared charset (a legacy GBK target);
    UTF-8 means "decide from the record", as the loader does (100$a/26-29, leader/09, bytes)."""
    raw = parse_structure(Chunk(1, 0, data.rstrip(b"\x1d")))
    unimarc = syntax == "unimarc" or (syntax != "usmarc" and looks_unimarc(raw))
    # The loader's names: "gbk" reads as GB18030, its superset, as legacy "GBK" servers often
    # send characters beyond GBK.
    override = "auto" if encoding.lower() in UTF8_NAMES else normalise_encoding_name(encoding)
    decision = decide(raw, unimarc, override)
    record, notes = decode_record(raw, decision)
    bib = map_unimarc(record) if unimarc else map_marc21(record)
    return ReadRecord(bib, record, tuple(note.message for note in notes))


def read_xml(data: bytes, syntax: str = "xml") -> ReadRecord:
    """One MARCXML / MARCXchange record (the `<record>` element, or anything holding one)."""
    try:
        root = etree.fromstring(data, SAFE_XML)
    except etree.XMLSyntaxError as error:
        raise RecordRejected(f"not well-formed XML: {error}") from None
    element = root if etree.QName(root).localname == "record" else None
    if element is None:
        element = next(
            (
                e
                for e in root.iter()
                if isinstance(e.tag, str) and etree.QName(e).localname == "record"
            ),
            None,
        )
    if element is None:
        raise RecordRejected("no MARC <record> element in the XML")
    record = record_from_element(element)
    kind = (element.get("format") or element.get("type") or "").lower()
    unimarc = "unimarc" in kind or _is_unimarc(record, syntax)
    bib = map_unimarc(record) if unimarc else map_marc21(record)
    return ReadRecord(bib, record)


__all__ = ["ReadRecord", "read_iso2709", "read_xml"]
