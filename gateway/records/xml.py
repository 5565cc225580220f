"""Response records, one builder per schema (`sru.schemas`), as lxml elements.

MARC schemas are written from the stored ISO 2709 by `marc.writer`, so what partners receive
is what `libgate export` writes. Holdings schemas take a `TitleAvailability` from the
circulation engine, read at request time: a checkout made a moment ago shows.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable

from lxml import etree

from gateway.catalogue.model import BibRecord
from gateway.catalogue.repository import RetrievedRecord
from gateway.circulation.availability import ShelfState
from gateway.circulation.engine import TitleAvailability
from gateway.records.opac import opac_holdings
from gateway.records.schemas import DC_ELEMENTS_NS, DC_RECORD_NS, HOLDINGS_NS, RecordSchema
from marc.export import stored_record, stored_record_xml
from marc.writer import MARCXCHANGE_NS, MARCXML_NS, record_element

Builder = Callable[[RetrievedRecord, TitleAvailability | None], etree._Element]


def _marc(record: RetrievedRecord, namespace: str) -> etree._Element:
    return record_element(stored_record(record.marc), record.format, namespace)


def marcxml(record: RetrievedRecord, availability: TitleAvailability | None) -> etree._Element:
    return _marc(record, MARCXML_NS)


def marcxchange(record: RetrievedRecord, availability: TitleAvailability | None) -> etree._Element:
    return _marc(record, MARCXCHANGE_NS)


_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """Text XML 1.0 can carry: most C0 controls removed (catalogue data and requests can hold
    them; lxml refuses them)."""
    return _XML_ILLEGAL.sub("", text) if _XML_ILLEGAL.search(text) else text


_text = xml_safe


def dublin_core(record: RetrievedRecord, availability: TitleAvailability | None) -> etree._Element:
    """The SRU Dublin Core record (`srw_dc:dc`) from the mapped data, for either MARC flavour."""
    bib = BibRecord.from_json(record.bib_json)
    root = etree.Element(
        f"{{{DC_RECORD_NS}}}dc", nsmap={"srw_dc": DC_RECORD_NS, "dc": DC_ELEMENTS_NS}
    )

    def add(name: str, value: str) -> None:
        if value and value.strip():
            etree.SubElement(root, f"{{{DC_ELEMENTS_NS}}}{name}").text = _text(value.strip())

    add("title", bib.display_title)
    for title in bib.other_titles:
        add("title", title)
    for name in bib.names:
        add("contributor" if name.responsibility == "secondary" else "creator", name.name)
    for subject in bib.subjects:
        add("subject", subject)
    for clc in bib.clc:
        add("subject", clc)
    add("description", bib.summary)
    for note in bib.notes:
        add("description", note)
    add("publisher", bib.publisher)
    add("date", bib.date or (str(bib.year) if bib.year else ""))
    add("type", "text")
    add("format", bib.extent)
    for isbn in bib.isbns:
        add("identifier", f"urn:ISBN:{isbn}")
    for issn in bib.issns:
        add("identifier", f"urn:ISSN:{issn}")
    add("identifier", record.record_id)
    for language in bib.languages:
        add("language", language)
    for series in bib.series:
        add("relation", series)
    return root


def _date(stamp: str | None) -> str:
    return stamp[:10] if stamp else ""


def opacxml(record: RetrievedRecord, availability: TitleAvailability | None) -> etree._Element:
    """YAZ's OPAC XML (`/usr/share/yaz/etc/opacxml.xsd`): the bibliographic record, then one
    holding per copy with its circulation record (`opac_holdings`, as Z39.50's OPAC record).
    No namespace, as YAZ writes it."""
    root = etree.Element("opacRecord")
    etree.SubElement(root, "bibliographicRecord").append(_marc(record, MARCXML_NS))
    holdings = etree.SubElement(root, "holdings")
    for found in opac_holdings(availability):
        holding = etree.SubElement(holdings, "holding")
        if found.local_location:
            etree.SubElement(holding, "localLocation").text = _text(found.local_location)
        if found.call_number:
            etree.SubElement(holding, "callNumber").text = _text(found.call_number)
        if found.public_note:
            etree.SubElement(holding, "publicNote").text = _text(found.public_note)
        copy = found.circulation
        circulation = etree.SubElement(etree.SubElement(holding, "circulations"), "circulation")
        etree.SubElement(circulation, "availableNow", value="1" if copy.available_now else "0")
        if copy.availability_date:
            etree.SubElement(circulation, "availabilityDate").text = copy.availability_date
        if copy.restrictions:
            etree.SubElement(circulation, "restrictions").text = _text(copy.restrictions)
        etree.SubElement(circulation, "itemId").text = _text(copy.item_id)
        etree.SubElement(circulation, "renewable", value="1" if copy.renewable else "0")
        etree.SubElement(circulation, "onHold", value="1" if copy.on_hold else "0")
    return root


def holdings(record: RetrievedRecord, availability: TitleAvailability | None) -> etree._Element:
    """libgate's holdings record: every copy with live availability, and the hold queue."""
    q = f"{{{HOLDINGS_NS}}}"
    copies = availability.copies if availability else ()
    root = etree.Element(q + "holdings", nsmap={None: HOLDINGS_NS})
    root.set("recordId", record.record_id)
    root.set("database", record.database)
    root.set("copies", str(len(copies)))
    root.set("available", str(sum(1 for c in copies if c.state is ShelfState.AVAILABLE)))
    root.set("holdQueue", str(availability.hold_queue if availability else 0))
    for copy in copies:
        element = etree.SubElement(root, q + "copy", barcode=_text(copy.barcode))
        element.set("available", "true" if copy.state is ShelfState.AVAILABLE else "false")
        element.set("state", copy.state.value)
        for name, value in (
            ("location", copy.location),
            ("callNumber", copy.call_number),
            ("itemType", copy.item_type),
            ("status", copy.status),
            ("dueDate", _date(copy.due_at)),
        ):
            if value:
                etree.SubElement(element, q + name).text = _text(value)
        if copy.on_hold_shelf:
            shelf = etree.SubElement(element, q + "onHoldShelf")
            if copy.pickup_desk:
                shelf.set("desk", _text(copy.pickup_desk))
    return root


def serialised(
    schema: RecordSchema, record: RetrievedRecord, availability: TitleAvailability | None
) -> bytes:
    """The record in `schema` as UTF-8 XML (no declaration): `build` then serialised, except
    MARCXML and marcxchange, written directly from the stored record (the same bytes)."""
    if schema.name in ("marcxml", "marcxchange"):
        namespace = MARCXML_NS if schema.name == "marcxml" else MARCXCHANGE_NS
        return stored_record_xml(record.marc, record.format, namespace)
    return etree.tostring(build(schema, record, availability), encoding="UTF-8")


BUILDERS: dict[str, Builder] = {
    "marcxml": marcxml,
    "marcxchange": marcxchange,
    "dc": dublin_core,
    "opacxml": opacxml,
    "holdings": holdings,
}


def build(
    schema: RecordSchema, record: RetrievedRecord, availability: TitleAvailability | None
) -> etree._Element:
    return BUILDERS[schema.name](record, availability)


# Our own XML read back; still no entities, DTDs or network, as everywhere.
SAFE_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=False
)


