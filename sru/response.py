"""SRU response documents, built with lxml: searchRetrieve, scan, explain and diagnostics, in
the element order and namespaces of each version (1.1/1.2: the SRW schema; 2.0: OASIS
sruResponse.xsd and scan.xsd). No I/O: elements in, bytes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from gateway.records.xml import xml_safe
from sru.diagnostics import Diagnostic
from sru.versions import Version

PREFIX = "zs"  # the prefix YAZ uses; clients must not care, some do
DIAGNOSTIC_SCHEMA = "info:srw/schema/1/diagnostics-v1.1"  # surrogate diagnostic records


@dataclass(frozen=True)
class ResponseRecord:
    schema: str  # identifier written in recordSchema
    data: etree._Element
    position: int


@dataclass(frozen=True)
class ScanTerm:
    value: str
    count: int
    display: str = ""


def _element(
    parent: etree._Element | None, ns: str, name: str, text: object = None
) -> etree._Element:
    tag = f"{{{ns}}}{name}"
    element = (
        etree.Element(tag, nsmap={PREFIX: ns}) if parent is None else etree.SubElement(parent, tag)
    )
    if text is not None:
        element.text = str(text)
    return element


def _diagnostics(
    parent: etree._Element, ns: str, version: Version, diagnostics: Sequence[Diagnostic]
) -> None:
    if not diagnostics:
        return
    holder = _element(parent, ns, "diagnostics")
    for diagnostic in diagnostics:
        holder.append(diagnostic_element(version, diagnostic))


def diagnostic_element(version: Version, diagnostic: Diagnostic) -> etree._Element:
    ns = version.diagnostic_ns
    element = etree.Element(f"{{{ns}}}diagnostic", nsmap={"diag": ns})
    etree.SubElement(element, f"{{{ns}}}uri").text = diagnostic.uri
    if diagnostic.details:
        etree.SubElement(element, f"{{{ns}}}details").text = _clean(diagnostic.details)
    if diagnostic.text:
        etree.SubElement(element, f"{{{ns}}}message").text = _clean(diagnostic.text)
    return element


_clean = xml_safe


def _record(
    parent: etree._Element, ns: str, version: Version, record: ResponseRecord, escaping: str
) -> None:
    element = _element(parent, ns, "record")
    _element(element, ns, "recordSchema", record.schema)
    if version.is_2:
        _element(element, ns, "recordXMLEscaping", escaping)
    else:
        _element(element, ns, "recordPacking", escaping)
    data = _element(element, ns, "recordData")
    if escaping == "string":
        data.text = etree.tostring(record.data, encoding="unicode")
    else:
        data.append(record.data)
    _element(element, ns, "recordPosition", record.position)


def surrogate(version: Version, diagnostic: Diagnostic, position: int) -> ResponseRecord:
    """A record that could not be sent: a diagnostic in its place (SRU surrogate diagnostic)."""
    return ResponseRecord(DIAGNOSTIC_SCHEMA, diagnostic_element(version, diagnostic), position)


def search_retrieve_response(
    version: Version,
    *,
    total: int,
    records: Sequence[ResponseRecord] = (),
    escaping: str = "xml",
    result_set_id: str | None = None,
    result_set_ttl: int = 0,
    next_position: int | None = None,
    diagnostics: Sequence[Diagnostic] = (),
) -> etree._Element:
    ns = version.response_ns
    root = _element(None, ns, "searchRetrieveResponse")
    if not version.is_2:  # 2.0 dropped <version> from this response
        _element(root, ns, "version", version.text)
    _element(root, ns, "numberOfRecords", total)
    if result_set_id:
        _element(root, ns, "resultSetId", result_set_id)
        if not version.is_2:
            _element(root, ns, "resultSetIdleTime", result_set_ttl)
    if records:
        holder = _element(root, ns, "records")
        for record in records:
            _record(holder, ns, version, record, escaping)
    if next_position is not None:
        _element(root, ns, "nextRecordPosition", next_position)
    _diagnostics(root, ns, version, diagnostics)
    if version.is_2 and result_set_id:
        _element(root, ns, "resultSetTTL", result_set_ttl)
    return root


def scan_response(
    version: Version, terms: Sequence[ScanTerm], diagnostics: Sequence[Diagnostic] = ()
) -> etree._Element:
    ns = version.scan_ns
    root = _element(None, ns, "scanResponse")
    _element(root, ns, "version", version.text)
    if terms:
        holder = _element(root, ns, "terms")
        for term in terms:
            element = _element(holder, ns, "term")
            _element(element, ns, "value", _clean(term.value))
            _element(element, ns, "numberOfRecords", term.count)
            if term.display and term.display != term.value:
                _element(element, ns, "displayTerm", _clean(term.display))
    _diagnostics(root, ns, version, diagnostics)
    return root


def explain_response(
    version: Version,
    record: etree._Element,
    *,
    escaping: str = "xml",
    diagnostics: Sequence[Diagnostic] = (),
) -> etree._Element:
    ns = version.response_ns
    root = _element(None, ns, "explainResponse")
    _element(root, ns, "version", version.text)
    _record(
        root,
        ns,
        version,
        ResponseRecord("http://explain.z3950.org/dtd/2.0/", record, 1),
        escaping,
    )
    _diagnostics(root, ns, version, diagnostics)
    return root


def diagnostic_response(
    version: Version,
    operation: str,
    diagnostic: Diagnostic,
    explain_record: etree._Element | None = None,
) -> etree._Element:
    """The response to a refused request: the operation's response element with the one
    diagnostic (searchRetrieve's for an unknown operation). An explainResponse must hold a
    record, so a refused explain still carries the explain record."""
    if operation == "scan":
        return scan_response(version, (), (diagnostic,))
    if operation == "explain" and explain_record is not None:
        return explain_response(version, explain_record, diagnostics=(diagnostic,))
    return search_retrieve_response(version, total=0, diagnostics=(diagnostic,))


def serialize(root: etree._Element, stylesheet: str | None = None) -> bytes:
    """UTF-8 with an XML declaration; `stylesheet` becomes an xml-stylesheet instruction."""
    if stylesheet:
        root.addprevious(
            etree.ProcessingInstruction("xml-stylesheet", f'type="text/xsl" href="{stylesheet}"')
        )
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
