"""MARC21 bibliographic records → UNIMARC/CNMARC records, for catalogues that only exist in MARC21.

Why: the Japanese catalogue (日文书目) is CNMARC, but the Japanese records we can show are
MARC21 (LC, RLIN, OCLC, NDL-style). `convert` turns one into the other so the real data can be
loaded as the library's catalogue would carry it. Anything without a mapping here is dropped:
a MARC21 tag never leaks into the UNIMARC record under its old number.

Vernacular first. MARC21 keeps the original script in 880 fields linked by $6 (`245-01/$1` ↔
`880-01`), and the regular field holds the romanisation. CNMARC readers search and read the
script, so the 880 text fills the UNIMARC field and the romanisation goes to uppercase parallel
subfields, as Chinese systems carry pinyin: 200 $A $E $F, 225 $A, 517 $A, 600/607 $A, 7XX $A.
One Japanese record in the sources uses a local variant instead of 880: repeated fields with
`$8 11` (script), `$8 12` (kana reading), `$8 13` (romanisation); it is read the same way and
the kana reading, which has no CNMARC place, is dropped.

Text. ISBD punctuation that MARC21 puts at the end of subfields is removed (UNIMARC generates
it), including full-width `：；，／＝．`; abbreviations keep their full stop (`244 p.`). LC/RLIN
880 text is spaced by romanised word (`金田一 京助 と アイヌ語`); those spaces between two
CJK characters are removed, or a reader searching 金田一京助 would not find the book. Japanese
personal names are written in direct order, as CNMARC writes CJK names (`700 #0 $a 奥野陽子`).

Mapping (MARC21 → UNIMARC):
  leader   05 status (a→c), 06 type (t→b, m→l, o/p→m), 07 level (b→a, d→m), 09 blank,
           17 encoding level, 18 ISBD form; 20-23 `450 `
  001, 005 kept (003 dropped: UNIMARC 003 is a persistent URI)
  020 → 010 $a ISBN as printed without hyphens (invalid → $z), $b qualifier, $d price from $c
           (`2000円` → `JPY2000`); 022 → 011; 035 → 035
  008 → 100 $a: 0-7 date entered (008/00-05), 8 type of date, 9-16 dates, 17-19 audience
           blank, 20 government publication, 21 `0`, 22-24 language of cataloguing (040 $b,
           else the cataloguing agency's language, else `jpn`), 25 transliteration (`b` when
           the record carries romanised Japanese/Chinese/Korean, else `y`), 26-29 `50  `,
           30-33 blank, 34-35 script of the title (`da` Japanese, `ea` Chinese, `ba` Latin)
  008/35-37 + 041 → 101 ($a, $c from $h, $d from $b; ind1 1 = translation)
  008/15-17 → 102 $a ISO 3166 (unknown codes give no 102)
  245 → 200 1# $a, $b medium ($h), $d parallel title, $e other title ($b), $f/$g
           responsibility ($c split at `;`), $h/$i part ($n/$p)
  250 → 205, 362 → 207, 260/264 → 210 ($a place, $c publisher, $d date, $e $g $h maker),
  300 → 215 ($a extent, $c details, $d size, $e accompanying), 440/490 → 225
  500/515/588 → 300, 546 → 302, 504 → 320, 310 → 326, 505 → 327, 520 → 330
  780/785 (continues / continued by, supersedes / superseded by) → 430/432/440/442 $t $x
  130/240 → 500, 246 → 510 (parallel) or 517, 740 → 517
  600 → 600, 610/611 → 601, 650 → 606, 651 → 607, 655 → 608, 653 → 610; MARC21 $v $x $y $z
           become UNIMARC $j $x $z $y; $2 from the thesaurus indicator (0 → lcsh)
  043 → 660, 082 → 676, 050 → 680, 084 → 690 when $2 is clc, else 686
  100 → 700, 700 → 701 (702 for translators, editors, illustrators), 110/111 → 710,
           710/711 → 711 (ind1 1 for meetings)
  040 (else 003) → 801 #0 original agency, #1 transcribing ($c), #2 modifying ($d)
  856 → 856 $u $z

Limits: coded fields 105/106/110/181-183 are not built; 8XX series added entries and 4XX
links for series are not made; the title part of name/title entries (700 $t) is dropped;
non-filing characters are marked (NSB/NSE) only on Latin titles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date

from marc.identifiers import ISBN_CANDIDATE, normalise_isbn
from marc.record import Field, MarcRecord
from marc.text import HAN_CHARACTERS, clean, close_cjk_word_gaps

# --- scripts --------------------------------------------------------------------------------

# Kana prove Japanese; the katakana middle dot ・ (U+30FB) does not, Chinese uses it in names.
KANA = re.compile("[\u3041-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
HAN = re.compile(f"[{HAN_CHARACTERS}]")
HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
CYRILLIC = re.compile("[\u0400-\u04ff]")
LATIN = re.compile("[A-Za-z\u00c0-\u024f]")

TRAILING_PUNCTUATION = " /:;,=.+\u3000：；，／＝．"
# Words that end in a full stop because they are abbreviated (AACR2/ISBD), not because a
# subfield ends: the stop stays. Not `cm`: ISBD writes it without one, so a stop after it is
# punctuation.
ABBREVIATIONS = {
    "p", "v", "ill", "illus", "port", "ports", "col", "facsim", "facsims", "ed", "rev", "enl",
    "vol", "vols", "no", "ca", "d", "b", "fl", "Co", "Inc", "Ltd", "Jr",
}  # fmt: skip


def has_kana(text: str) -> bool:
    return bool(KANA.search(text or ""))


def tidy(value: str | None, word_spaced: bool = False) -> str:
    """A MARC21 subfield as UNIMARC text: trailing ISBD punctuation removed; RLIN word spaces
    inside CJK text removed when `word_spaced` (`marc.text.close_cjk_word_gaps`)."""
    text = clean(value)
    if word_spaced:
        text = close_cjk_word_gaps(text)
    while text and text[-1] in TRAILING_PUNCTUATION:
        if text[-1] == "." and _ends_with_abbreviation(text):
            break
        text = text[:-1].rstrip()
    return text


def _ends_with_abbreviation(text: str) -> bool:
    word = text[:-1].rsplit(" ", 1)[-1].lstrip("([")
    return bool(LATIN.fullmatch(word)) or word in ABBREVIATIONS  # an initial, or `p.`


# --- parallel script forms ------------------------------------------------------------------

LINK = re.compile(r"^(\d{3})-(\d{2})")
SCRIPT_GROUP = re.compile(r"^(\d)([123])$")  # $8 11 script, 12 reading, 13 romanisation


@dataclass(frozen=True, slots=True)
class Parallel:
    """One MARC21 heading or description in the form UNIMARC shows, with its romanisation."""

    field: Field  # the vernacular form when there is one, carrying the regular indicators
    romanised: Field | None = None
    word_spaced: bool = False  # from an 880: spaced by romanised words, see `tidy`


def parallels(record: MarcRecord, *tags: str) -> list[Parallel]:
    """Fields with the given tags, each paired with its 880 (or $8 group) script form."""
    linked: dict[tuple[str, str], Field] = {}
    unlinked: list[Field] = []
    for script_field in record.get_fields("880"):
        match = LINK.match(script_field.get("6") or "")
        if match and match.group(1) in tags:
            if match.group(2) == "00":
                unlinked.append(script_field)
            else:
                linked[(match.group(1), match.group(2))] = script_field
    found: list[Parallel] = []
    for group in _script_groups(record.get_fields(*tags)):
        if len(group) > 1 or SCRIPT_GROUP.match(group[0].get("8") or ""):
            found.append(_from_script_group(group))
            continue
        regular = group[0]
        match = LINK.match(regular.get("6") or "")  # `880-01` in the regular field
        vernacular = (
            linked.pop((regular.tag, match.group(2)), None)
            if match and match.group(1) == "880"
            else None
        )
        if vernacular is not None:
            found.append(Parallel(_retag(vernacular, regular), regular, word_spaced=True))
        else:
            found.append(Parallel(regular))
    # 880s whose regular field is missing still describe the item.
    for vernacular in [*linked.values(), *unlinked]:
        found.append(Parallel(_retag(vernacular, None), None, word_spaced=True))
    return found


def _group_key(field: Field) -> tuple[str, str] | None:
    match = SCRIPT_GROUP.match(field.get("8") or "")
    return (field.tag, match.group(1)) if match else None


def _script_groups(fields: list[Field]) -> Iterator[list[Field]]:
    """Consecutive fields of one $8 script group together; every other field alone."""
    group: list[Field] = []
    for field in fields:
        key = _group_key(field)
        starts_group = (field.get("8") or "").endswith("1")
        continues = group and key is not None and not starts_group and _group_key(group[-1]) == key
        if group and not continues:
            yield group
            group = []
        group.append(field)
    if group:
        yield group


def _from_script_group(group: list[Field]) -> Parallel:
    roles: dict[str, Field] = {}
    for field in group:
        match = SCRIPT_GROUP.match(field.get("8") or "")
        roles.setdefault(match.group(2) if match else "1", field)
    shown = roles.get("1", group[0])
    romanised = roles.get("3")
    return Parallel(shown, romanised if romanised is not shown else None)


def _retag(vernacular: Field, regular: Field | None) -> Field:
    link = vernacular.get("6") or ""
    return Field(
        tag=regular.tag if regular is not None else link[:3],
        indicators=regular.indicators if regular is not None else vernacular.indicators,
        subfields=[(c, v) for c, v in vernacular.subfields if c not in "68"],
    )


def _mapped(parallel: Parallel, codes: dict[str, str]) -> list[tuple[str, str]]:
    """Subfields renamed by `codes`, in source order; empty values dropped."""
    subfields = []
    for code, value in parallel.field.subfields:
        target = codes.get(code)
        if target:
            text = tidy(value, parallel.word_spaced)
            if text:
                subfields.append((target, text))
    return subfields


def _romanised(parallel: Parallel, codes: dict[str, str]) -> list[tuple[str, str]]:
    """Uppercase parallel subfields from the romanised form (first value of each code)."""
    if parallel.romanised is None:
        return []
    subfields = []
    for code, target in codes.items():
        text = tidy(parallel.romanised.get(code))
        if text:
            subfields.append((target, text))
    return subfields


def _field(tag: str, indicators: str, subfields: list[tuple[str, str]]) -> list[Field]:
    """The field, or nothing when it would be empty (no garbage fields)."""
    if not any(code.islower() or code.isdigit() for code, _ in subfields):
        return []
    # Uppercase parallels (romanisation) after the data they shadow, as Chinese systems write.
    ordered = [s for s in subfields if not s[0].isupper()] + [
        s for s in subfields if s[0].isupper()
    ]
    return [Field(tag=tag, indicators=indicators, subfields=ordered)]


# --- leader and coded data ------------------------------------------------------------------

RECORD_STATUS = {"a": "c", "c": "c", "d": "d", "n": "n", "p": "p"}
RECORD_TYPE = {"t": "b", "m": "l", "o": "m", "p": "m"}  # others are the same letter
RECORD_TYPES = set("abcdefgijklmr")
BIB_LEVEL = {"a": "a", "b": "a", "c": "c", "d": "m", "i": "i", "m": "m", "s": "s"}
ENCODING_LEVEL = {" ": " ", "I": " ", "4": " ", "1": "1", "8": "2"}  # the rest: less than full
ISBD_FORM = {"a": " ", "i": " ", "c": " ", " ": "n", "n": "n"}


def unimarc_leader(leader: str) -> str:
    leader = (leader + " " * 24)[:24]
    status = RECORD_STATUS.get(leader[5], "n")
    kind = RECORD_TYPE.get(leader[6], leader[6] if leader[6] in RECORD_TYPES else "a")
    level = BIB_LEVEL.get(leader[7], "m")
    encoding = ENCODING_LEVEL.get(leader[17], "3")
    form = ISBD_FORM.get(leader[18], "i")
    return f"00000{status}{kind}{level}  2200000{encoding}{form} 450 "


DATE_TYPE = {
    "s": "d", "m": "g", "i": "g", "k": "g", "c": "a", "d": "b", "u": "c", "r": "e",
    "q": "f", "t": "h", "p": "i", "e": "j", "n": "u", "b": "u",
}  # fmt: skip
GOVERNMENT = {
    " ": "y", "a": "z", "c": "e", "f": "a", "i": "f", "l": "d", "m": "e", "o": "h",
    "s": "b", "u": "u", "z": "z", "|": "u",
}  # fmt: skip
GOVERNMENT_TYPES = set("aefgkmort")  # record types whose 008/28 is government publication


def _fixed(record: MarcRecord) -> str:
    return ((record.control("008") or "") + " " * 40)[:40]


def _date_entered(record: MarcRecord, today: date) -> str:
    entered = _fixed(record)[:6]
    if entered.isdigit():
        # Two-digit years: MARC21 began in the late 1960s, so a year after this one is 19xx.
        century = "20" if int(entered[:2]) <= today.year % 100 else "19"
        return century + entered
    latest = record.control("005") or ""
    return latest[:8] if latest[:8].isdigit() else today.strftime("%Y%m%d")


def _year(text: str) -> str:
    """A 008 date as UNIMARC writes it: unknown digits (`u`, `|`, `#`) become blanks."""
    return "".join(ch if ch.isdigit() else " " for ch in text)


def coded_data(record: MarcRecord, title: str, languages: list[str], today: date) -> str:
    """100 $a, 36 characters, built from 008 and what the conversion found."""
    fixed = _fixed(record)
    date_type = DATE_TYPE.get(fixed[6], "u") if record.control("008") else "u"
    date1, date2 = _year(fixed[7:11]), _year(fixed[11:15])
    if date_type == "d":
        date2 = "    "  # UNIMARC: single date, position 13-16 blank
    kind = (record.leader + " " * 7)[6]
    government = GOVERNMENT.get(fixed[28], "u") if kind in GOVERNMENT_TYPES else "u"
    if not record.control("008"):
        government = "u"
    coded = (
        _date_entered(record, today)
        + date_type
        + date1
        + date2
        + "   "  # target audience: MARC21 008/22 codes do not map one-to-one
        + government
        + "0"  # not a modified record
        + cataloguing_language(record)
        + _transliteration(record, languages)
        + "50  "  # UTF-8 (ISO 10646); the writer sets the same
        + "    "
        + title_script(title, languages)
    )
    assert len(coded) == 36, coded
    return coded


def _transliteration(record: MarcRecord, languages: list[str]) -> str:
    """`b` (romanised by rules other than ISO: ALA-LC/Hepburn) or `y` (none)."""
    if record.get_fields("880") or any(SCRIPT_GROUP.match(f.get("8") or "") for f in record):
        return "b"
    title = record.subfield("245", "a") or ""
    if set(languages[:1]) & {"jpn", "chi", "kor"} and LATIN.search(title):
        return "b"  # a CJK-language record that only has its romanisation
    return "y"


def title_script(title: str, languages: list[str]) -> str:
    if has_kana(title) or (HAN.search(title) and "jpn" in languages):
        return "da"  # Japanese, script unspecified (kanji and kana mixed)
    if HANGUL.search(title) or (HAN.search(title) and "kor" in languages):
        return "ka"
    if HAN.search(title):
        return "ea"
    if CYRILLIC.search(title):
        return "ca"
    if LATIN.search(title):
        return "ba"
    return "  "


# Cataloguing agencies we meet in MARC21 Japanese records: country (ISO 3166) and language.
# MARC organisation codes carry a variant after `-` (DLC-R); OCLC symbols start with OCL.
AGENCIES = {
    "DLC": ("US", "eng"),
    "CStRLIN": ("US", "eng"),
    "OCoLC": ("US", "eng"),
    "NNC": ("US", "eng"),
    "MiU": ("US", "eng"),
    "NjP": ("US", "eng"),
    "CSt": ("US", "eng"),
    "CU": ("US", "eng"),
    "ICU": ("US", "eng"),
    "MH": ("US", "eng"),
    "CtY": ("US", "eng"),
    "NIC": ("US", "eng"),
    "GPO": ("US", "eng"),
    "JTNDL": ("JP", "jpn"),
}


def _agency(code: str) -> tuple[str, str] | None:
    code = code.strip()
    if code.startswith("OCL"):
        return AGENCIES["OCoLC"]
    return AGENCIES.get(code) or AGENCIES.get(code.split("-", 1)[0])


def _cataloguing_agency(record: MarcRecord) -> str:
    source = record.first("040")
    for code in "ac":
        value = clean(source.get(code)) if source else ""
        if value:
            return value
    return clean(record.control("003"))


def cataloguing_language(record: MarcRecord) -> str:
    stated = clean(record.subfield("040", "b")).lower()
    if re.fullmatch("[a-z]{3}", stated):
        return stated
    known = _agency(_cataloguing_agency(record))
    return known[1] if known else "jpn"


# --- identifiers ----------------------------------------------------------------------------

CURRENCIES = [
    (re.compile(r"円|\byen\b|\bJPY\b", re.IGNORECASE), "JPY"),
    (re.compile(r"元|\bCNY\b|\bRMB\b", re.IGNORECASE), "CNY"),
    (re.compile(r"NT\$|\bTWD\b"), "TWD"),
    (re.compile(r"HK\$|\bHKD\b"), "HKD"),
    (re.compile(r"\$|\bUSD\b"), "USD"),
    (re.compile(r"£|\bGBP\b"), "GBP"),
    (re.compile(r"€|\bEUR\b"), "EUR"),
]
YEN_SIGN = re.compile("[¥￥]")
AMOUNT = re.compile(r"\d[\d,]*(?:\.\d+)?")


def price(text: str, yen_sign: str = "JPY") -> str:
    """`2000円` → `JPY2000`, `¥2,000` → `JPY2000`; text we cannot read is kept as written.

    ¥ is both yen and yuan; `yen_sign` says which (the caller knows the country)."""
    text = clean(text)
    amount = AMOUNT.search(text)
    if amount:
        currencies = [*CURRENCIES, (YEN_SIGN, yen_sign)]
        for pattern, currency in currencies:
            if pattern.search(text):
                return currency + amount.group(0).replace(",", "")
    return text


def isbn_fields(record: MarcRecord) -> list[Field]:
    yen_sign = "CNY" if country(_fixed(record)[15:18]) == "CN" else "JPY"
    fields = []
    for source in record.get_fields("020"):
        subfields: list[tuple[str, str]] = []
        written = clean(source.get("a"))
        candidate = ISBN_CANDIDATE.search(written)
        if candidate:
            isbn = candidate.group(0).replace("-", "").replace(" ", "").upper()
            subfields.append(("a" if normalise_isbn(isbn) else "z", isbn))
            rest = written[candidate.end() :]
            qualifier = re.search(r"\(([^)]*)\)", rest)
            if qualifier and tidy(qualifier.group(1)):
                subfields.append(("b", tidy(qualifier.group(1))))
            elif ":" in rest and not source.get("c"):
                subfields.append(("d", price(rest.split(":", 1)[1], yen_sign)))  # `ISBN : price`
        subfields += [("b", tidy(q)) for q in source.get_all("q") if tidy(q)]
        subfields += [("d", price(c, yen_sign)) for c in source.get_all("c") if clean(c)]
        subfields += [("z", clean(z)) for z in source.get_all("z") if clean(z)]
        fields += _field("010", "  ", subfields)
    return fields


def issn_fields(record: MarcRecord) -> list[Field]:
    codes = {"a": "a", "l": "f", "y": "z", "z": "y"}
    fields = []
    for source in record.get_fields("022"):
        fields += _field(
            "011", "  ", [(codes[c], clean(v)) for c, v in source.subfields if c in codes]
        )
    return fields


def system_numbers(record: MarcRecord) -> list[Field]:
    fields = []
    for source in record.get_fields("035"):
        subfields = [(c, clean(v)) for c, v in source.subfields if c in "az" and clean(v)]
        fields += _field("035", "  ", subfields)
    return fields


# --- languages and country ------------------------------------------------------------------


def _codes(value: str | None) -> list[str]:
    """Language codes; old records run them together (`engjpn`)."""
    text = clean(value).lower()
    return [text[i : i + 3] for i in range(0, len(text) - 2, 3) if text[i : i + 3].isalpha()]


def languages(record: MarcRecord) -> tuple[list[str], list[str], list[str], str]:
    """Text languages, original languages, summary languages, translation indicator."""
    fixed_language = _fixed(record)[35:38] if record.control("008") else ""
    text = [fixed_language] if re.fullmatch("[a-z]{3}", fixed_language) else []
    original: list[str] = []
    summary: list[str] = []
    translation = "0"
    for source in record.get_fields("041"):
        text += [c for v in source.get_all("a") for c in _codes(v)]
        original += [c for v in source.get_all("h") for c in _codes(v)]
        summary += [c for v in source.get_all("b") for c in _codes(v)]
        if source.indicators[:1] == "1":
            translation = "1"
    text = list(dict.fromkeys(text))
    titles = [p.field.get("a") or "" for p in parallels(record, "245")]
    if not text and any(has_kana(t) for t in titles):
        text = ["jpn"]  # no usable code, but kana are only written in Japanese
    return text, list(dict.fromkeys(original)), list(dict.fromkeys(summary)), translation


def language_field(record: MarcRecord) -> list[Field]:
    text, original, summary, translation = languages(record)
    subfields = [("a", c) for c in text] + [("c", c) for c in original]
    subfields += [("d", c) for c in summary]
    return _field("101", translation + " ", subfields)


COUNTRIES = {
    "ja": "JP", "cc": "CN", "ch": "TW", "hk": "HK", "ko": "KR", "kn": "KP", "mp": "MN",
    "si": "SG", "fr": "FR", "gw": "DE", "it": "IT", "sp": "ES", "ru": "RU", "ne": "NL",
    "sz": "CH", "au": "AT", "be": "BE", "sw": "SE", "ii": "IN", "th": "TH", "vm": "VN",
}  # fmt: skip
# Three-letter MARC country codes are parts of countries: US states end in u, Canadian
# provinces in c, UK countries in k, Australian states in a.
COUNTRY_BY_LAST_LETTER = {"u": "US", "c": "CA", "k": "GB", "a": "AU"}


def country(code: str) -> str | None:
    code = code.strip()
    if len(code) == 3:
        return COUNTRY_BY_LAST_LETTER.get(code[2])
    return COUNTRIES.get(code)


def country_field(record: MarcRecord) -> list[Field]:
    found = country(_fixed(record)[15:18]) if record.control("008") else None
    return [Field("102", "  ", [("a", found)])] if found else []


# --- description ----------------------------------------------------------------------------

RESPONSIBILITY_SPLIT = re.compile(r"\s+;\s+|\s*；\s*")


def _non_filing(title: str, count: str) -> str:
    """Wrap the article MARC21 skips (245 ind2) in NSB/NSE, as UNIMARC marks it."""
    if not count.isdigit() or int(count) == 0 or int(count) >= len(title):
        return title
    skip = int(count)
    return f"\x88{title[:skip]}\x89{title[skip:]}"


def title_field(record: MarcRecord) -> list[Field]:
    found = parallels(record, "245")
    if not found:
        return []
    title = found[0]
    subfields: list[tuple[str, str]] = []
    previous = ""
    for code, value in title.field.subfields:
        text = tidy(value, title.word_spaced)
        if not text:
            previous = value
            continue
        if code == "a":
            if title.romanised is None and LATIN.search(text):
                text = _non_filing(text, title.field.indicators[1:2])
            subfields.append(("a", text))
        elif code == "h":
            subfields.append(("b", text.strip("[]")))
        elif code == "b":
            parallel_title = previous.rstrip().endswith(("=", "＝"))
            subfields.append(("d" if parallel_title else "e", text))
        elif code == "c":
            statements = [tidy(s, title.word_spaced) for s in RESPONSIBILITY_SPLIT.split(value)]
            statements = [s for s in statements if s]
            subfields += [("f" if i == 0 else "g", s) for i, s in enumerate(statements)]
        elif code in "np":
            subfields.append(("h" if code == "n" else "i", text))
        previous = value
    if title.romanised is not None:
        subfields += _romanised(title, {"a": "A", "b": "E"})
        statement = RESPONSIBILITY_SPLIT.split(title.romanised.get("c") or "")[0]
        if tidy(statement):
            subfields.append(("F", tidy(statement)))
    return _field("200", "1 ", subfields)


def edition_fields(record: MarcRecord) -> list[Field]:
    fields = []
    for edition in parallels(record, "250"):
        fields += _field("205", "  ", _mapped(edition, {"a": "a", "b": "f"}))
    return fields


def numbering_fields(record: MarcRecord) -> list[Field]:
    fields = []
    for numbering in parallels(record, "362"):
        formatted = "0" if numbering.field.indicators[:1] == "0" else "1"
        fields += _field("207", " " + formatted, _mapped(numbering, {"a": "a", "z": "z"}))
    return fields


PUBLICATION_CODES = {
    "260": {"a": "a", "b": "c", "c": "d", "e": "e", "f": "g", "g": "h"},
    "264": {"a": "a", "b": "c", "c": "d"},
}


def publication_field(record: MarcRecord) -> list[Field]:
    """210 from the publication statement: 264 #1 first (RDA), else 260, else another 264."""
    candidates = [p for p in parallels(record, "264") if p.field.indicators[1:2] == "1"]
    candidates += parallels(record, "260") + parallels(record, "264")
    if not candidates:
        return []
    chosen = candidates[0]
    return _field("210", "  ", _mapped(chosen, PUBLICATION_CODES[chosen.field.tag]))


