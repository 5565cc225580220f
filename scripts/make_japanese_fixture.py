"""Write fixtures/marc/japanese/: the Japanese catalogue (日文书目) as CNMARC, from real MARC21.

No Japanese CNMARC file is public, so the fixture is made from the real Japanese MARC21 records
already in fixtures/marc/real: each source file is read with our own framing and decoding (so
MARC-8 EACC becomes Unicode), the Japanese records are selected (`is_japanese`: 008/35-37 jpn,
041 jpn, or kana in the title), converted with `marc.marc21_to_unimarc.convert`, and given
copies in libgate's 995 layout. The bibliographic data is the sources'; the copies are ours.

Outputs (see PROVENANCE.md there for what each record is and what was changed):
  japanese_cnmarc.iso           the catalogue, UTF-8 (100$a/26-29 `50  `)
  japanese_cnmarc_gb18030.iso   the same records in GB18030, declared `0120` as real GB exports
  japanese_increment_1.iso      two changed records and one new record
  japanese_increment_2.iso      a second load on top: one unchanged, two copies changed

Run from the project root: `python scripts/make_japanese_fixture.py`. Output is deterministic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from marc import charset
from marc.iso2709 import encode_record, frame_records, parse_structure
from marc.marc21_to_unimarc import convert, is_japanese
from marc.record import Field, MarcRecord
from marc.writer import canonical, to_iso2709

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "fixtures" / "marc" / "real"
OUT = ROOT / "fixtures" / "marc" / "japanese"
SOURCES = (
    REAL / "cjk" / "yaz_marccol1.u8.marc",
    REAL / "cjk" / "marccharset_cjk1.marc",
    REAL / "cjk" / "marccharset_cjk2.marc",
    REAL / "cjk" / "marc4j_pride-and-prejudice-fixed.mrc",
    REAL / "large" / "mrrc-testbed_loc_bib_sample.mrc",
    REAL / "cjk" / "jpmarc_test_synthetic_ndl.mrc",
)
SYNTHETIC_SOURCE = "jpmarc_test_synthetic_ndl.mrc"
SYNTHETIC_NOTE = (
    "合成测试记录，非真实出版物 (synthetic test record from zuki/jpmarc test/data/test.mrc;"
    " not a real publication)"
)
# The date the conversion stands for: 100$a/0-7 of records with no 008 or 005, and the 005
# of records changed by the increments.
CONVERSION_DATE = date(2026, 11, 25)
INCREMENT_1_STAMP = "20261125120000.0"
INCREMENT_2_STAMP = "20261126090000.0"
# The source record with no 001 gets one, so that reloading it matches it.
ASSIGNED_CONTROL_NUMBERS = {("marc4j_pride-and-prejudice-fixed.mrc", 304): "marc4j-pp-304"}
# Kept out of the catalogue file: it is increment 1's new record.
HELD_BACK = ("mrrc-testbed_loc_bib_sample.mrc", 218)

LIBRARY = "上海图书馆"
STACKS = "日文书库"
REFERENCE_ROOM = "日文参考阅览室"
LENDING = "普通外借资料"
REFERENCE_LENDING = "参考外借资料"
ON_SHELF = "归还"
ON_LOAN = "借出"
BARCODE_PREFIX = "5413"

# Record 304's 245 $c holds EACC bytes that its source never decoded; see PROVENANCE.md.
UNDECODED_AUTHOR = "オ!$+i%9i%Fi%#i%s"
REPAIRED_AUTHOR = "オースティン"


@dataclasses.dataclass
class Converted:
    source: str  # file name
    number: int  # 1-based record number in the file
    marc21: MarcRecord
    record: MarcRecord  # CNMARC, copies included

    @property
    def control_number(self) -> str:
        return self.record.control("001") or ""

    @property
    def title(self) -> str:
        return self.record.subfield("200", "a") or ""


def read_marc21(path: Path) -> Iterator[tuple[int, MarcRecord]]:
    """Records of a MARC21 file decoded as the loader decodes them (MARC-8 EACC included)."""
    with path.open("rb") as handle:
        for chunk in frame_records(handle):
            raw = parse_structure(chunk)
            record, _damage = charset.decode_record(raw, charset.decide(raw, is_unimarc=False))
            yield chunk.number, record


def japanese_records() -> list[tuple[str, int, MarcRecord]]:
    """Japanese records of the sources in file order; a repeated 001 is kept once."""
    found = []
    seen: set[str] = set()
    for path in SOURCES:
        for number, record in read_marc21(path):
            if not is_japanese(record):
                continue
            control = (record.control("001") or "").strip()
            if control and control in seen:
                continue  # marc4j's file holds OCLC 29907139 twice (records 305 and 306)
            seen.add(control)
            found.append((path.name, number, record))
    return found


def call_number(marc21: MarcRecord, sequence: int) -> str:
    """The source's LC call number (050/090), else its NDC class (084), else a running one."""
    for tag in ("050", "090"):
        field = marc21.first(tag)
        if field is not None and field.get("a"):
            return " ".join(v.strip() for c, v in field.subfields if c in "ab" and v.strip())
    classed = marc21.subfield("084", "a")
    return classed.strip() if classed else f"J/{sequence}"


