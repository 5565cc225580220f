"""A partner's copies as its catalogue shows them: the OPAC record syntax's holdings and
circulation data (Z39.50 OPACRecord: the bibliographic record inside, one holdingsAndCirc per
copy; libgate serves it, z3950/records.py; over SRU the same as YAZ's OPAC XML, `opacxml`),
and a plain MARC record's holdings fields read by a holdings profile (marc/holdings.py: CNMARC
905/906, 995, MARC21 852).

Each copy becomes the engine's `PartnerCopy`, which the engine alone judges
(`gateway.circulation.ill_partner_copies.offers_ill`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import asn1tools
from lxml import etree

from gateway.circulation.ill_partner_copies import PartnerCopy
from gateway.z3950_codec import oids
from gateway.z3950_codec.schema import schema
from marc.charset import normalise_encoding_name
from marc.errors import RecordRejected
from marc.holdings import HoldingsProfile, items_from_record
from marc.record import MarcRecord
from union.records import SAFE_XML, ReadRecord, read_iso2709, read_xml

SYNTAX_OF_OID = {oids.UNIMARC: "unimarc", oids.USMARC: "usmarc"}


@dataclass(frozen=True)
class OpacRecord:
    """An OPAC record read: its bibliographic record and every copy it lists."""

    read: ReadRecord
    copies: tuple[PartnerCopy, ...]


def _text(value: Any, encoding: str) -> str:
    if value is None:
        return ""
    data = bytes(value)
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:  # a legacy target writes its own charset (GBK, read as GB18030)
        pass
    try:
        return data.decode(normalise_encoding_name(encoding), "replace").strip()
    except LookupError:  # MARC-8 has no Python codec: its ASCII part reads as Latin-1
        return data.decode("latin-1").strip()


def read_opac(data: bytes, encoding: str = "utf-8") -> OpacRecord:
    """One OPACRecord (the BER of its value). Raises RecordRejected when it is not one, or
    carries no bibliographic record we can read."""
    try:
        value = schema().decode("OPACRecord", data)
    except (asn1tools.Error, ValueError, IndexError) as error:
        raise RecordRejected(f"not an OPAC record: {error}") from None
    bibliographic = value.get("bibliographicRecord")
    if not bibliographic:
        raise RecordRejected("an OPAC record without its bibliographic record")
    kind, inner = bibliographic["encoding"]
    if kind != "octet-aligned" or not inner:
        raise RecordRejected(f"an OPAC bibliographic record encoded {kind}, not octet-aligned")
    reference = bibliographic.get("direct-reference")
    inner = bytes(inner)
    if reference in (oids.XML_TEXT, oids.XML_APPLICATION) or inner.lstrip()[:1] == b"<":
        read = read_xml(inner)
    else:
        read = read_iso2709(inner, SYNTAX_OF_OID.get(reference or "", "auto"), encoding)
    copies = []
    for choice, holding in value.get("holdingsData") or ():
        if choice != "holdingsAndCirc":
            continue  # a MARC holdings record: no circulation data to judge a copy by
        location = _text(holding.get("localLocation"), encoding) or _text(
            holding.get("shelvingLocation"), encoding
        )
        call_number = _text(holding.get("callNumber"), encoding)
        note = _text(holding.get("publicNote"), encoding)
        circulations = holding.get("circulationData") or [None]
        for circulation in circulations:
            if circulation is None:  # a holding with no circulation record: status unknown
                copies.append(PartnerCopy(location, call_number, status=note))
                continue
            copies.append(
                PartnerCopy(
                    location=location,
                    call_number=call_number,
                    item_id=_text(circulation.get("itemId"), encoding),
                    available_now=bool(circulation["availableNow"]),
                    restrictions=_text(circulation.get("restrictions"), encoding),
                    due_date=_text(circulation.get("availablityDate"), encoding),
                    status=note,
                    on_hold=bool(circulation.get("onHold")),
                )
            )
    return OpacRecord(read, tuple(copies))


def _local(element: etree._Element, name: str) -> etree._Element | None:
    return next(
        (e for e in element if isinstance(e.tag, str) and etree.QName(e).localname == name),
        None,
    )


def _child_text(element: etree._Element, *names: str) -> str:
    for name in names:
        found = _local(element, name)
        if found is not None and (found.text or "").strip():
            return (found.text or "").strip()
    return ""


def _flag(element: etree._Element, name: str) -> bool | None:
    found = _local(element, name)
    if found is None:
        return None
    value = (found.get("value") or found.text or "").strip().lower()
    return value in ("1", "true", "yes")


def read_opacxml(data: bytes) -> OpacRecord:
    """One OPAC XML record (`<opacRecord>`, YAZ's opacxml.xsd, as SRU sends it)."""
    try:
        root = etree.fromstring(data, SAFE_XML)
    except etree.XMLSyntaxError as error:
        raise RecordRejected(f"not well-formed XML: {error}") from None
    if etree.QName(root).localname != "opacRecord":
        found = next(
            (
                e
                for e in root.iter()
                if isinstance(e.tag, str) and etree.QName(e).localname == "opacRecord"
            ),
            None,
        )
        if found is None:
            raise RecordRejected("no <opacRecord> in the XML")
        root = found
    bibliographic = _local(root, "bibliographicRecord")
    if bibliographic is None:
        raise RecordRejected("an OPAC record without its bibliographic record")
    read = read_xml(etree.tostring(bibliographic))
    copies = []
    holdings = _local(root, "holdings")
    for holding in holdings if holdings is not None else ():
        if not isinstance(holding.tag, str) or etree.QName(holding).localname != "holding":
            continue
        location = _child_text(holding, "localLocation", "shelvingLocation")
        call_number = _child_text(holding, "callNumber")
        note = _child_text(holding, "publicNote")
        circulations = _local(holding, "circulations")
        listed = [
            c
            for c in (circulations if circulations is not None else ())
            if isinstance(c.tag, str) and etree.QName(c).localname == "circulation"
        ]
        if not listed:
            copies.append(PartnerCopy(location, call_number, status=note))
        for circulation in listed:
            copies.append(
                PartnerCopy(
                    location=location,
                    call_number=call_number,
                    item_id=_child_text(circulation, "itemId"),
                    available_now=_flag(circulation, "availableNow"),
                    restrictions=_child_text(circulation, "restrictions"),
                    due_date=_child_text(
                        circulation, "availabilityDate", "availablityDate", "availabiltyDate"
                    ),
                    status=note,
                    on_hold=bool(_flag(circulation, "onHold")),
                )
            )
    return OpacRecord(read, tuple(copies))


def marc_copies(record: MarcRecord, profile: HoldingsProfile) -> tuple[PartnerCopy, ...] | None:
    """The copies a plain MARC record's holdings fields describe, by the target's profile;
    None when its holdings fields cannot be read (a barcode twice, a barcode with spaces): then
    what it holds is not known. A copy without a status word is not presumed on the shelf."""
    try:
        items, _ = items_from_record(record, profile, on_shelf_status="")
    except RecordRejected:
        return None
    return tuple(
        PartnerCopy(
            location=" ".join(v for v in (item.library, item.location) if v),
            call_number=item.call_number,
            item_id=item.barcode,
            status=item.status,
            item_type=item.item_type,
        )
        for item in items
    )


def with_item_types(
    copies: tuple[PartnerCopy, ...], described: tuple[PartnerCopy, ...]
) -> tuple[PartnerCopy, ...]:
    """OPAC copies with the item type their bibliographic record's holdings fields give the
    same barcode (the OPAC syntax has no item type; a record with 995$r does)."""
    types = {c.item_id: c.item_type for c in described if c.item_id and c.item_type}
    return tuple(
        replace(c, item_type=types[c.item_id]) if not c.item_type and c.item_id in types else c
        for c in copies
    )


__all__ = ["OpacRecord", "marc_copies", "read_opac", "read_opacxml", "with_item_types"]
