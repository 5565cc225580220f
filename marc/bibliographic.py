"""What a MARC record says about a title, independent of MARC flavour.

Both the CNMARC/UNIMARC map and the MARC21 map produce a `BibRecord`; the catalogue, search,
protocol record builders and the circulation engine read only this (through
`gateway.catalogue.model`, which re-exports it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    role: str = ""  # relator as catalogued: 主编, 编, 译, a code, or ""
    kind: str = "person"  # person | corporate | meeting
    responsibility: str = "primary"  # primary | alternative | secondary (UNIMARC 70X/71X)
    pinyin: str = ""


@dataclass(frozen=True, slots=True)
class BibRecord:
    """Mapped bibliographic data. Tuples keep catalogue order; empty means absent."""

    format: str  # "unimarc" | "marc21"
    control_number: str | None = None
    title: str = ""
    title_parts: tuple[str, ...] = ()  # part numbers and names (200$h $i)
    other_titles: tuple[str, ...] = ()  # other title info, parallel, variant, uniform titles
    title_pinyin: str = ""
    responsibility: tuple[str, ...] = ()
    edition: str = ""
    place: str = ""
    publisher: str = ""
    date: str = ""
    year: int | None = None
    extent: str = ""
    series: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    summary: str = ""
    subjects: tuple[str, ...] = ()
    clc: tuple[str, ...] = ()
    names: tuple[Name, ...] = ()
    isbns: tuple[str, ...] = ()
    issns: tuple[str, ...] = ()
    isrcs: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    source_agencies: tuple[str, ...] = ()

    @property
    def display_title(self) -> str:
        return " ".join([self.title, *self.title_parts]).strip()

    @property
    def main_author(self) -> str:
        return self.names[0].name if self.names else ""

    def to_json(self) -> str:
        # Hand-built rather than dataclasses.asdict: asdict deep-copies every value and was a
        # quarter of the loader's time.
        data = {name: getattr(self, name) for name in BIB_FIELD_NAMES}
        data["names"] = [
            {
                "name": n.name,
                "role": n.role,
                "kind": n.kind,
                "responsibility": n.responsibility,
                "pinyin": n.pinyin,
            }
            for n in self.names
        ]
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BibRecord:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        values = {}
        for key, value in data.items():
            if key not in known:
                continue
            if key == "names":
                value = tuple(Name(**n) for n in value)
            elif isinstance(value, list):
                value = tuple(value)
            values[key] = value
        return cls(**values)


BIB_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(BibRecord))
