"""A partner's copies as union search reads them, and I1 for each: OPAC records (Z39.50
OPACRecord, as libgate and YAZ-based targets send them) read into copies with their
circulation data, the real demo CNMARC record's 995 copies read by the libgate holdings
profile, the engine's decision for a partner copy (on the shelf and of a lendable type), and
the lender rota built from a merged work."""

from __future__ import annotations

import io

import pytest

from gateway.circulation.ill_partner_copies import PartnerCopy, offers_ill
from gateway.circulation.policy import Policy
from gateway.config import IllPartner, IllSettings, Settings, UnionSettings, UnionTarget
from gateway.z3950_codec import oids
from marc.errors import RecordRejected
from marc.iso2709 import frame_records
from marc.record import MarcRecord
from tests.conftest import FIXTURES
from union.holdings import marc_copies, read_opac, read_opacxml, with_item_types
from union.merge import MergedRecord, SourceRecord
from union.records import read_iso2709
from union.request import form_from, lender_rota
from z3950.codec import encode_value

POLICY = Policy.from_settings(Settings())
DEMO = [c.data for c in frame_records(io.BytesIO((FIXTURES / "marc/demo_main.iso").read_bytes()))]
MING = DEMO[1]  # 剑桥中国明代史 上卷: 54122100600011 参考外借资料 归还, …012 普通外借资料 借出


def opac_record(bibliographic: bytes, holdings: list[dict[str, object]]) -> bytes:
    return encode_value(
        "OPACRecord",
        {
            "bibliographicRecord": {
                "direct-reference": oids.UNIMARC,
                "encoding": ("octet-aligned", bibliographic),
            },
            "holdingsData": [("holdingsAndCirc", h) for h in holdings],
        },
    )


def circulation(item: str, available: bool, **more: bytes) -> dict[str, object]:
    return {
        "availableNow": available,
        "itemId": item.encode(),
        "renewable": False,
        "onHold": False,
        **more,
    }


def test_an_opac_record_gives_its_bibliographic_record_and_every_copy() -> None:
    data = opac_record(
        MING,
        [
            {
                "localLocation": "综合阅览室-1楼".encode(),
                "callNumber": b"K248.07/C178",
                "publicNote": "归还".encode(),
                "circulationData": [circulation("54122100600011", True)],
            },
            {
                "localLocation": "中文书库".encode(),
                "callNumber": b"K248.07/C178",
                "publicNote": "借出".encode(),
                "circulationData": [
                    circulation("54122100600012", False, availablityDate=b"2026-12-20")
                ],
            },
            {
                "localLocation": "工具书阅览室".encode(),
                "circulationData": [
                    circulation(
                        "54122100600099",
                        False,
                        restrictions="在馆阅览 / In library use only (阅览资料)".encode(),
                    )
                ],
            },
        ],
    )
    found = read_opac(data)
    assert found.read.bib.display_title.startswith("剑桥中国明代史")
    shelf, lent, reading_room = found.copies
    assert (shelf.location, shelf.call_number, shelf.item_id, shelf.available_now) == (
        "综合阅览室-1楼",
        "K248.07/C178",
        "54122100600011",
        True,
    )
    assert (lent.available_now, lent.due_date, lent.status) == (False, "2026-12-20", "借出")
    assert reading_room.restrictions.startswith("在馆阅览")
    # I1, the engine's decision: only the copy on the shelf without a restriction.
    assert offers_ill(shelf, POLICY) is None
    lent_why, room_why = offers_ill(lent, POLICY), offers_ill(reading_room, POLICY)
    assert lent_why is not None and (lent_why.rule, lent_why.code) == (
        "I1",
        "ill_partner_not_on_shelf",
    )
    assert room_why is not None and room_why.code == "ill_partner_restricted"


