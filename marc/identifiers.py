"""Standard numbers as catalogues write them (hyphens, qualifiers, prices) → match keys."""

from __future__ import annotations

import re

ISBN_CANDIDATE = re.compile(r"[0-9][0-9\- ]{8,16}[0-9Xx]")


def normalise_isbn(text: str) -> str | None:
    """ISBN-13 digits for an ISBN-10 or -13 written any usual way; None if not an ISBN.

    `7-5037-1744-0`, `9787503717441 (pbk.)` and `978-7-5037-1744-1` all give the same key.
    """
    match = ISBN_CANDIDATE.search(text or "")
    if not match:
        return None
    digits = match.group(0).replace("-", "").replace(" ", "").upper()
    if len(digits) == 10:
        if not digits[:9].isdigit():
            return None
        total = sum((10 - i) * int(d) for i, d in enumerate(digits[:9]))
        check = (11 - total % 11) % 11
        if digits[9] != ("X" if check == 10 else str(check)):
            return None
        digits = "978" + digits[:9]
        return digits + _isbn13_check(digits)
    if len(digits) == 13 and digits.isdigit():
        if digits[12] != _isbn13_check(digits[:12]):
            return None
        return digits
    return None


def _isbn13_check(first12: str) -> str:
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


ISSN_PATTERN = re.compile(r"\b(\d{4})-?(\d{3}[\dXx])\b")


def normalise_issn(text: str) -> str | None:
    match = ISSN_PATTERN.search(text or "")
    return f"{match.group(1)}-{match.group(2).upper()}" if match else None


def normalise_isrc(text: str) -> str | None:
    compact = re.sub(r"[\s-]", "", text or "").upper()
    return compact if re.fullmatch(r"[A-Z]{2}[A-Z0-9]{3}\d{7}", compact) else None