class RecordCache:
    """Built records kept as XML text, by record, schema and digest (which changes whenever
    the record does), least recently used dropped first. Building MARCXML from ISO 2709 in
    Python costs about 0.3 ms a record; reading it back is a tenth of that. Holdings records
    are never cached: availability is read live on every request."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[int, str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()  # requests run in a thread pool

    def text(
        self, schema: RecordSchema, record: RetrievedRecord, availability: TitleAvailability | None
    ) -> bytes:
        """The record element serialised as UTF-8 (no XML declaration): what a response
        writing bytes takes, with no tree built or parsed when the record is cached."""
        if schema.holdings or not self.max_entries:
            return serialised(schema, record, availability)
        key = (record.pk, schema.name, record.digest)
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                return cached
        text = serialised(schema, record, availability)
        self._keep(key, text)
        return text

    def _keep(self, key: tuple[int, str, str], text: bytes) -> None:
        with self._lock:
            self._entries[key] = text
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def build(
        self, schema: RecordSchema, record: RetrievedRecord, availability: TitleAvailability | None
    ) -> etree._Element:
        if schema.holdings or not self.max_entries:
            return build(schema, record, availability)
        key = (record.pk, schema.name, record.digest)
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
        if cached is not None:
            return etree.fromstring(cached, SAFE_PARSER)
        element = build(schema, record, availability)
        self._keep(key, etree.tostring(element, encoding="UTF-8"))
        return element
