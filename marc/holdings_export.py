"""Copies back into holdings fields: a `HoldingsProfile` read the other way, for
`libgate export --with-items`.

A profile says where to read each attribute of a copy; to write one, the export takes the
attribute's first template made only of item-field placeholders (`{$f}`, `{$h}{$i}`) and puts
the value in its first placeholder's subfield. A template with literal text (`{$d}/{$e}`) or
a record-level placeholder (`{905$s}`) cannot carry one copy's value, so some profiles have no
place for some attributes (bnu has none for location, item type and status). Rather than
trust this reasoning, every written copy is read back through the profile, as a load would
read it, and each attribute that does not come back the same is reported as a `LostValue`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from marc.holdings import (
    PLACEHOLDER,
    TEMPLATE_ATTRIBUTES,
    HoldingsProfile,
    ItemData,
    items_from_record,
)
from marc.record import Field, MarcRecord


class LostValue(NamedTuple):
    """An attribute of a copy that the exported record does not give back when loaded."""

    barcode: str
    attribute: str  # one of TEMPLATE_ATTRIBUTES
    value: str  # what the copy has
    read_back: str  # what a load of the exported record would give


@dataclass(frozen=True)
class WriteLayout:
    """The item field's tag and, per attribute, the subfield that carries it."""

    tag: str
    subfields: dict[str, str]  # attribute -> subfield code; an attribute missing has no place
    status_codes: dict[str, str]  # our status word -> the profile's code (status_map reversed)

    @classmethod
    def of(cls, profile: HoldingsProfile) -> WriteLayout:
        subfields: dict[str, str] = {}
        for attribute in TEMPLATE_ATTRIBUTES:
            for template in getattr(profile, attribute):
                code = _writable_code(template)
                if code is not None:
                    subfields[attribute] = code
                    break
        status_codes: dict[str, str] = {}
        for code, word in profile.status_map.items():
            status_codes.setdefault(word, code)
        return cls(profile.item_tag, subfields, status_codes)

    def unplaced(self) -> list[str]:
        """Attributes this layout has no subfield for."""
        return [a for a in TEMPLATE_ATTRIBUTES if a not in self.subfields]

    def item_field(self, item: ItemData) -> Field:
        """One copy as one item field: its non-empty values, subfields in code order."""
        values: dict[str, str] = {}
        for attribute, code in self.subfields.items():
            value = getattr(item, attribute)
            if attribute == "status":
                value = self.status_codes.get(value, value)
            if value and code not in values:  # two attributes in one subfield: the first
                values[code] = value
        return Field(tag=self.tag, indicators="  ", subfields=sorted(values.items()))


def _writable_code(template: str) -> str | None:
    """The subfield a template can carry a whole value in: the first placeholder of a template
    made only of item-field placeholders; None for any other template."""
    matches = list(PLACEHOLDER.finditer(template))
    if not matches or PLACEHOLDER.sub("", template).strip():
        return None
    if any(m.group("tag") for m in matches):
        return None
    return matches[0].group("code")


def with_copies(
    record: MarcRecord,
    profile: HoldingsProfile,
    items: Sequence[ItemData],
    on_shelf_status: str,
    record_id: str,
) -> tuple[MarcRecord, list[LostValue]]:
    """`record` with its item fields (as loaded) replaced by one field per copy in `items`,
    and what of the copies a load of it would not give back. A record without 001 gets
    `record_id` as its 001, so a reload finds the record it came from."""
    layout = WriteLayout.of(profile)
    kept = [f for f in record.fields if f.tag != layout.tag]
    # Where the first item field was (every field before it is kept), else in tag order.
    position = next((i for i, f in enumerate(record.fields) if f.tag == layout.tag), None)
    if position is None:
        position = next((i for i, f in enumerate(kept) if _after(f.tag, layout.tag)), len(kept))
    new_fields = [layout.item_field(item) for item in items]
    fields = kept[:position] + new_fields + kept[position:]
    if record.control("001") is None and record_id:
        fields.insert(0, Field(tag="001", value=record_id))
    rebuilt = MarcRecord(leader=record.leader, fields=fields)
    # Read back as a load would: what differs is what the profile cannot carry.
    read, _warnings = items_from_record(rebuilt, profile, on_shelf_status)
    by_barcode = {item.barcode: item for item in read}
    lost: list[LostValue] = []
    for item in items:
        found = by_barcode.get(item.barcode, ItemData(barcode=""))
        for attribute in TEMPLATE_ATTRIBUTES:
            wanted, got = getattr(item, attribute), getattr(found, attribute)
            if wanted != got:
                lost.append(LostValue(item.barcode, attribute, wanted, got))
    return rebuilt, lost


def _after(tag: str, item_tag: str) -> bool:
    """Whether `tag` files after `item_tag` (numeric tags first, then the others: AVA, OWN)."""

    def key(t: str) -> tuple[bool, str]:
        return (not t.isdigit(), t)

    return key(tag) > key(item_tag)
