"""MARCXML / marcxchange / CNMARC-XML input (e.g. records saved from an SRU response).

Read as a stream with lxml (memory stays flat whatever the file's size). A `<record>` element
in any namespace is a record (so the namespaced CNMARC XML that dp2 and NLC use works), unless
it holds another `<record>`: an SRU response wraps each MARC record in one. Every record has
its number (its position among the file's MARC records) and the line where it starts, so a
reject names both. A file that stops being well-formed XML gives one reject at that line;
the records before it are read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from marc.errors import RecordRejected
from marc.record import Field, MarcRecord

TRAILING_POSITION = re.compile(r"(,? line \d+)*(, column \d+)?\.?$")


def looks_like_xml(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


@dataclass(frozen=True, slots=True)
class XmlRecord:
    """One MARC `<record>` of an XML file, read or rejected."""

    number: int  # its position among the file's MARC records, from 1
    line: int | None  # the line where its <record> starts (where the XML broke, for a reject)
    record: MarcRecord | RecordRejected


def read_xml_records(path: Path) -> Iterator[XmlRecord]:
    number = 0
    # One flag per open <record>: whether it holds another <record> (then it is a wrapper).
    holds_record: list[bool] = []
    events = etree.iterparse(
        str(path),
        events=("start", "end"),
        tag="{*}record",
        resolve_entities=False,
        no_network=True,
        huge_tree=True,
    )
    try:
        for event, element in events:
            if event == "start":
                if holds_record:
                    holds_record[-1] = True
                holds_record.append(False)
                continue
            if holds_record.pop():
                continue
            number += 1
            try:
                read: MarcRecord | RecordRejected = record_from_element(element)
            except RecordRejected as rejected:
                read = rejected
            yield XmlRecord(number, element.sourceline, read)
            _release(element)
    except etree.XMLSyntaxError as error:
        where = f"line {error.lineno}" if error.lineno else "the start"
        yield XmlRecord(
            number + 1,
            error.lineno or None,
            RecordRejected(
                f"the XML is not well-formed at {where} ({_plain_xml_error(error)}); "
                + (
                    f"records after record {number} were not read"
                    if number
                    else "no record was read"
                )
            ),
        )


def _plain_xml_error(error: etree.XMLSyntaxError) -> str:
    """libxml2's message without the positions it appends ("… line 1, line 1, column 29")."""
    message = str(error.msg or "").strip()
    return TRAILING_POSITION.sub("", message) or "unreadable"


def _release(element: etree._Element) -> None:
    """Forget a record already read (and the ones before it): memory stays flat."""
    element.clear()
    parent = element.getparent()
    while parent is not None and element.getprevious() is not None:
        del parent[0]


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