def physical_fields(record: MarcRecord) -> list[Field]:
    fields = []
    for extent in parallels(record, "300"):
        fields += _field("215", "  ", _mapped(extent, {"a": "a", "b": "c", "c": "d", "e": "e"}))
    return fields


def series_fields(record: MarcRecord) -> list[Field]:
    fields = []
    codes = {"a": "a", "n": "h", "p": "i", "v": "v", "x": "x"}
    for series in parallels(record, "440", "490"):
        source = series.field
        # UNIMARC 225 ind1: 2 = as the authorised form (440), 0 = traced differently (490 1),
        # 1 = no authorised form (490 0).
        form = "2" if source.tag == "440" else ("0" if source.indicators[:1] == "1" else "1")
        fields += _field("225", form + " ", _mapped(series, codes) + _romanised(series, {"a": "A"}))
    return fields


NOTES = {
    "500": ("300", "a"),
    "515": ("300", "a"),
    "588": ("300", "a"),
    "546": ("302", "a"),
    "504": ("320", "a"),
    "310": ("326", "ab"),
    "505": ("327", "agrt"),
    "520": ("330", "ab"),
}


def note_fields(record: MarcRecord) -> list[Field]:
    fields = []
    for note in parallels(record, *NOTES):
        tag, codes = NOTES[note.field.tag]
        # Notes keep their own punctuation: a note is a sentence, not an ISBD element.
        text = " ".join(clean(v) for c, v in note.field.subfields if c in codes and clean(v))
        if note.word_spaced:
            text = close_cjk_word_gaps(text)
        if text:
            fields.append(Field(tag, "  ", [("a", text)]))
    return fields