def is_reference(record: MarcRecord) -> bool:
    """Serials and multi-part sets are lent as reference material (参考外借资料)."""
    coded = record.subfield("100", "a") or ""
    return record.leader[7:8] == "s" or coded[8:9] == "g"


def copy(barcode: str, location: str, call: str, item_type: str, status: str = ON_SHELF) -> Field:
    subfields = [
        ("b", LIBRARY),
        ("e", location),
        ("k", call),
        ("r", item_type),
        ("s", status),
        ("f", barcode),
    ]
    return Field("995", "  ", subfields)


class Barcodes:
    """5413 + ten digits, numbered in the order copies are made: deterministic."""

    def __init__(self) -> None:
        self.issued = 0

    def next(self) -> str:
        self.issued += 1
        return f"{BARCODE_PREFIX}{self.issued:010d}"


def with_fields(record: MarcRecord, fields: list[Field], leader: str | None = None) -> MarcRecord:
    """A new record with these fields in tag order (MarcRecord caches its tag index, so records
    are rebuilt rather than edited in place)."""
    ordered = sorted(fields, key=lambda f: f.tag)
    return MarcRecord(leader or record.leader, ordered)


def with_copies(
    record: MarcRecord, marc21: MarcRecord, sequence: int, codes: Barcodes
) -> MarcRecord:
    """One copy in the stacks (or the reference room for serials and sets); books with an ISBN
    get a second, reference copy, so multi-copy records are exercised."""
    call = call_number(marc21, sequence)
    if is_reference(record):
        copies = [copy(codes.next(), REFERENCE_ROOM, call, REFERENCE_LENDING)]
    else:
        copies = [copy(codes.next(), STACKS, call, LENDING)]
    if record.subfield("010", "a"):
        copies.append(copy(codes.next(), REFERENCE_ROOM, call, REFERENCE_LENDING))
    return with_fields(record, record.fields + copies)


def converted(
    source: str, number: int, marc21: MarcRecord, sequence: int, codes: Barcodes
) -> Converted:
    record = convert(marc21, CONVERSION_DATE)
    fields = list(record.fields)
    assigned = ASSIGNED_CONTROL_NUMBERS.get((source, number))
    if assigned:
        assert record.control("001") is None
        fields.append(Field("001", value=assigned))
    if source == SYNTHETIC_SOURCE:
        fields.append(Field("300", "  ", [("a", SYNTHETIC_NOTE)]))
    record = with_copies(with_fields(record, fields), marc21, sequence, codes)
    return Converted(source, number, marc21, record)


def changed(record: MarcRecord, stamp: str, fields: list[Field]) -> MarcRecord:
    """The record with new fields, marked as corrected (leader/05 c) and stamped in 005."""
    kept = [f for f in fields if f.tag != "005"] + [Field("005", value=stamp)]
    return with_fields(record, kept, record.leader[:5] + "c" + record.leader[6:])


def repaired_author(record: MarcRecord) -> MarcRecord:
    """Increment 1, change 1: the undecoded EACC in 200 $f replaced by the author's name."""
    fields = []
    for field in record.fields:
        if field.tag == "200":
            assert UNDECODED_AUTHOR in (field.get("f") or ""), "the source changed"
            repaired = [
                (c, v.replace(UNDECODED_AUTHOR, REPAIRED_AUTHOR) if c == "f" else v)
                for c, v in field.subfields
            ]
            field = Field("200", field.indicators, repaired)
        fields.append(field)
    return changed(record, INCREMENT_1_STAMP, fields)


def with_new_copy(record: MarcRecord, codes: Barcodes) -> MarcRecord:
    """Increment 1, change 2: the library adds a copy (a new 995) under the same call number."""
    call = record.subfield("995", "k") or ""
    new_copy = copy(codes.next(), STACKS, call, LENDING)
    return changed(record, INCREMENT_1_STAMP, [*record.fields, new_copy])


def with_copy_status(record: MarcRecord, barcode: str, status: str) -> MarcRecord:
    """Increment 2: one copy's status changes (the export carries circulation status)."""
    fields = []
    for field in record.fields:
        if field.tag == "995" and field.get("f") == barcode:
            subfields = [(c, status if c == "s" else v) for c, v in field.subfields]
            field = Field("995", field.indicators, subfields)
        fields.append(field)
    return changed(record, INCREMENT_2_STAMP, fields)


