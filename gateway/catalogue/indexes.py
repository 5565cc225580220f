"""The search indexes: which record data feeds each, and how it is searched. One table.

CQL and Bib-1 mappings (in the protocol front-ends) point at these names; the planner reads
`INDEXES` to know whether a name is a keyword index (token streams with positions, phrase and
word search), an exact index (whole normalised values, prefix truncation), or numeric (year).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from gateway.catalogue import pinyin, readings
from gateway.catalogue.model import BibRecord
from gateway.catalogue.normalise import is_cjk, normalise, sort_key, words
from marc.text import close_cjk_word_gaps

KEYWORD = "keyword"
EXACT = "exact"
NUMERIC = "numeric"
ALL = "all"  # matches every record of the database (CQL cql.allRecords); the term is ignored

# Separator token between values of a field: it is a letter-like private-use character that the
# normaliser never produces from text, so a phrase can never run from one value into the next.
VALUE_SEPARATOR = "\ue000"


@dataclass(frozen=True)
class IndexSpec:
    name: str
    kind: str  # keyword | exact | numeric | all
    title_zh: str
    title_en: str
    browse: bool = False  # offered as a browse (scan) list
    sortable: bool = False


def is_japanese(bib: BibRecord) -> bool:
    """A Japanese-language record (101 $a jpn) or one whose title has kana: its headings get
    kana readings, and its Latin transcriptions are romaji, not pinyin."""
    return "jpn" in bib.languages or readings.has_kana(bib.title)


def searched_form(bib: BibRecord) -> BibRecord:
    """The record as its index terms read it: a MARC21 record's CJK text without the word
    spaces LC, OCLC and RLIN catalogue into it (`鲁 迅 与 浙东 文化` is searched as 鲁迅与浙东文化,
    so 鲁迅 finds it; `marc.text.close_cjk_word_gaps`). Only the index reads this form: the
    stored record and everything displayed from it keep the text as catalogued. CNMARC and
    UNIMARC records are indexed as they are: their catalogers do not space CJK by word.
    """
    if bib.format != "marc21":
        return bib
    close = close_cjk_word_gaps
    return replace(
        bib,
        title=close(bib.title),
        title_parts=tuple(map(close, bib.title_parts)),
        other_titles=tuple(map(close, bib.other_titles)),
        responsibility=tuple(map(close, bib.responsibility)),
        publisher=close(bib.publisher),
        series=tuple(map(close, bib.series)),
        subjects=tuple(map(close, bib.subjects)),
        names=tuple(replace(n, name=close(n.name)) for n in bib.names),
    )


def _romaji(bib: BibRecord, transcription: str) -> list[str]:
    """A Japanese record's Latin transcription (LC/NDL romaji) is searched as text; a Chinese
    record's (CNMARC $A/$9) is pinyin and goes to the pinyin fields instead."""
    if transcription and is_japanese(bib) and not readings.has_kana(transcription):
        return [transcription]
    return []


def _titles(bib: BibRecord) -> list[str]:
    return [bib.display_title, *bib.other_titles, *_romaji(bib, bib.title_pinyin)]


def _names(bib: BibRecord) -> list[str]:
    values = []
    for name in bib.names:
        values.append(name.name)
        values.extend(_romaji(bib, name.pinyin))
    return values + list(bib.responsibility)


KEYWORD_SOURCES: dict[str, Callable[[BibRecord], list[str]]] = {
    "title": _titles,
    "author": _names,
    "subject": lambda b: list(b.subjects),
    "series": lambda b: list(b.series),
    "publisher": lambda b: [b.publisher] if b.publisher else [],
}
KEYWORD_FIELDS: tuple[str, ...] = tuple(KEYWORD_SOURCES)

# --- pinyin and kana readings: what a reader types for a heading they cannot write ---------

# (heading, the cataloger's transcription of it or "")
Transcribed = list[tuple[str, str]]


def _pinyin_of(bib: BibRecord, transcription: str) -> str:
    return "" if is_japanese(bib) else transcription


def _title_headings(bib: BibRecord, transcribed: Callable[[BibRecord, str], str]) -> Transcribed:
    return [
        (bib.title, transcribed(bib, bib.title_pinyin)),
        *((part, "") for part in bib.title_parts),
        *((title, "") for title in bib.other_titles),
    ]


def _name_headings(bib: BibRecord, transcribed: Callable[[BibRecord, str], str]) -> Transcribed:
    return [(name.name, transcribed(bib, name.pinyin)) for name in bib.names]


PINYIN_SOURCES: dict[str, Callable[[BibRecord], Transcribed]] = {
    "title": lambda b: _title_headings(b, _pinyin_of),
    "author": lambda b: _name_headings(b, _pinyin_of),
    "subject": lambda b: [(subject, "") for subject in b.subjects],
}
READING_SOURCES: dict[str, Callable[[BibRecord], Transcribed]] = {
    "title": lambda b: _title_headings(b, lambda _, t: t),
    "author": lambda b: _name_headings(b, lambda _, t: t),
}
# keyword index → its pinyin field / its reading field in the search index
PINYIN_FIELDS = {name: "py_" + name for name in PINYIN_SOURCES}
READING_FIELDS = {name: "rd_" + name for name in READING_SOURCES}
INITIALS_FIELD = "py_initials"  # initials of titles and names, one token each: jqzgmds
# Every positional text field of the search index, native first.
TEXT_FIELDS: tuple[str, ...] = (
    *KEYWORD_FIELDS,
    *PINYIN_FIELDS.values(),
    *READING_FIELDS.values(),
)