LINKS = {("780", "0"): "430", ("780", "2"): "432", ("785", "0"): "440", ("785", "2"): "442"}


def link_fields(record: MarcRecord) -> list[Field]:
    fields = []
    for link in parallels(record, "780", "785"):
        tag = LINKS.get((link.field.tag, link.field.indicators[1:2]))
        if tag:
            fields += _field(tag, " 1", _mapped(link, {"t": "t", "x": "x"}))
    return fields


def other_title_fields(record: MarcRecord) -> list[Field]:
    fields = []
    for uniform in parallels(record, "130", "240"):
        fields += _field("500", "10", _mapped(uniform, {"a": "a", "l": "m", "f": "k"}))
    for variant in parallels(record, "246", "740"):
        parallel_title = variant.field.tag == "246" and variant.field.indicators[1:2] == "1"
        subfields = _mapped(variant, {"a": "a", "b": "e", "n": "h", "p": "i"})
        subfields += _romanised(variant, {"a": "A"})
        fields += _field("510" if parallel_title else "517", "1 ", subfields)
    return fields


# --- subjects and classification ------------------------------------------------------------

THESAURI = {"0": "lcsh", "1": "lcshac", "2": "mesh", "3": "nal", "5": "cash", "6": "rvm"}
SUBDIVISIONS = {"v": "j", "x": "x", "y": "z", "z": "y"}