def test_a_legacy_targets_gbk_record_and_holdings_text_are_read() -> None:
    bnu = FIXTURES / "marc/real/cnmarc/bnu_cnmarc_10_gbk.iso"
    [gbk, *_] = [c.data for c in frame_records(io.BytesIO(bnu.read_bytes()))]
    data = opac_record(gbk, [{"localLocation": "古籍部".encode("gbk"), "circulationData": []}])
    found = read_opac(data, "gbk")
    assert found.read.bib.display_title == read_iso2709(gbk, "unimarc", "gbk").bib.display_title
    [copy] = found.copies
    assert copy.location == "古籍部" and copy.available_now is None


def test_what_is_not_an_opac_record_is_rejected() -> None:
    with pytest.raises(RecordRejected):
        read_opac(b"\x30\x03\x02\x01\x05")
    with pytest.raises(RecordRejected):
        read_opac(encode_value("OPACRecord", {"holdingsData": []}))


def test_marc_holdings_fields_by_profile_and_item_types_for_opac_copies() -> None:
    record = read_iso2709(MING, "unimarc").record
    copies = marc_copies(record, Settings().profile("libgate"))
    assert copies is not None
    assert [(c.item_id, c.item_type, c.status) for c in copies] == [
        ("54122100600011", "参考外借资料", "归还"),
        ("54122100600012", "普通外借资料", "借出"),
    ]
    assert [offers_ill(c, POLICY) is None for c in copies] == [True, False]
    # An OPAC copy (available now, no type) learns its type from the record's 995.
    typed = with_item_types((PartnerCopy(item_id="54122100600012", available_now=True),), copies)
    why = offers_ill(typed[0], POLICY)
    assert typed[0].item_type == "普通外借资料" and why is not None
    assert why.code == "ill_partner_type_not_lendable" and "参考外借资料" in why.zh
    assert "普通外借资料" in why.zh
    # Holdings fields that cannot be read (a barcode twice): what it holds is not known.
    twice = MarcRecord(record.leader, [*record.fields, record.get_fields("995")[0]])
    assert marc_copies(twice, Settings().profile("libgate")) is None


@pytest.mark.parametrize(
    ("copy", "offers"),
    [
        (PartnerCopy(available_now=True), True),
        (PartnerCopy(available_now=True, item_type="参考外借资料"), True),
        (PartnerCopy(available_now=True, item_type="某馆自定类型"), True),  # the lender decides
        (PartnerCopy(available_now=True, item_type="阅览资料"), False),
        (PartnerCopy(available_now=True, on_hold=True), False),
        (PartnerCopy(available_now=False, due_date="2026-12-20"), False),
        (PartnerCopy(status="归还"), True),
        (PartnerCopy(status="借出"), False),
        (PartnerCopy(), False),  # nothing said about the copy: not known to be on the shelf
        (PartnerCopy(available_now=True, restrictions="仅限馆内阅览"), False),
    ],
)
def test_i1_for_a_partner_copy(copy: PartnerCopy, offers: bool) -> None:
    assert (offers_ill(copy, POLICY) is None) is offers


SHL, PKU, NLC = "ISIL:CN-SHL", "ISIL:CN-PKU", "ISIL:CN-NLC"


def union_settings() -> Settings:
    targets = (
        UnionTarget("上海图书馆", "z3950:127.0.0.1:1/main", agency_id=SHL, syntax="opac"),
        UnionTarget("上海图书馆 SRU", "http://127.0.0.1:2/main", agency_id=SHL),
        UnionTarget("北京大学", "z3950:127.0.0.1:3/main", agency_id=PKU, syntax="opac"),
        UnionTarget("国家图书馆", "z3950:127.0.0.1:4/main", agency_id=NLC),
        UnionTarget("无编号馆", "z3950:127.0.0.1:5/main"),
    )
    partners = (IllPartner(SHL, "上海图书馆"), IllPartner(PKU, "北京大学"))
    return Settings(union=UnionSettings(targets), ill=IllSettings(partners=partners))


