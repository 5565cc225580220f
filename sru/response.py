"""SRU response documents: searchRetrieve, scan, explain and diagnostics, in the element order
and namespaces of each version (1.1/1.2: the SRW schema; 2.0: OASIS sruResponse.xsd and
scan.xsd). No I/O: elements in, bytes out.

Scan, explain and refusals are built with lxml. A searchRetrieve response is written as bytes
(`search_retrieve_document`): its records arrive already serialised (the record cache keeps
them so, `gateway.records.xml.RecordCache.text`), and building a tree only to serialise it
again cost more than the search. It writes what lxml writes for the same tree, byte for byte
(tests/test_sru_response_bytes.py holds the two side by side).
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
    data: etree._Element | bytes  # bytes: the record element serialised as UTF-8
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
    if isinstance(record.data, bytes):
        if escaping == "string":
            data.text = record.data.decode("utf-8")
        else:
            data.append(etree.fromstring(record.data))
    elif escaping == "string":
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


_DECLARATION = b"<?xml version='1.0' encoding='UTF-8'?>\n"
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


def _escaped(text: str) -> bytes:
    """Element text as lxml writes it."""
    return text.translate(_TEXT_ESCAPES).encode("utf-8")


def _escaped_bytes(data: bytes) -> bytes:
    """UTF-8 XML written as the text of an element (recordPacking string), as lxml does."""
    return (
        data.replace(b"&", b"&amp;")
        .replace(b"<", b"&lt;")
        .replace(b">", b"&gt;")
        .replace(b"\r", b"&#13;")
    )


def _record_bytes(record: ResponseRecord) -> bytes:
    if isinstance(record.data, bytes):
        return record.data
    return etree.tostring(record.data, encoding="UTF-8")


def search_retrieve_document(
    version: Version,
    *,
    total: int,
    records: Sequence[ResponseRecord] = (),
    escaping: str = "xml",
    result_set_id: str | None = None,
    result_set_ttl: int = 0,
    next_position: int | None = None,
    diagnostics: Sequence[Diagnostic] = (),
    stylesheet: str | None = None,
) -> bytes:
    """`serialize(search_retrieve_response(…), stylesheet)`, written directly as bytes."""
    ns = version.response_ns
    p = PREFIX.encode("ascii")

    def open_tag(name: bytes) -> bytes:
        return b"<" + p + b":" + name + b">"

    def close_tag(name: bytes) -> bytes:
        return b"</" + p + b":" + name + b">"

    def leaf(name: bytes, text: object) -> bytes:
        return open_tag(name) + _escaped(str(text)) + close_tag(name)

    out = [_DECLARATION]
    if stylesheet:
        instruction = etree.ProcessingInstruction(
            "xml-stylesheet", f'type="text/xsl" href="{stylesheet}"'
        )
        out.append(etree.tostring(instruction, encoding="UTF-8"))
    out.append(b"<" + p + b":searchRetrieveResponse xmlns:" + p + b'="')
    out.append(ns.replace("&", "&amp;").replace('"', "&quot;").encode("utf-8") + b'">')
    if not version.is_2:
        out.append(leaf(b"version", version.text))
    out.append(leaf(b"numberOfRecords", total))
    if result_set_id:
        out.append(leaf(b"resultSetId", result_set_id))
        if not version.is_2:
            out.append(leaf(b"resultSetIdleTime", result_set_ttl))
    if records:
        out.append(open_tag(b"records"))
        packing = b"recordXMLEscaping" if version.is_2 else b"recordPacking"
        for record in records:
            out.append(open_tag(b"record"))
            out.append(leaf(b"recordSchema", record.schema))
            out.append(leaf(packing, escaping))
            data = _record_bytes(record)
            if escaping == "string":
                out.append(
                    open_tag(b"recordData") + _escaped_bytes(data) + close_tag(b"recordData")
                )
            else:
                out.append(open_tag(b"recordData") + data + close_tag(b"recordData"))
            out.append(leaf(b"recordPosition", record.position))
            out.append(close_tag(b"record"))
        out.append(close_tag(b"records"))
    if next_position is not None:
        out.append(leaf(b"nextRecordPosition", next_position))
    if diagnostics:
        out.append(open_tag(b"diagnostics"))
        for diagnostic in diagnostics:
            out.append(etree.tostring(diagnostic_element(version, diagnostic), encoding="UTF-8"))
        out.append(close_tag(b"diagnostics"))
    if version.is_2 and result_set_id:
        out.append(leaf(b"resultSetTTL", result_set_ttl))
    out.append(close_tag(b"searchRetrieveResponse"))
    return b"".join(out)


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