def _thesaurus(source: Field) -> list[tuple[str, str]]:
    if source.indicators[1:2] == "7":
        stated = clean(source.get("2"))
        return [("2", stated)] if stated else []
    code = THESAURI.get(source.indicators[1:2])
    return [("2", code)] if code else []


def _heading_with_subdivisions(
    heading: Parallel, head_codes: dict[str, str], regular: Field
) -> list[tuple[str, str]]:
    codes = {**head_codes, **SUBDIVISIONS}
    return _mapped(heading, codes) + _thesaurus(regular) + _romanised(heading, {"a": "A"})


def subject_fields(record: MarcRecord) -> list[Field]:
    fields = []
    for subject in parallels(record, "600"):
        name = personal_name(subject, SUBDIVISIONS)
        if name is not None:
            indicators, subfields = name
            fields += _field("600", indicators, subfields + _thesaurus(subject.field))
    for subject in parallels(record, "610", "611"):
        indicators, subfields = corporate_name(subject, SUBDIVISIONS)
        fields += _field("601", indicators, subfields + _thesaurus(subject.field))
    topical = {
        "650": ("606", "0 ", {"a": "a"}),
        "651": ("607", "  ", {"a": "a"}),
        "655": ("608", "  ", {"a": "a"}),
    }
    for subject in parallels(record, *topical):
        tag, indicators, codes = topical[subject.field.tag]
        fields += _field(tag, indicators, _heading_with_subdivisions(subject, codes, subject.field))
    for keywords in record.get_fields("653"):
        fields += _field("610", "0 ", [("a", tidy(v)) for v in keywords.get_all("a") if tidy(v)])
    return fields


