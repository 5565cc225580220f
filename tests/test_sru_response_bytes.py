"""The searchRetrieve response written as bytes (`search_retrieve_document`) is the document
lxml writes for the same tree (`serialize(search_retrieve_response(…))`), byte for byte, in
every version, both record packings, with surrogates, warnings, result sets and stylesheets;
and the record cache's serialised records are what the builders make."""

from __future__ import annotations

import itertools
import json

import pytest

from gateway.catalogue.repository import RetrievedRecord
from gateway.records import xml as records
from gateway.records.schemas import SCHEMAS
from sru.diagnostics import Diagnostic
from sru.response import (
    ResponseRecord,
    search_retrieve_document,
    search_retrieve_response,
    serialize,
    surrogate,
)
from sru.versions import SUPPORTED, Version
from tests.support import cnmarc, iso

# Text that escaping must get right: markup characters, a carriage return, quotes, CJK.
AWKWARD = 'Cats & dogs <of> "the" \r 猫的历史 ]]>'


def retrieved(pk: int, title: str) -> RetrievedRecord:
    marc = iso(cnmarc(f"R{pk}", title, isbn="9787101003048", summary=AWKWARD))
    bib = json.dumps({"format": "unimarc", "title": title, "year": 2001})
    return RetrievedRecord(pk, "main", f"R{pk}", "unimarc", marc, bib, f"digest-{pk}")


def page(version: Version) -> list[ResponseRecord]:
    cache = records.RecordCache(10)
    marcxml = SCHEMAS["marcxml"]
    return [
        ResponseRecord(marcxml.identifier, cache.text(marcxml, retrieved(1, AWKWARD), None), 1),
        surrogate(version, Diagnostic(65), 2),
        ResponseRecord(marcxml.identifier, cache.text(marcxml, retrieved(3, "猫"), None), 3),
        surrogate(version, Diagnostic(64, "R4 & <more>"), 4),
    ]


def as_elements(found: list[ResponseRecord]) -> list[ResponseRecord]:
    from lxml import etree

    return [
        ResponseRecord(
            r.schema, etree.fromstring(r.data) if isinstance(r.data, bytes) else r.data, r.position
        )
        for r in found
    ]


@pytest.mark.parametrize(
    ("version", "escaping", "result_set", "stylesheet", "warned"),
    list(
        itertools.product(
            SUPPORTED, ("xml", "string"), (None, "abc_-9"), (None, "/s.xsl?a=1&b=2"), (False, True)
        )
    ),
)
def test_bytes_are_what_lxml_writes(
    version: Version, escaping: str, result_set: str | None, stylesheet: str | None, warned: bool
) -> None:
    options = dict(
        total=1234,
        escaping=escaping,
        result_set_id=result_set,
        result_set_ttl=300,
        next_position=5,
        diagnostics=(Diagnostic(67, "sortKeys & <x>"),) if warned else (),
    )
    expected = serialize(
        search_retrieve_response(version, records=as_elements(page(version)), **options),  # type: ignore[arg-type]
        stylesheet,
    )
    written = search_retrieve_document(
        version,
        records=page(version),
        stylesheet=stylesheet,
        **options,  # type: ignore[arg-type]
    )
    assert written == expected


@pytest.mark.parametrize("version", SUPPORTED)
def test_no_records_no_next_position(version: Version) -> None:
    expected = serialize(search_retrieve_response(version, total=0))
    assert search_retrieve_document(version, total=0) == expected


@pytest.mark.parametrize("name", ["marcxml", "marcxchange", "dc", "opacxml", "holdings"])
def test_cached_text_is_the_built_record(name: str) -> None:
    from lxml import etree

    schema = SCHEMAS[name]
    cache = records.RecordCache(10)
    record = retrieved(7, AWKWARD)
    built = etree.tostring(records.build(schema, record, None), encoding="UTF-8")
    assert cache.text(schema, record, None) == built
    assert cache.text(schema, record, None) == built  # from the cache the second time
    assert etree.tostring(cache.build(schema, record, None), encoding="UTF-8") == built
