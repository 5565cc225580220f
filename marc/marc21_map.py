"""MARC21 fields → `BibRecord`, for partners' MARC21 files. The one place this mapping lives.

Vernacular script lives in 880 fields linked by $6 (`245-01/$1`); for Chinese and Japanese
records the 880 form is what readers search and read, so it becomes the title and names, and
the romanised 245 is kept as another title.
"""

from __future__ import annotations

from marc.bibliographic import BibRecord, Name
from marc.errors import RecordRejected
from marc.identifiers import normalise_isbn, normalise_isrc, normalise_issn
from marc.record import Field, MarcRecord
from marc.text import clean, first_year, strip_isbd, unique

SUBJECT_TAGS = ("600", "610", "611", "630", "648", "650", "651", "655")
NAME_TAGS = {
    "100": ("person", "primary"),
    "110": ("corporate", "primary"),
    "111": ("meeting", "primary"),
    "700": ("person", "secondary"),
    "710": ("corporate", "secondary"),
    "711": ("meeting", "secondary"),
}
NOTE_TAGS = {f"5{n:02d}" for n in range(100)} - {"520"}


def linked_880(record: MarcRecord, tag: str) -> list[Field]:
    """880 fields holding the vernacular form of `tag`, retagged as `tag`."""
    found = []
    for field in record.get_fields("880"):
        link = field.get("6") or ""
        if link[:3] == tag:
            found.append(
                Field(
                    tag=tag,
                    indicators=field.indicators,
                    subfields=[(c, v) for c, v in field.subfields if c != "6"],
                )
            )
    return found


def _title(field: Field) -> tuple[str, list[str]]:
    main = strip_isbd(field.get("a") or "")
    parts = [strip_isbd(v) for c, v in field.subfields if c in "np"]
    return main, [p for p in parts if p]


def _name(field: Field, tag: str) -> Name | None:
    kind, responsibility = NAME_TAGS[tag]
    text = strip_isbd(field.joined("abcdq" if kind == "person" else "abcdn"))
    if not text:
        return None
    return Name(
        name=text,
        role=clean(" ".join(field.get_all("e") + field.get_all("4"))),
        kind=kind,
        responsibility=responsibility,
    )


def map_marc21(record: MarcRecord) -> BibRecord:
    title_field = record.first("245")
    romanised, parts = _title(title_field) if title_field else ("", [])
    vernacular_fields = linked_880(record, "245")
    vernacular, vernacular_parts = _title(vernacular_fields[0]) if vernacular_fields else ("", [])
    title = vernacular or romanised
    if not title:
        raise RecordRejected("no title: field 245 $a is missing or empty", "245")
    other = [romanised] if vernacular and romanised != vernacular else []
    for f in [title_field, *vernacular_fields]:
        if f is not None and f.get("b"):
            other.append(strip_isbd(f.get("b") or ""))
    for tag in ("130", "240", "246", "730", "740"):
        other += [
            strip_isbd(f.get("a") or "") for f in record.get_fields(tag) + linked_880(record, tag)
        ]
    responsibility = [
        strip_isbd(f.get("c") or "") for f in [*vernacular_fields, title_field] if f is not None
    ]

    publication_fields = linked_880(record, "260") + linked_880(record, "264")
    publication_fields += record.get_fields("260", "264")
    publication = publication_fields[0] if publication_fields else None
    fixed = record.control("008") or ""
    date = strip_isbd(publication.get("c") or "") if publication else ""
    year = first_year(fixed[7:11] if len(fixed) >= 11 and fixed[7:11].isdigit() else None, date)

    names = []
    for tag in NAME_TAGS:
        for f in linked_880(record, tag) + record.get_fields(tag):
            name = _name(f, tag)
            if name is not None:
                names.append(name)
    subjects = []
    for f in record.get_fields(*SUBJECT_TAGS):
        head = strip_isbd(f.joined("abcd"))
        subdivisions = [strip_isbd(v) for c, v in f.subfields if c in "vxyz"]
        if head:
            subjects.append(" -- ".join([head, *[s for s in subdivisions if s]]))
    series = [
        strip_isbd(f.get("a") or "")
        for f in record.get_fields("490", "440", "830") + linked_880(record, "490")
    ]
    languages = [fixed[35:38]] if len(fixed) >= 38 and fixed[35:38].strip() else []
    languages += [v for f in record.get_fields("041") for v in f.get_all("a")]
    physical = record.first("300")
    return BibRecord(
        format="marc21",
        control_number=clean(record.control("001")) or None,
        title=title,
        title_parts=tuple(vernacular_parts or parts),
        other_titles=unique(other),
        responsibility=unique(responsibility),
        edition=strip_isbd(record.subfield("250", "a") or ""),
        place=strip_isbd(publication.get("a") or "") if publication else "",
        publisher=strip_isbd(publication.get("b") or "") if publication else "",
        date=date,
        year=year,
        extent=strip_isbd(physical.joined("abc")) if physical else "",
        series=unique(series),
        notes=unique([clean(f.get("a")) for f in record.fields if f.tag in NOTE_TAGS]),
        summary=" ".join(clean(f.get("a")) for f in record.get_fields("520")).strip(),
        subjects=unique(subjects),
        clc=unique(
            [
                clean(f.get("a"))
                for f in record.get_fields("084")
                if (f.get("2") or "").lower() == "clc"
            ]
        ),
        names=tuple(names),
        isbns=unique(
            [k for f in record.get_fields("020") if (k := normalise_isbn(f.get("a") or ""))]
        ),
        issns=unique(
            [k for f in record.get_fields("022") if (k := normalise_issn(f.get("a") or ""))]
        ),
        isrcs=unique(
            [
                k
                for f in record.get_fields("024")
                if f.indicators[:1] == "0" and (k := normalise_isrc(f.get("a") or ""))
            ]
        ),
        languages=unique([clean(v).lower() for v in languages]),
        source_agencies=unique([clean(f.get("a")) for f in record.get_fields("040")]),
    )