def work() -> MergedRecord:
    bib = read_iso2709(MING, "unimarc").bib
    on_shelf = (PartnerCopy(item_id="1", available_now=True),)
    lent = (PartnerCopy(item_id="2", available_now=False),)
    sources = [
        SourceRecord("北京大学", "a", 0, bib, lent, True),
        SourceRecord("上海图书馆", "b", 0, bib, on_shelf, True),
        SourceRecord("上海图书馆 SRU", "c", 0, bib),
        SourceRecord("国家图书馆", "d", 0, bib),
        SourceRecord("无编号馆", "e", 0, bib),
    ]
    return MergedRecord("k", bib, sources)


def test_the_rota_keeps_partners_with_a_lendable_copy_once_each() -> None:
    rota = lender_rota(work(), union_settings(), POLICY)
    assert [(x.target, x.agency_id, x.lendable_copies) for x in rota.lenders] == [
        ("上海图书馆", SHL, 1)
    ]
    why = {p.target: p.why for p in rota.passed}
    assert set(why) == {"北京大学", "国家图书馆", "无编号馆"}
    assert "no copy offers ILL" in why["北京大学"] and "not on the shelf" in why["北京大学"]
    assert "not an [ill] partner" in why["国家图书馆"]
    assert "agency_id" in why["无编号馆"]


def test_the_readers_order_and_a_library_without_holdings_shown() -> None:
    settings = union_settings()
    rota = lender_rota(work(), settings, POLICY, ["上海图书馆 SRU", "北京大学", "清华大学"])
    # The SRU target shows no holdings: asked (the lender decides I1 on its own copies).
    assert [(x.target, x.lendable_copies) for x in rota.lenders] == [("上海图书馆 SRU", None)]
    assert {p.target for p in rota.passed} == {"北京大学", "清华大学"}
    by_agency = lender_rota(work(), settings, POLICY, ["isil:CN-SHL"])
    assert by_agency.agency_ids == (SHL,)


def test_the_form_is_pre_filled_from_the_record() -> None:
    record = work()
    form = form_from(record, [SHL], recipient="张伟", email="zw@example.edu.cn")
    bib = record.bib
    assert form.title == bib.display_title and form.title.startswith("剑桥中国明代史")
    assert (form.author, form.publisher, form.lenders) == (bib.main_author, bib.publisher, (SHL,))
    assert form.year == str(bib.year) and form.isbn == (bib.isbns[0] if bib.isbns else "")
    assert form.recipient == "张伟"


OPACXML = """<opacRecord>
  <bibliographicRecord>
    <record xmlns="http://www.loc.gov/MARC21/slim">
      <leader>00000nam0 2200000   450 </leader>
      <controlfield tag="001">SHL000000002</controlfield>
      <datafield tag="200" ind1="1" ind2=" "><subfield code="a">剑桥中国明代史</subfield></datafield>
    </record>
  </bibliographicRecord>
  <holdings>
    <holding>
      <localLocation>综合阅览室-1楼</localLocation>
      <callNumber>K248.07/C178</callNumber>
      <publicNote>借出</publicNote>
      <circulations>
        <circulation>
          <availableNow value="0"/>
          <availabilityDate>2026-12-20</availabilityDate>
          <itemId>54122100600012</itemId>
          <renewable value="0"/>
          <onHold value="0"/>
        </circulation>
      </circulations>
    </holding>
    <holding>
      <localLocation>中文书库</localLocation>
      <circulations>
        <circulation><availableNow value="1"/><itemId>54122100600011</itemId></circulation>
      </circulations>
    </holding>
  </holdings>
</opacRecord>"""


def test_opac_xml_as_sru_sends_it() -> None:
    found = read_opacxml(OPACXML.encode())
    assert found.read.bib.display_title == "剑桥中国明代史"
    lent, shelf = found.copies
    assert (lent.item_id, lent.available_now, lent.due_date, lent.status) == (
        "54122100600012",
        False,
        "2026-12-20",
        "借出",
    )
    assert (shelf.location, shelf.available_now, offers_ill(shelf, POLICY)) == (
        "中文书库",
        True,
        None,
    )
    with pytest.raises(RecordRejected):
        read_opacxml(b"<record/>")
