"""A partner's searchRetrieveResponse (SRU 1.1, 1.2, 2.0) → hits, records and diagnostics.

Read by local names, so the 1.x (ZING SRW) and 2.0 (OASIS) namespaces, and servers that get
them slightly wrong, read alike. The parser resolves no entities, loads no DTD and touches no
network; a response with a DOCTYPE is refused outright (SRU never needs one, and it is where
entity expansion attacks live). Records are kept as the XML bytes of their recordData (a
record sent as an escaped string is unescaped first); decoding MARC is `marc/`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

DIAGNOSTICS_SCHEMA = "info:srw/schema/1/diagnostics-v1.1"  # a surrogate diagnostic's schema
MAX_RESPONSE_BYTES = 32 << 20


class SruResponseError(ValueError):
    """Bytes that are not a searchRetrieveResponse we can read."""


@dataclass(frozen=True)
class SruDiagnostic:
    """`uri` as sent (info:srw/diagnostic/1/16 …), `number` its trailing number when it has
    one, `details` and `message` as the server wrote them."""

    uri: str
    details: str = ""
    message: str = ""

    @property
    def number(self) -> int | None:
        tail = self.uri.rsplit("/", 1)[-1]
        return int(tail) if tail.isdigit() else None


@dataclass(frozen=True)
class SruRecord:
    schema: str  # recordSchema as the server named it
    data: bytes  # the record's XML, UTF-8
    position: int | None = None


@dataclass(frozen=True)
class SruAnswer:
    version: str
    hits: int | None  # numberOfRecords: absent when the search failed
    records: tuple[SruRecord | SruDiagnostic, ...]
    diagnostics: tuple[SruDiagnostic, ...]
    next_position: int | None = None


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _child(element: etree._Element, name: str) -> etree._Element | None:
    return next((c for c in element if _local(c) == name), None)


def _text(element: etree._Element, name: str) -> str:
    found = _child(element, name)
    return (found.text or "").strip() if found is not None else ""


def _number(element: etree._Element, name: str) -> int | None:
    text = _text(element, name)
    return int(text) if text.isdigit() else None


def _diagnostic(element: etree._Element) -> SruDiagnostic:
    return SruDiagnostic(
        _text(element, "uri"), _text(element, "details"), _text(element, "message")
    )


def _record(element: etree._Element) -> SruRecord | SruDiagnostic:
    schema = _text(element, "recordSchema")
    data = _child(element, "recordData")
    if data is None:
        raise SruResponseError("a record without recordData")
    content = next((c for c in data if isinstance(c.tag, str)), None)
    if content is None:  # recordPacking string / recordXMLEscaping string: escaped XML text
        text = (data.text or "").strip()
        if schema == DIAGNOSTICS_SCHEMA:
            try:
                content = etree.fromstring(text.encode("utf-8"), _parser())
            except etree.XMLSyntaxError as error:
                raise SruResponseError(f"a record that is not XML: {error}") from None
        else:
            return SruRecord(schema, text.encode("utf-8"), _number(element, "recordPosition"))
    if schema == DIAGNOSTICS_SCHEMA or _local(content) == "diagnostic":
        return _diagnostic(content)
    xml = etree.tostring(content, encoding="utf-8")
    return SruRecord(schema, xml, _number(element, "recordPosition"))


def parse_search_retrieve(body: bytes) -> SruAnswer:
    """A searchRetrieveResponse body → what it says. Raises SruResponseError."""
    if len(body) > MAX_RESPONSE_BYTES:
        raise SruResponseError(f"a response of more than {MAX_RESPONSE_BYTES} bytes")
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as error:
        raise SruResponseError(f"not XML: {error}") from None
    if root.getroottree().docinfo.doctype:
        raise SruResponseError("a response with a DOCTYPE")
    if _local(root) != "searchRetrieveResponse":
        if _local(root) == "diagnostics":  # some servers answer a bad request with just these
            alone = tuple(_diagnostic(d) for d in root if _local(d) == "diagnostic")
            return SruAnswer("", None, (), alone)
        raise SruResponseError(f"a {_local(root)!r} element, not searchRetrieveResponse")
    records_element = _child(root, "records")
    records: tuple[SruRecord | SruDiagnostic, ...] = ()
    if records_element is not None:
        records = tuple(_record(r) for r in records_element if _local(r) == "record")
    diagnostics_element = _child(root, "diagnostics")
    diagnostics: tuple[SruDiagnostic, ...] = ()
    if diagnostics_element is not None:
        diagnostics = tuple(
            _diagnostic(d) for d in diagnostics_element if _local(d) == "diagnostic"
        )
    return SruAnswer(
        version=_text(root, "version") or "2.0",  # 2.0 responses may omit it
        hits=_number(root, "numberOfRecords"),
        records=records,
        diagnostics=diagnostics,
        next_position=_number(root, "nextRecordPosition"),
    )


__all__ = ["SruAnswer", "SruDiagnostic", "SruRecord", "SruResponseError", "parse_search_retrieve"]