def pinyin_stream(headings: Transcribed) -> list[str]:
    """Syllable tokens of each heading in order, headings apart by the separator."""
    stream: list[str] = []
    for heading, catalogued in headings:
        for tokens in pinyin.heading_pinyin(heading, catalogued):
            if stream:
                stream.append(VALUE_SEPARATOR)
            stream.extend(tokens)
    return stream


def _initials(bib: BibRecord) -> list[str]:
    title = pinyin.initials(bib.title)
    with_parts = title + "".join(pinyin.initials(part) for part in bib.title_parts)
    found = dict.fromkeys(
        [
            title,
            with_parts,
            *(pinyin.initials(t) for t in bib.other_titles),
            *(pinyin.initials(n.name) for n in bib.names),
        ]
    )
    return [token for token in found if len(token) >= 2]


INDEXES: dict[str, IndexSpec] = {
    spec.name: spec
    for spec in (
        IndexSpec("title", KEYWORD, "题名", "Title", browse=True, sortable=True),
        IndexSpec("author", KEYWORD, "著者", "Author", browse=True, sortable=True),
        IndexSpec("subject", KEYWORD, "主题词", "Subject", browse=True),
        IndexSpec("series", KEYWORD, "丛书名", "Series", browse=True),
        IndexSpec("publisher", KEYWORD, "出版者", "Publisher"),
        IndexSpec("any", KEYWORD, "任意字段", "Any keyword field"),
        IndexSpec("isbn", EXACT, "ISBN", "ISBN"),
        IndexSpec("issn", EXACT, "ISSN", "ISSN"),
        IndexSpec("isrc", EXACT, "ISRC", "ISRC"),
        IndexSpec("id", EXACT, "记录号", "Record id (001)"),
        IndexSpec("barcode", EXACT, "馆藏条码", "Item barcode"),
        IndexSpec("clc", EXACT, "中图分类号", "CLC class"),
        IndexSpec("language", EXACT, "语种", "Language"),
        IndexSpec("year", NUMERIC, "出版年", "Publication year", sortable=True),
        IndexSpec("allrecords", ALL, "全部记录", "All records (harvesting)"),
    )
}

BROWSE_SOURCES: dict[str, Callable[[BibRecord], list[str]]] = {
    "title": lambda b: [b.display_title],
    "author": lambda b: [n.name for n in b.names],
    "subject": lambda b: list(b.subjects),
    "series": lambda b: list(b.series),
}


def token_stream(values: list[str]) -> list[str]:
    """Tokens of a field in positional order, for phrase search on either engine.

    For each value: its words in order, where a CJK run of two or more characters is written as
    its chain of overlapping bigrams (so a contiguous substring is a contiguous bigram phrase)
    and a one-character run as itself; then, after a separator, the single characters of the
    longer runs (so one-character queries find them). Values are separated by the separator.
    """
    stream: list[str] = []
    for value in values:
        unigrams: list[str] = []
        chain: list[str] = []
        for word in words(value):
            if is_cjk(word) and len(word) > 1:
                chain.extend(word[i : i + 2] for i in range(len(word) - 1))
                unigrams.extend(word)
            else:
                chain.append(word)
        if not chain:
            continue
        if stream:
            stream.append(VALUE_SEPARATOR)
        stream.extend(chain)
        if unigrams:
            stream.append(VALUE_SEPARATOR)
            stream.extend(unigrams)
    return stream


@dataclass(frozen=True, slots=True)
class IndexDocument:
    """Everything the search index needs from one record, computed once at load."""

    # field -> token stream as Tantivy's whitespace tokenizer reads it (tokens joined by spaces:
    # one string crosses the prepare workers' pipe far cheaper than a list of short ones):
    # the keyword fields, their pinyin and reading fields, and the initials
    keyword: dict[str, str]
    exact: list[tuple[str, str]]  # (index, normalised value) for clc and language
    headings: list[tuple[str, str, str]]  # (browse index, sort key, heading as displayed)
    sort_title: str
    sort_author: str


def index_document(catalogued: BibRecord) -> IndexDocument:
    bib = searched_form(catalogued)
    keyword = {
        name: " ".join(token_stream(source(bib))) for name, source in KEYWORD_SOURCES.items()
    }
    for name, transcribed in PINYIN_SOURCES.items():
        keyword[PINYIN_FIELDS[name]] = " ".join(pinyin_stream(transcribed(bib)))
    japanese = is_japanese(bib)
    for name, transcribed in READING_SOURCES.items():
        values = [readings.heading_reading(h, t) for h, t in transcribed(bib)] if japanese else []
        keyword[READING_FIELDS[name]] = " ".join(token_stream([v for v in values if v]))
    keyword[INITIALS_FIELD] = " ".join(_initials(bib))
    exact = [("clc", normalise(v)) for v in bib.clc] + [
        ("language", normalise(v)) for v in bib.languages
    ]
    headings = []
    seen: set[tuple[str, str]] = set()
    for name, source in BROWSE_SOURCES.items():
        # filed by the searched form, listed as catalogued
        for heading, shown in zip(source(bib), source(catalogued), strict=True):
            heading = heading.strip()
            if not heading:
                continue
            key = sort_key(heading)[:500]
            if (name, key) not in seen:
                seen.add((name, key))
                headings.append((name, key, shown.strip()[:500]))
    return IndexDocument(
        keyword=keyword,
        exact=exact,
        headings=headings,
        sort_title=sort_key(bib.display_title)[:200],
        sort_author=sort_key(bib.main_author)[:200] if bib.main_author else "\uffff",
    )
