"""CNMARC / UNIMARC fields → `BibRecord`. The one place this mapping lives.

pymarc's `Record.title` and friends read MARC21 tags, so this map is ours. Uppercase pinyin
subfields ($A $E $F, as Aleph/CALIS add) and dp2's $9 are kept as pinyin, not as text.
"""

from __future__ import annotations

from marc.bibliographic import BibRecord, Name
from marc.errors import RecordRejected
from marc.identifiers import normalise_isbn, normalise_isrc, normalise_issn
from marc.record import Field, MarcRecord
from marc.text import clean, first_year, unique

NOTE_TAGS = {f"3{n:02d}" for n in range(100)} - {"330"}
SUBJECT_TAGS = ("600", "601", "602", "604", "605", "606", "607", "608", "610")
NAME_TAGS = {
    "700": ("person", "primary"),
    "701": ("person", "alternative"),
    "702": ("person", "secondary"),
    "710": ("corporate", "primary"),
    "711": ("corporate", "alternative"),
    "712": ("corporate", "secondary"),
}
SUBJECT_SUBDIVISIONS = "jxyz"


def embedded_fields(field: Field) -> list[Field]:
    """UNIMARC 4XX linking fields carry whole fields after `$1` (`$12001 $aTitle`)."""
    embedded: list[Field] = []
    current: Field | None = None
    for code, value in field.subfields:
        if code == "1":
            tag = value[:3]
            current = Field(tag=tag, indicators=value[3:5])
            if tag < "010" and tag.isdigit():
                current.value = value[3:]
            embedded.append(current)
        elif current is not None:
            current.subfields.append((code, value))
    return embedded


def _name(field: Field) -> Name | None:
    kind, responsibility = NAME_TAGS[field.tag]
    entry = clean(field.get("a")).rstrip(",").strip()
    if not entry:
        return None
    rest = clean(field.get("b")).strip(", ")
    if kind == "person":
        text = f"{entry}, {rest}" if rest else entry
        dates = clean(field.get("f"))
        if dates:
            text = f"{text} ({dates})"
    else:
        text = " . ".join([entry] + [clean(v) for v in field.get_all("b") if clean(v)])
    pinyin = clean(field.get("A") or field.get("9"))
    return Name(
        name=text,
        role=clean(" ".join(field.get_all("4"))),
        kind="meeting" if kind == "corporate" and field.indicators[:1] == "1" else kind,
        responsibility=responsibility,
        pinyin=pinyin,
    )


def _subject(field: Field) -> str:
    head = clean(field.get("a"))
    if field.tag == "600" and field.get("b"):
        head = f"{head}, {clean(field.get('b'))}"
    subdivisions = [clean(v) for c, v in field.subfields if c in SUBJECT_SUBDIVISIONS]
    return " -- ".join([head, *[s for s in subdivisions if s]]) if head else ""


def map_unimarc(record: MarcRecord) -> BibRecord:
    title_field = record.first("200")
    title = clean(title_field.get("a")) if title_field else ""
    if not title:
        raise RecordRejected("no title: field 200 $a is missing or empty", "200")
    assert title_field is not None
    extra_titles = [clean(v) for v in title_field.get_all("a")[1:]]
    parts = [clean(v) for c, v in title_field.subfields if c in "hi" and clean(v)]
    other_titles = extra_titles + [clean(v) for c, v in title_field.subfields if c in "ed"]
    for tag in ("500", "510", "512", "513", "514", "515", "516", "517", "518", "532", "540"):
        other_titles += [clean(f.get("a")) for f in record.get_fields(tag)]
    pinyin = clean(title_field.get("A") or title_field.get("9"))
    responsibility = [clean(v) for c, v in title_field.subfields if c in "fg"]

    publication = record.first("210") or record.first("214")
    place = clean(publication.get("a")) if publication else ""
    publisher = clean(publication.get("c")) if publication else ""
    date = clean(publication.get("d")) if publication else ""
    coded = record.subfield("100", "a") or ""
    year = first_year(date, coded[9:13] if len(coded) >= 13 else None)

    physical = record.first("215")
    extent = physical.joined("acde", " ; ") if physical else ""

    series = [clean(f.get("a")) for f in record.get_fields("225")]
    for link in record.get_fields("410", "411", "461"):
        for embedded in embedded_fields(link):
            if embedded.tag == "200":
                series.append(clean(embedded.get("a")))
        if link.get("t"):
            series.append(clean(link.get("t")))

    notes = [clean(f.get("a")) for f in record.fields if f.tag in NOTE_TAGS and not f.is_control]
    summary = " ".join(clean(f.get("a")) for f in record.get_fields("330"))
    subjects = [_subject(f) for f in record.get_fields(*SUBJECT_TAGS)]
    names = [n for f in record.get_fields(*NAME_TAGS) if (n := _name(f)) is not None]

    isbns = [key for f in record.get_fields("010") if (key := normalise_isbn(f.get("a") or ""))]
    issns = [key for f in record.get_fields("011") if (key := normalise_issn(f.get("a") or ""))]
    isrcs = [key for f in record.get_fields("016") if (key := normalise_isrc(f.get("a") or ""))]
    languages = [clean(v).lower() for f in record.get_fields("101") for v in f.get_all("a")]
    return BibRecord(
        format="unimarc",
        control_number=clean(record.control("001")) or None,
        title=title,
        title_parts=tuple(parts),
        other_titles=unique(other_titles),
        title_pinyin=pinyin,
        responsibility=unique(responsibility),
        edition=clean(record.subfield("205", "a")),
        place=place,
        publisher=publisher,
        date=date,
        year=year,
        extent=extent,
        series=unique(series),
        notes=unique(notes),
        summary=summary.strip(),
        subjects=unique(subjects),
        clc=unique([clean(f.get("a")) for f in record.get_fields("690")]),
        names=tuple(names),
        isbns=unique(isbns),
        issns=unique(issns),
        isrcs=unique(isrcs),
        languages=unique(languages),
        source_agencies=unique([clean(f.get("b")) for f in record.get_fields("801")]),
    )