def classification_fields(record: MarcRecord) -> list[Field]:
    fields = []
    for area in record.get_fields("043"):
        fields += _field("660", "  ", [("a", clean(v)) for v in area.get_all("a") if clean(v)])
    for dewey in record.get_fields("082"):
        subfields = [("a", clean(v)) for v in dewey.get_all("a")[:1]]
        subfields += [("v", clean(v)) for v in dewey.get_all("2")[:1]]
        fields += _field("676", "  ", subfields)
    for lc in record.get_fields("050"):
        fields += _field("680", "  ", [(c, clean(v)) for c, v in lc.subfields if c in "ab"][:2])
    for other in record.get_fields("084"):
        system = clean(other.get("2"))
        number = [("a", clean(v)) for v in other.get_all("a") if clean(v)]
        if system.lower().startswith("clc"):
            edition = system.split("/", 1)[1] if "/" in system else ""
            fields += _field("690", "  ", number + ([("v", edition)] if edition else []))
        elif system:
            fields += _field("686", "  ", number + [("2", system)])
    return fields


# --- names ----------------------------------------------------------------------------------

PERSON_CODES = {"b": "d", "c": "c", "d": "f", "q": "g"}
CORPORATE_CODES = {"b": "b", "c": "e", "d": "f", "n": "d"}
MEETING_CODES = {"c": "e", "d": "f", "e": "b", "n": "d"}
# MARC relator codes and terms → UNIMARC relator codes (Appendix C); other terms are kept as
# written, as CNMARC keeps `著` or `译` in $4.
RELATORS = {
    "aut": "070", "author": "070", "trl": "730", "translator": "730", "edt": "340",
    "editor": "340", "ill": "440", "illustrator": "440", "cmp": "230", "composer": "230",
    "ctb": "205", "contributor": "205", "pht": "600", "photographer": "600", "aui": "072",
    "ann": "020", "annotator": "020", "com": "220", "compiler": "220",
}  # fmt: skip
SECONDARY_RELATORS = {"730", "340", "440", "205", "600", "072", "020", "220"}


