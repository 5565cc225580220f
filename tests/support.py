"""Builders for test records (CNMARC with libgate's 995 copies)."""

from __future__ import annotations

from gateway.config import BUILTIN_PROFILES
from marc.holdings import HoldingsProfile
from marc.record import Field, MarcRecord
from marc.writer import canonical, to_iso2709

LIBGATE_PROFILE: HoldingsProfile = next(p for p in BUILTIN_PROFILES if p.name == "libgate")
BNU_PROFILE: HoldingsProfile = next(p for p in BUILTIN_PROFILES if p.name == "bnu")


def cnmarc(
    control: str,
    title: str,
    *,
    isbn: str = "",
    barcodes: tuple[str, ...] = (),
    summary: str = "",
    charset: str = "50  ",
    year: str = "2001",
    author: str = "某某",
    language: str = "",
    title_pinyin: str = "",
    author_pinyin: str = "",
    subjects: tuple[str, ...] = (),
) -> MarcRecord:
    coded = f"20240101d{year}    em y0chiy{charset}    ea"
    fields = [Field("001", value=control), Field("100", "  ", [("a", coded)])]
    if isbn:
        fields.append(Field("010", "  ", [("a", isbn)]))
    if language:
        fields.append(Field("101", "0 ", [("a", language)]))
    title_subfields = [("a", title), *([("A", title_pinyin)] if title_pinyin else [])]
    fields.append(Field("200", "1 ", [*title_subfields, ("f", f"{author}著")]))
    fields.append(Field("210", "  ", [("a", "上海"), ("c", "上海古籍出版社"), ("d", year)]))
    if summary:
        fields.append(Field("330", "  ", [("a", summary)]))
    for subject in subjects:
        fields.append(Field("606", "0 ", [("a", subject)]))
    name = [("a", author), *([("A", author_pinyin)] if author_pinyin else []), ("4", "著")]
    fields.append(Field("701", " 0", name))
    for barcode in barcodes:
        fields.append(
            Field(
                "995",
                "  ",
                [
                    ("b", "上海图书馆"),
                    ("e", "中文书库"),
                    ("k", "I247/1"),
                    ("r", "普通外借资料"),
                    ("s", "归还"),
                    ("f", barcode),
                ],
            )
        )
    return MarcRecord("00000nam0 2200000   450 ", fields)


def iso(*records: MarcRecord) -> bytes:
    return b"".join(to_iso2709(canonical(r, "unimarc"), "unimarc") for r in records)


def encoded_gb18030(record: MarcRecord) -> bytes:
    """The record as a GB18030 CNMARC file would carry it (100$a/26-29 = 0120)."""
    from marc.iso2709 import encode_record

    fields = []
    for f in record.fields:
        if f.value is not None:
            fields.append((f.tag, f.value.encode("gb18030")))
        else:
            text = f.indicators + "".join(f"\x1f{c}{v}" for c, v in f.subfields)
            fields.append((f.tag, text.encode("gb18030")))
    return encode_record(record.leader, fields, "450 ")
