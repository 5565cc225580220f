"""Copies (items) from holdings fields, by source profile.

Chinese systems put copies in different places (906 $b in the BNU/Aleph records, 995 in
others, 852 in MARC21); a `HoldingsProfile` in the config says where, so a new source is
configuration, not code. Templates: `{$b}` is a subfield of the item field, `{905$s}` the first
905$s in the record, anything else literal text. The profile and its template grammar live
here together; `ItemData` is what a profile finds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from marc.errors import (
    BARCODE_IMPLAUSIBLE,
    COPY_WITHOUT_BARCODE,
    RecordRejected,
    RecordWarning,
)
from marc.record import Field, MarcRecord

PLACEHOLDER = re.compile(r"\{(?P<tag>[0-9A-Za-z]{3})?\$(?P<code>[0-9A-Za-z])\}")
MAX_BARCODE_LENGTH = 64


def barcode_problem(barcode: str) -> str | None:
    """Why a value cannot be a barcode (of a copy, or a reader's card), or None: the one rule
    for MARC holdings, copy CSVs and reader CSVs."""
    if any(ch.isspace() for ch in barcode) or len(barcode) > MAX_BARCODE_LENGTH:
        return f"has spaces or is longer than {MAX_BARCODE_LENGTH} characters"
    return None


def has_digit(barcode: str) -> bool:
    """Real copy barcodes carry digits; a word (LC's 906 $b "cbc") is a field that is not about
    copies, read by the wrong holdings profile."""
    return any(ch.isdigit() for ch in barcode)


@dataclass(frozen=True, slots=True)
class ItemData:
    """One copy as a source (a holdings profile or a CSV row) describes it."""

    barcode: str
    library: str = ""
    location: str = ""
    call_number: str = ""
    item_type: str = ""
    status: str = ""

    def as_tuple(self) -> tuple[str, str, str, str, str, str]:
        return (
            self.barcode,
            self.library,
            self.location,
            self.call_number,
            self.item_type,
            self.status,
        )


class ProfileProblem(NamedTuple):
    """Something wrong with a holdings profile: the attribute at fault and why."""

    attribute: str
    why: str


@dataclass(frozen=True)
class HoldingsProfile:
    """Where a source system puts its copies in a MARC record.

    Each copy is one occurrence of `item_tag`. Each attribute is a list of templates tried in
    order; the first whose placeholders are not all empty wins. `{$b}` is subfield b of the item
    field, `{905$s}` the first 905$s of the record, text outside braces is kept as written.
    Profiles are configuration (`[[holdings_profiles]]`); `gateway.config` builds them.
    """

    name: str
    item_tag: str = ""  # "" = records from this source carry no copies
    barcode: tuple[str, ...] = ()
    library: tuple[str, ...] = ()
    location: tuple[str, ...] = ()
    call_number: tuple[str, ...] = ()
    item_type: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    default_status: str = ""  # a copy without a status word; "" = the library's on-shelf word
    status_map: dict[str, str] = field(default_factory=dict)  # source code -> our status word
    description: str = ""

    def problems(self) -> Iterator[ProfileProblem]:
        """What is wrong with the profile; nothing when it is usable."""
        if self.item_tag and len(self.item_tag) != 3:
            yield ProfileProblem("item_tag", f"{self.item_tag!r} is not a 3-character tag")
        if self.item_tag and not self.barcode:
            yield ProfileProblem("barcode", "a profile with item_tag needs a barcode source")
        for attribute in TEMPLATE_ATTRIBUTES:
            for template in getattr(self, attribute):
                problem = check_template(template)
                if problem:
                    yield ProfileProblem(attribute, f"{template!r}: {problem}")


TEMPLATE_ATTRIBUTES = ("barcode", "library", "location", "call_number", "item_type", "status")


def check_template(template: str) -> str | None:
    """Why a template is malformed, or None."""
    stripped = PLACEHOLDER.sub("", template)
    if "{" in stripped or "}" in stripped:
        return "placeholders look like {$b} or {905$s}"
    return None


def render(template: str, item_field: Field, record: MarcRecord) -> str:
    """The template with its placeholders filled; "" when every placeholder is empty."""
    found_any = False
    filled_any = False

    def fill(match: re.Match[str]) -> str:
        nonlocal found_any, filled_any
        found_any = True
        tag, code = match.group("tag"), match.group("code")
        value = record.subfield(tag, code) if tag else item_field.get(code)
        value = (value or "").strip()
        if value:
            filled_any = True
        return value

    text = PLACEHOLDER.sub(fill, template)
    if found_any and not filled_any:
        return ""
    return text.strip()


def first_value(templates: tuple[str, ...], item_field: Field, record: MarcRecord) -> str:
    for template in templates:
        value = render(template, item_field, record)
        if value:
            return value
    return ""


def items_from_record(
    record: MarcRecord, profile: HoldingsProfile, on_shelf_status: str
) -> tuple[list[ItemData], list[RecordWarning]]:
    """Copies the record describes, plus warnings for copies that had to be skipped or look
    wrong. A copy without a status word gets the profile's default status, else
    `on_shelf_status` (the library's word for a copy on the shelf, which the caller knows from
    its config)."""
    if not profile.item_tag:
        return [], []
    tag = profile.item_tag
    items: list[ItemData] = []
    warnings: list[RecordWarning] = []
    seen: set[str] = set()
    for number, item_field in enumerate(record.get_fields(profile.item_tag), start=1):
        barcode = first_value(profile.barcode, item_field, record)
        if not barcode:
            warnings.append(
                RecordWarning(
                    COPY_WITHOUT_BARCODE, f"{tag} #{number} has no barcode; copy skipped", tag
                )
            )
            continue
        problem = barcode_problem(barcode)
        if problem is not None:
            raise RecordRejected(
                f"copy {tag} #{number}: barcode “{barcode[:70]}” is not a barcode ({problem})",
                tag,
            )
        if not has_digit(barcode):
            # Real barcodes carry digits; a word here means the profile reads a field that is
            # not about copies (LC's 906 $b "cbc" under the BNU profile). Such a copy would
            # sit on the shelf for kiosks and partners and never be found: it is not made.
            warnings.append(
                RecordWarning(
                    BARCODE_IMPLAUSIBLE,
                    f"{tag} #{number}: “{barcode}” has no digit, so it is not a copy barcode;"
                    " copy skipped",
                    tag,
                )
            )
            continue
        if barcode in seen:
            raise RecordRejected(f"{tag}: barcode {barcode} appears twice in this record", tag)
        seen.add(barcode)
        raw_status = first_value(profile.status, item_field, record)
        status = (
            profile.status_map.get(raw_status, raw_status)
            or profile.default_status
            or on_shelf_status
        )
        items.append(
            ItemData(
                barcode=barcode,
                library=first_value(profile.library, item_field, record),
                location=first_value(profile.location, item_field, record),
                call_number=first_value(profile.call_number, item_field, record),
                item_type=first_value(profile.item_type, item_field, record),
                status=status,
            )
        )
    return items, warnings
