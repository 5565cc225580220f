"""MARCXML / marcxchange / CNMARC-XML input (e.g. records saved from an SRU response).

pymarc reads the XML (non-strict, so the namespaced CNMARC XML that dp2 and NLC use works);
each <record> becomes our `MarcRecord`. A file that is not well-formed XML is one reject.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pymarc
from lxml import etree

from marc.errors import RecordRejected
from marc.record import Field, MarcRecord


def looks_like_xml(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def _from_pymarc(record: pymarc.Record) -> MarcRecord:
    fields = []
    for f in record.fields:
        if f.is_control_field():
            fields.append(Field(tag=f.tag, value=f.data or ""))
        else:
            indicators = "".join(i if i else " " for i in (f.indicator1, f.indicator2))
            fields.append(
                Field(
                    tag=f.tag,
                    indicators=indicators,
                    subfields=[(s.code, s.value or "") for s in f.subfields],
                )
            )
    return MarcRecord(leader=str(record.leader), fields=fields)


# pymarc's reader is untyped; this is the type it has. Its SAX handler keeps whatever record
# it holds at a closing </record>, so an element it could not build arrives as None.
_parse_xml_to_array: Callable[..., list[pymarc.Record | None]] = pymarc.parse_xml_to_array


def read_xml_records(path: Path) -> Iterator[MarcRecord | RecordRejected]:
    try:
        records = _parse_xml_to_array(str(path), strict=False)
    except Exception as error:  # lxml/SAX errors of every kind: the file is not usable XML
        yield RecordRejected(f"not well-formed MARC XML: {error}")
        return
    for record in records:
        if record is None:
            yield RecordRejected("unreadable <record> element")
            continue
        yield _from_pymarc(record)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def record_from_element(element: etree._Element) -> MarcRecord:
    """A MARCXML or MARCXchange `<record>` element (any namespace: the two share their
    structure) as a record; a record without a leader or fields is rejected."""
    leader = ""
    fields: list[Field] = []
    for child in element:
        name = _local(child.tag)
        if name == "leader":
            leader = child.text or ""
        elif name == "controlfield":
            fields.append(Field(tag=child.get("tag", ""), value=child.text or ""))
        elif name == "datafield":
            indicators = (child.get("ind1", " ") or " ")[:1] + (child.get("ind2", " ") or " ")[:1]
            subfields = [
                (sub.get("code", ""), sub.text or "")
                for sub in child
                if _local(sub.tag) == "subfield"
            ]
            fields.append(
                Field(tag=child.get("tag", ""), indicators=indicators, subfields=subfields)
            )
    if not fields:
        raise RecordRejected("an XML record with no fields")
    return MarcRecord(leader=leader.ljust(24)[:24], fields=fields)
