"""Our in-memory MARC record: decoded text, tags as strings, nothing MARC21-specific.

pymarc's `Record` assumes MARC21 semantics (leader/09 decides the charset, `title` reads 245),
so the pipeline carries this small structure and converts to pymarc only where pymarc adds
something (MARC-8 decoding, reading MARCXML input).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

SUBFIELD_DELIMITER = "\x1f"
FIELD_TERMINATOR = "\x1e"
RECORD_TERMINATOR = "\x1d"


def is_control_tag(tag: str) -> bool:
    """Control fields (001-009) carry data without indicators or subfields."""
    return tag.isdigit() and tag < "010"


@dataclass(slots=True)
class Field:
    """One variable field. Control fields use `value`; data fields use indicators+subfields."""

    tag: str
    indicators: str = ""
    subfields: list[tuple[str, str]] = field(default_factory=list)
    value: str | None = None

    @property
    def is_control(self) -> bool:
        return self.value is not None

    def get(self, code: str) -> str | None:
        for sub_code, sub_value in self.subfields:
            if sub_code == code:
                return sub_value
        return None

    def get_all(self, code: str) -> list[str]:
        return [v for c, v in self.subfields if c == code]

    def joined(self, codes: str, separator: str = " ") -> str:
        """Values of the given subfield codes in field order, joined (empty ones skipped)."""
        return separator.join(v.strip() for c, v in self.subfields if c in codes and v.strip())


@dataclass(slots=True)
class MarcRecord:
    leader: str
    fields: list[Field] = field(default_factory=list)
    # Fields by tag, built on first use: the maps look up dozens of tags per record.
    _by_tag: dict[str, list[Field]] | None = field(default=None, repr=False, compare=False)

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields)

    def _index(self) -> dict[str, list[Field]]:
        if self._by_tag is None:
            index: dict[str, list[Field]] = {}
            for f in self.fields:
                index.setdefault(f.tag, []).append(f)
            self._by_tag = index
        return self._by_tag

    def get_fields(self, *tags: str) -> list[Field]:
        """Fields with any of the tags, in record order."""
        if len(tags) == 1:
            return list(self._index().get(tags[0], ()))
        return [f for f in self.fields if f.tag in tags]

    def first(self, tag: str) -> Field | None:
        found = self._index().get(tag)
        return found[0] if found else None

    def control(self, tag: str) -> str | None:
        f = self.first(tag)
        return f.value if f is not None and f.value is not None else None

    def subfield(self, tag: str, code: str) -> str | None:
        """First value of `tag$code` in the record."""
        for f in self._index().get(tag, ()):
            value = f.get(code)
            if value is not None:
                return value
        return None

    def set_control(self, tag: str, value: str) -> None:
        for f in self.fields:
            if f.tag == tag:
                f.value = value
                return
        self._by_tag = None
        self.fields.insert(0, Field(tag=tag, value=value))
        self.fields.sort(key=lambda f: f.tag if f.tag[:1].isdigit() else "~" + f.tag)