def without_copy(record: MarcRecord, barcode: str) -> MarcRecord:
    """Increment 2: one copy is withdrawn (its 995 is gone)."""
    fields = [f for f in record.fields if not (f.tag == "995" and f.get("f") == barcode)]
    return changed(record, INCREMENT_2_STAMP, fields)


def utf8_iso(records: list[MarcRecord]) -> bytes:
    return b"".join(to_iso2709(canonical(r, "unimarc"), "unimarc") for r in records)


def gb18030_iso(records: list[MarcRecord]) -> bytes:
    """The records as a GB18030 CNMARC export carries them: 100$a/26-29 `0120`."""
    data = bytearray()
    for record in records:
        stored = canonical(record, "unimarc")
        fields = []
        for field in stored.fields:
            if field.value is not None:
                fields.append((field.tag, field.value.encode("gb18030")))
                continue
            subfields = field.subfields
            if field.tag == "100":
                subfields = [(c, v[:26] + "0120" + v[30:] if c == "a" else v) for c, v in subfields]
            content = field.indicators + "".join(f"\x1f{c}{v}" for c, v in subfields)
            fields.append((field.tag, content.encode("gb18030")))
        leader = stored.leader[:10] + "22" + stored.leader[12:]
        data += encode_record(leader, fields, "450 ")
    return bytes(data)


def not_encodable(records: list[MarcRecord], encoding: str) -> list[str]:
    """Characters of the records' text that `encoding` cannot carry."""
    missing: set[str] = set()
    for record in records:
        for field in canonical(record, "unimarc").fields:  # NFC, as the files carry it
            texts = [field.value] if field.value is not None else [v for _, v in field.subfields]
            for text in texts:
                for ch in text:
                    try:
                        ch.encode(encoding)
                    except UnicodeEncodeError:
                        missing.add(ch)
    return sorted(missing)


@dataclasses.dataclass
class Fixture:
    catalogue: list[Converted]  # the catalogue file's records, in file order
    new_record: Converted  # increment 1's new record
    increment_1: list[MarcRecord]
    increment_2: list[MarcRecord]

    def files(self) -> dict[str, bytes]:
        records = [c.record for c in self.catalogue]
        return {
            "japanese_cnmarc.iso": utf8_iso(records),
            "japanese_cnmarc_gb18030.iso": gb18030_iso(records),
            "japanese_increment_1.iso": utf8_iso(self.increment_1),
            "japanese_increment_2.iso": utf8_iso(self.increment_2),
        }


def build() -> Fixture:
    codes = Barcodes()
    catalogue: list[Converted] = []
    held_back: tuple[str, int, MarcRecord, int] | None = None
    for sequence, (source, number, marc21) in enumerate(japanese_records(), start=1):
        if (source, number) == HELD_BACK:
            held_back = (source, number, marc21, sequence)
            continue
        catalogue.append(converted(source, number, marc21, sequence, codes))
    assert held_back is not None, f"{HELD_BACK} is no longer a Japanese record"
    new_record = converted(*held_back, codes)

    by_id = {c.control_number: c for c in catalogue}
    handa = by_id["70813420 /AJ/r86"].record
    increment_1 = [
        repaired_author(by_id["marc4j-pp-304"].record),
        with_new_copy(handa, codes),
        new_record.record,
    ]
    handa_new_copy = increment_1[1].get_fields("995")[-1].get("f") or ""
    kindaichi = by_id["MIUO02-B3220"].record
    kindaichi_second_copy = kindaichi.get_fields("995")[-1].get("f") or ""
    increment_2 = [
        new_record.record,  # exactly as increment 1 wrote it: reloads as unchanged
        with_copy_status(increment_1[1], handa_new_copy, ON_LOAN),
        without_copy(kindaichi, kindaichi_second_copy),
    ]
    return Fixture(catalogue, new_record, increment_1, increment_2)


def main() -> None:
    fixture = build()
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in fixture.files().items():
        (OUT / name).write_bytes(data)
    for item in [*fixture.catalogue, fixture.new_record]:
        barcodes = ", ".join(f.get("f") or "" for f in item.record.get_fields("995"))
        print(f"{item.source} #{item.number}\t{item.control_number}\t{item.title}\t{barcodes}")
    everything = [c.record for c in fixture.catalogue] + fixture.increment_1
    for encoding in ("gbk", "gb2312"):
        missing = " ".join(f"{ch} U+{ord(ch):04X}" for ch in not_encodable(everything, encoding))
        print(f"not in {encoding}: {missing}")


if __name__ == "__main__":
    main()
