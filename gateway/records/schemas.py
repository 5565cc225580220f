"""The record schemas we serve: one table that request validation, record building and explain
read. A request names a schema by short name, alias or identifier (URI), in any case.
"""

from __future__ import annotations

from dataclasses import dataclass

from marc.writer import MARCXCHANGE_NS, MARCXML_NS

DC_RECORD_NS = "info:srw/schema/1/dc-schema"  # the SRU Dublin Core record (srw_dc:dc)
DC_ELEMENTS_NS = "http://purl.org/dc/elements/1.1/"
HOLDINGS_NS = "info:srw/schema/libgate/holdings-v1"


@dataclass(frozen=True)
class RecordSchema:
    name: str  # what explain lists and responses echo
    identifier: str  # the schema URI
    title_zh: str
    title_en: str
    namespace: str  # of the record's root element ("" = none, as YAZ's OPAC XML)
    holdings: bool = False  # carries live availability from the circulation engine
    aliases: tuple[str, ...] = ()


SCHEMAS: dict[str, RecordSchema] = {
    schema.name: schema
    for schema in (
        RecordSchema(
            "marcxml",
            "info:srw/schema/1/marcxml-v1.1",
            "MARCXML 记录（MARC21 记录原样；CNMARC 记录以 MARCXML 结构传送）",
            "MARCXML (MARC 21 records as they are; CNMARC records in the MARCXML structure)",
            MARCXML_NS,
            aliases=("marc21", "marc21-xml", "marcxml-v1.1", MARCXML_NS),
        ),
        RecordSchema(
            "marcxchange",
            MARCXCHANGE_NS,
            "MarcXchange（ISO 25577，标明 UNIMARC/CNMARC 或 MARC21）",
            "MarcXchange (ISO 25577, labelled UNIMARC/CNMARC or MARC 21)",
            MARCXCHANGE_NS,
            aliases=("unimarc", "cnmarc", "unimarcxml", "marcxchange-v1"),
        ),
        RecordSchema(
            "dc",
            "info:srw/schema/1/dc-v1.1",
            "都柏林核心（简单 DC）",
            "Simple Dublin Core",
            DC_RECORD_NS,
            aliases=("dublincore", "dc-v1.1", DC_RECORD_NS),
        ),
        RecordSchema(
            "opacxml",
            "info:srw/schema/libgate/opacxml-v1",
            "OPAC XML（YAZ/Z39.50 OPAC 记录：书目记录与每册馆藏、流通状态）",
            "OPAC XML (YAZ's form of the Z39.50 OPAC record: bibliographic record, then each"
            " copy with its circulation status)",
            "",
            holdings=True,
            aliases=("opac",),
        ),
        RecordSchema(
            "holdings",
            HOLDINGS_NS,
            "馆藏与实时流通状态（馆藏地、索书号、状态、应还日期、预约架、预约队列）",
            "Holdings with live availability (location, call number, status, due date, hold"
            " shelf, hold queue)",
            HOLDINGS_NS,
            holdings=True,
            aliases=("availability", "libgate-holdings"),
        ),
    )
}

_LOOKUP: dict[str, RecordSchema] = {}
for _schema in SCHEMAS.values():
    for _key in (_schema.name, _schema.identifier, *_schema.aliases):
        _LOOKUP[_key.lower()] = _schema


def find_schema(text: str) -> RecordSchema | None:
    return _LOOKUP.get(text.strip().lower())


def natural_schema(record_format: str) -> RecordSchema:
    """The schema a record is sent in when none was asked for: MARCXML for MARC 21 records,
    marcxchange (labelled UNIMARC) for CNMARC ones."""
    return SCHEMAS["marcxchange" if record_format == "unimarc" else "marcxml"]
