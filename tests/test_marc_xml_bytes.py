"""MARCXML and marcxchange written directly as bytes (`marc.writer.record_xml`) are what lxml
writes for `record_element`, byte for byte: the demo catalogue, the generated catalogue's
kind of records, real CJK records from other systems, and awkward values."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from marc.errors import RecordRejected
from marc.export import stored_record, stored_record_xml
from marc.iso2709 import frame_records
from marc.record import Field, MarcRecord
from marc.writer import (
    MARCXCHANGE_NS,
    MARCXML_NS,
    canonical,
    record_element,
    record_xml,
    to_iso2709,
)
from tests.conftest import FIXTURES, REAL
from tests.support import cnmarc, iso

NAMESPACES = (MARCXML_NS, MARCXCHANGE_NS)


def lxml_bytes(record: MarcRecord, fmt: str, namespace: str) -> bytes:
    return etree.tostring(record_element(record, fmt, namespace), encoding="UTF-8")


def stored(path: str, fmt: str) -> list[MarcRecord]:
    """Each record of a file as libgate stores it (canonical UTF-8), then read back."""
    from marc import charset
    from marc.iso2709 import parse_structure

    found = []
    data = (FIXTURES / path).read_bytes()
    for chunk in frame_records(io.BytesIO(data)):
        try:
            raw = parse_structure(chunk)
            decision = charset.decide(raw, charset.looks_unimarc(raw))
            record, _ = charset.decode_record(raw, decision)
        except Exception:  # noqa: BLE001 - records the loader would reject are not stored
            continue
        found.append(stored_record(to_iso2709(canonical(record, fmt), fmt)))
    return found


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_demo_catalogue(namespace: str) -> None:
    records = stored("marc/demo_main.iso", "unimarc")
    assert records
    for record in records:
        assert record_xml(record, "unimarc", namespace) == lxml_bytes(record, "unimarc", namespace)


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("path", sorted(p.name for p in (REAL / "cjk").iterdir()))
def test_real_records(namespace: str, path: str) -> None:
    for record in stored(str(REAL / "cjk" / path), "marc21"):  # FIXTURES / absolute = absolute
        assert record_xml(record, "marc21", namespace) == lxml_bytes(record, "marc21", namespace)


AWKWARD = "a & b < c > d \"e\" 'f' \r g \t h \n i \x1e\x1f\x01 猫 \ufffd ]]>"


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_awkward_values(namespace: str) -> None:
    record = MarcRecord(
        leader="00000nam0 22000003  450 ",
        fields=[
            Field("001", value=AWKWARD),
            Field("200", "1 ", [("a", AWKWARD), ("&", "x"), ("<", ""), ("\x01", "y")]),
            Field("300", "", []),
            Field("9&<", '">', [("b", "")]),
            Field("010", "", [("a", "\r\n\t")]),
        ],
    )
    for fmt in ("unimarc", "marc21"):
        assert record_xml(record, fmt, namespace) == lxml_bytes(record, fmt, namespace)


def test_what_lxml_refuses_is_refused() -> None:
    record = MarcRecord(leader=" " * 24, fields=[Field("2\x010", "  ", [("a", "x")])])
    with pytest.raises(ValueError):
        lxml_bytes(record, "unimarc", MARCXML_NS)
    with pytest.raises(ValueError):
        record_xml(record, "unimarc", MARCXML_NS)


text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text('0123456789&<"', min_size=3, max_size=3),
            st.text(' 01&"<', max_size=3),
            st.lists(st.tuples(st.text("abc&<\r", min_size=1, max_size=1), text), max_size=3),
            st.one_of(st.none(), text),
        ),
        max_size=5,
    ),
    st.sampled_from(NAMESPACES),
)
def test_any_record(
    fields: list[tuple[str, str, list[tuple[str, str]], str | None]], namespace: str
) -> None:
    record = MarcRecord(
        leader="00000nam  2200000   4500",
        fields=[
            Field(tag, value=value) if value is not None else Field(tag, indicators, subfields)
            for tag, indicators, subfields, value in fields
        ],
    )
    try:
        expected = lxml_bytes(record, "marc21", namespace)
    except ValueError:
        with pytest.raises(ValueError):
            record_xml(record, "marc21", namespace)
        return
    assert record_xml(record, "marc21", namespace) == expected


def stored_bytes(path: str, fmt: str) -> list[bytes]:
    return [to_iso2709(record, fmt) for record in stored(path, fmt)]


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_straight_from_the_stored_record(namespace: str) -> None:
    """`stored_record_xml` writes what `record_xml(stored_record(…))` writes, for the demo
    catalogue, real records, awkward values and CNMARC as the generator makes it."""
    cases = [(m, "unimarc") for m in stored_bytes("marc/demo_main.iso", "unimarc")]
    for path in sorted((REAL / "cjk").iterdir()):
        cases += [(m, "marc21") for m in stored_bytes(str(path), "marc21")]
    awkward = MarcRecord(
        leader="00000nam0 22000003  450 ",
        fields=[
            Field("001", value=AWKWARD),
            Field("200", "1 ", [("a", AWKWARD), ("&", "x"), ("<", "")]),
            Field("300", "", []),
            Field("010", "", [("a", "\r\n\t")]),
        ],
    )
    cases.append((to_iso2709(canonical(awkward, "unimarc"), "unimarc"), "unimarc"))
    cases.append(
        (iso(cnmarc("R1", "猫的历史 & <dogs>", isbn="9787101003048", summary=AWKWARD)), "unimarc")
    )
    assert len(cases) > 400
    for marc, fmt in cases:
        assert stored_record_xml(marc, fmt, namespace) == record_xml(
            stored_record(marc), fmt, namespace
        )


def test_a_record_stored_record_refuses_is_refused() -> None:
    broken = bytearray(iso(cnmarc("R1", "x")))
    broken[broken.index(b"\x1fa") + 1] = 0x01  # a subfield code no record may have
    with pytest.raises(RecordRejected):
        stored_record(bytes(broken))
    with pytest.raises(RecordRejected):
        stored_record_xml(bytes(broken), "unimarc", MARCXML_NS)
