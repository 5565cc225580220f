"""Small text clean-ups shared by the field maps."""

from __future__ import annotations

import re

# Non-sorting marks: UNIMARC NSB/NSE (ISO 6630) and MARC21's equivalents.
NON_SORTING = dict.fromkeys(map(ord, "\x88\x89\x98\x9c"))
# C0 controls are never text; damaged records carry them (and PostgreSQL refuses NUL).
NON_SORTING.update(dict.fromkeys(c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)))
TRAILING_ISBD = " /:;,=.+"
YEAR = re.compile(r"(1[0-9]{3}|20[0-9]{2})")


def clean(value: str | None) -> str:
    """For display: non-sorting marks removed, whitespace collapsed."""
    if not value:
        return ""
    text = value.translate(NON_SORTING)
    if "<<" in text and ">>" in text:  # the other non-sorting convention (`<<The >>fig`)
        text = text.replace("<<", "").replace(">>", "")
    return " ".join(text.split())


def strip_isbd(value: str) -> str:
    """Drop the ISBD punctuation MARC21 cataloguers put at the end of a subfield."""
    text = clean(value)
    while text and text[-1] in TRAILING_ISBD:
        if text[-1] == "." and len(text) > 2 and text[-3] in " .":
            break  # an abbreviation or initial: "ed.", "J. R."
        text = text[:-1].rstrip()
    return text


def first_year(*texts: str | None) -> int | None:
    for text in texts:
        if text:
            match = YEAR.search(text)
            if match:
                return int(match.group(1))
    return None


def unique(values: list[str]) -> tuple[str, ...]:
    """Non-empty values, first occurrence kept, order preserved."""
    seen: dict[str, None] = {}
    for value in values:
        if value and value not in seen:
            seen[value] = None
    return tuple(seen)