def _relators(field: Field) -> list[tuple[str, str]]:
    relators = []
    for code, value in field.subfields:
        if code not in "e4" or not tidy(value):
            continue
        term = tidy(value)
        mapped = RELATORS.get(term.lower())
        if mapped:
            relators.append(("4", mapped))
        elif term.isdigit() or (code == "e" and not re.fullmatch("[a-z]{3}", term)):
            relators.append(("4", term))  # UNIMARC codes and free terms stay; unknown MARC codes go
    return list(dict.fromkeys(relators))


def _until_title(field: Field) -> Field:
    """A name/title heading without its title part ($t and what follows)."""
    kept = []
    for code, value in field.subfields:
        if code == "t":
            break
        kept.append((code, value))
    return Field(field.tag, field.indicators, kept)


def personal_name(
    name: Parallel, extra: dict[str, str] | None = None
) -> tuple[str, list[tuple[str, str]]] | None:
    """UNIMARC indicators and subfields for a MARC21 X00 personal name."""
    shown = Parallel(_until_title(name.field), name.romanised, name.word_spaced)
    entry = tidy(shown.field.get("a"), True)  # CJK names: no space between family and given
    if not entry:
        return None
    direct = bool(HAN.search(entry) or KANA.search(entry) or HANGUL.search(entry))
    # Surname first when MARC21 says so (ind1 1/3) or the indicator is missing but a comma
    # shows the inversion (`Austen, Jane` with ind1 blank, as in a Japanese source).
    inverted = not direct and "," in entry and name.field.indicators[:1] in ("1", "3", " ", "")
    if inverted:
        surname, forenames = (part.strip() for part in entry.split(",", 1))
        subfields = [("a", surname), ("b", forenames)] if forenames else [("a", surname)]
    else:
        subfields = [("a", entry)]
    subfields += _mapped(shown, {**PERSON_CODES, **(extra or {})})
    subfields += _relators(shown.field)
    subfields += _romanised(shown, {"a": "A"})
    return (" 1" if inverted else " 0"), subfields


