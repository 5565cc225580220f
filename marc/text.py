"""Small text clean-ups shared by the field maps."""

from __future__ import annotations

import re

# Non-sorting marks: UNIMARC NSB/NSE (ISO 6630) and MARC21's equivalents.
NON_SORTING = dict.fromkeys(map(ord, "\x88\x89\x98\x9c"))
# C0 controls are never text; damaged records carry them (and PostgreSQL refuses NUL).
NON_SORTING.update(dict.fromkeys(c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)))
TRAILING_ISBD = " /:;,=.+"
YEAR = re.compile(r"(1[0-9]{3}|20[0-9]{2})")

# Han characters (with 々 〆 〇) and kana: scripts written without spaces between words.
# Hangul is not among them: Korean puts spaces between words, and they stay.
HAN_CHARACTERS = "\u3005-\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_UNSPACED = f"{HAN_CHARACTERS}\u3041-\u30ff"
# Whitespace (ASCII or the ideographic space U+3000, which MARC-8 EACC records carry) between
# two such characters, or between one and a digit (`第 1版`, `昭和 43`).
CJK_WORD_GAP = re.compile(
    f"(?<=[{_UNSPACED}])\\s+(?=[{_UNSPACED}0-9])|(?<=[0-9])\\s+(?=[{_UNSPACED}])"
)


def close_cjk_word_gaps(text: str) -> str:
    """CJK text without the word spaces that LC, OCLC and RLIN put into it.

    Their MARC21 records space Chinese and Japanese by romanised word (`鲁 迅 与 浙东 文化`,
    `金田一 京助 と アイヌ語`, in 880 fields and elsewhere), which the script never has; a reader
    types 鲁迅. The one rule for those spaces: the UNIMARC conversion and the search index of
    MARC21 records close them, and queries typed with them find the closed text. Spaces
    next to Latin letters, hangul and punctuation stay.
    """
    return CJK_WORD_GAP.sub("", text)


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
