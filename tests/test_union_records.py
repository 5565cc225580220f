"""Records as partner catalogues send them, read into the display model through marc/: real
CNMARC in UTF-8 and GBK (BNU), CNMARC XML from a real SRU server (dp2), MARC-8 CJK MARC 21,
and what a broken record gives (a reason, never a crash)."""

from __future__ import annotations

import io

import pytest
from lxml import etree

from marc.errors import RecordRejected
from marc.identifiers import normalise_isbn
from marc.iso2709 import frame_records
from tests.conftest import FIXTURES
from union.records import read_iso2709, read_xml

REAL = FIXTURES / "marc" / "real"


def chunks(path) -> list[bytes]:
    return [c.data for c in frame_records(io.BytesIO(path.read_bytes()))]


def test_gbk_and_utf8_cnmarc_read_alike() -> None:
    utf8 = [read_iso2709(d, "unimarc").bib for d in chunks(REAL / "cnmarc/bnu_cnmarc_10_utf8.iso")]
    gbk = [
        read_iso2709(d, "unimarc", "gbk").bib for d in chunks(REAL / "cnmarc/bnu_cnmarc_10_gbk.iso")
    ]
    assert len(utf8) == len(gbk) == 10
    assert [b.display_title for b in gbk] == [b.display_title for b in utf8]
    assert all(b.display_title for b in utf8)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in utf8[0].display_title)


def test_a_gbk_record_is_read_even_when_the_target_says_nothing() -> None:
    """A legacy target's GBK records decode by the record's own declaration and bytes."""
    data = chunks(REAL / "cnmarc/bnu_cnmarc_10_gbk.iso")[0]
    expected = read_iso2709(chunks(REAL / "cnmarc/bnu_cnmarc_10_utf8.iso")[0], "unimarc").bib
    assert read_iso2709(data, "unimarc").bib.display_title == expected.display_title


@pytest.mark.parametrize("name", ["dp2_bnu_sru_cnmarcxml.xml", "dp2_bnu_sru_unimarcxml.xml"])
def test_cnmarc_xml_from_a_real_sru_server(name: str) -> None:
    response = etree.parse(str(REAL / "cnmarc" / name))
    data = response.getroot().iterfind(".//{*}recordData")
    records = [read_xml(etree.tostring(next(iter(d)))) for d in data]
    assert len(records) >= 10
    first = records[0].bib
    assert first.format == "unimarc"
    assert first.isbns and first.display_title
    assert first.isbns[0] == normalise_isbn("7-5037-1744-0")


def test_marc8_cjk_marc21() -> None:
    data = chunks(REAL / "cjk/marccharset_cjk1.marc")[0]  # an LC record in MARC-8 EACC
    read = read_iso2709(data, "usmarc")
    assert read.bib.format == "marc21"
    assert "金田一" in read.bib.display_title and "アイヌ語" in read.bib.display_title


def test_broken_records_give_a_reason() -> None:
    with pytest.raises(RecordRejected):
        read_iso2709(b"00026nam  2200025   4500\x1e\x1d", "unimarc")
    with pytest.raises(RecordRejected):
        read_xml(b"<record><leader>x</leader>")
    with pytest.raises(RecordRejected):
        read_xml(b'<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><record>&e;</record>')