def corporate_name(
    name: Parallel, extra: dict[str, str] | None = None
) -> tuple[str, list[tuple[str, str]]]:
    """UNIMARC indicators and subfields for a MARC21 X10/X11 corporate name or meeting."""
    shown = Parallel(_until_title(name.field), name.romanised, name.word_spaced)
    meeting = shown.field.tag.endswith("11")
    codes = MEETING_CODES if meeting else CORPORATE_CODES
    subfields = _mapped(shown, {"a": "a", **codes, **(extra or {})})
    subfields += _relators(shown.field) + _romanised(shown, {"a": "A"})
    # MARC21 ind1 (0 inverted, 1 jurisdiction, 2 direct) is UNIMARC ind2.
    form = shown.field.indicators[:1]
    return ("1" if meeting else "0") + (form if form in ("0", "1", "2") else "2"), subfields


def name_fields(record: MarcRecord) -> list[Field]:
    fields = []
    for main in parallels(record, "100"):
        person = personal_name(main)
        if person is not None:
            fields += _field("700", *person)
    for main in parallels(record, "110", "111"):
        fields += _field("710", *corporate_name(main))
    for added in parallels(record, "700"):
        person = personal_name(added)
        if person is not None:
            secondary = any(v in SECONDARY_RELATORS for c, v in person[1] if c == "4")
            fields += _field("702" if secondary else "701", *person)
    for added in parallels(record, "710", "711"):
        fields += _field("711", *corporate_name(added))
    return fields


# --- sources --------------------------------------------------------------------------------


def source_fields(record: MarcRecord, entered: str) -> list[Field]:
    """801: who catalogued (#0), transcribed (#1) and modified (#2) the record."""
    source = record.first("040")
    roles: list[tuple[str, str]] = []
    if source is not None:
        roles += [("0", v) for v in source.get_all("a")]
        roles += [("1", v) for v in source.get_all("c")]
        roles += [("2", v) for v in source.get_all("d")]
    elif clean(record.control("003")):
        roles.append(("0", clean(record.control("003"))))
    fields = []
    for role, agency in dict.fromkeys((r, clean(a)) for r, a in roles if clean(a)):
        known = _agency(agency)
        subfields = [("a", known[0])] if known else []
        subfields.append(("b", agency))
        if role == "0":
            subfields.append(("c", entered))
        fields.append(Field("801", " " + role, subfields))
    return fields


def electronic_fields(record: MarcRecord) -> list[Field]:
    fields = []
    for location in record.get_fields("856"):
        subfields = [(c, clean(v)) for c, v in location.subfields if c in "uz" and clean(v)]
        fields += _field("856", location.indicators or "  ", subfields)
    return fields


# --- the record -----------------------------------------------------------------------------


def is_japanese(record: MarcRecord) -> bool:
    """Japanese-language by 008/35-37, 041, or kana in the title (its 880 form included)."""
    if record.control("008") and _fixed(record)[35:38] == "jpn":
        return True
    if any("jpn" in _codes(v) for f in record.get_fields("041") for v in f.get_all("a")):
        return True
    return any(has_kana(p.field.joined("abnp")) for p in parallels(record, "245"))


def convert(record: MarcRecord, conversion_date: date | None = None) -> MarcRecord:
    """The UNIMARC/CNMARC form of a MARC21 bibliographic record (see the module docstring).

    `conversion_date` stands in for the date entered on file when the record has neither 008
    nor 005; pass it to make the output reproducible.
    """
    today = conversion_date or date.today()
    fields: list[Field] = []
    for tag in ("001", "005"):
        value = clean(record.control(tag))
        if value:
            fields.append(Field(tag, value=value))
    title = title_field(record)
    text_languages = languages(record)[0]
    shown_title = clean(title[0].get("a")) if title else ""
    coded = coded_data(record, shown_title, text_languages, today)
    builders: Iterable[list[Field]] = (
        isbn_fields(record),
        issn_fields(record),
        system_numbers(record),
        [Field("100", "  ", [("a", coded)])],
        language_field(record),
        country_field(record),
        title,
        edition_fields(record),
        numbering_fields(record),
        publication_field(record),
        physical_fields(record),
        series_fields(record),
        note_fields(record),
        link_fields(record),
        other_title_fields(record),
        subject_fields(record),
        classification_fields(record),
        name_fields(record),
        source_fields(record, coded[:8]),
        electronic_fields(record),
    )
    for built in builders:
        fields += built
    fields.sort(key=lambda f: f.tag)  # stable: repeated fields keep their order
    return MarcRecord(leader=unimarc_leader(record.leader), fields=fields)
