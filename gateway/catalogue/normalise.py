"""Text normalisation and tokenisation for search, and sort keys for browse. One place.

Normalisation (index and query alike): NFKC (full-width Latin → ASCII, half-width katakana →
full-width, compatibility ideographs → unified), case folding, Latin/Greek/Cyrillic diacritics
removed, and one script-folded form for Han characters: Japanese shinjitai are taken to their
traditional form (OpenCC's jp2t) and traditional to simplified (OpenCC's t2s), so 图书馆,
圖書館 and 図書館 meet, as do 历史/歷史/歴史 and 国/國. Hiragana are folded onto katakana
(がらす finds ガラス). Voicing marks are never dropped: ガラス stays apart from カラス (Koha's
ICU chain turns it into カラス); only *Latin* combining marks are dropped.

The shinjitai step skips every character that is also a common simplified Chinese character
(in GB 2312): there the Japanese reading of the character would fold an unrelated Chinese
word (芸 "rue" is not 艺 "art"; 沪 "Shanghai" is not 滤 "filter"; 糸 is not 丝 in Chinese
text), so only Japanese-only forms (図, 歴, 広, 気 …) are folded.

Words: Latin-script text splits into words; CJK text (Han, kana, hangul) has no spaces, so
each run is one word here. The index (`gateway.catalogue.indexes.token_stream`) writes a CJK
run as its chain of overlapping bigrams and, after it, its single characters; a longer CJK
query word is searched as the phrase of its bigrams, so characters scattered through a title
never match.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import opencc

# Scripts written without spaces: CJK ideographs (+ ext. A, compatibility), kana, hangul.
CJK_CHAR = (
    "\u3005\u3006\u3007\u303b"  # 々 〆 〇 〻
    "\u3040-\u30ff"  # hiragana, katakana
    "\u31f0-\u31ff"  # katakana phonetic extensions
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\uac00-\ud7af"  # hangul syllables
    "\U00020000-\U0003134f"
)
CJK_RUN = re.compile(f"[{CJK_CHAR}]+")
IS_CJK = re.compile(f"[{CJK_CHAR}]")
# A token is a CJK run or a run of letters/digits (apostrophes inside words are dropped).
_LETTER = f"(?:(?![{CJK_CHAR}])[^\\W_])"
TOKEN = re.compile(f"[{CJK_CHAR}]+|{_LETTER}+(?:['’]{_LETTER}+)*", re.UNICODE)
KATAKANA_MIDDLE_DOTS = dict.fromkeys(map(ord, "・·･"), " ")


def _per_character(converter: opencc.OpenCC, chars: list[str]) -> list[str]:
    converted: list[str] = str(converter.convert("\n".join(chars))).split("\n")
    if len(converted) != len(chars):  # a multi-character rule fired; fall back per char
        converted = [converter.convert(ch) for ch in chars]
    return converted


def _common_simplified(ch: str) -> bool:
    try:
        ch.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


# Hiragana (and its iteration marks ゝゞ) → katakana: the same syllables, one form.
HIRAGANA_TO_KATAKANA = {c: c + 0x60 for c in [*range(0x3041, 0x3097), 0x309D, 0x309E]}


@functools.cache
def _fold_table() -> dict[int, str]:
    """Han folding (shinjitai → traditional → simplified) and hiragana → katakana, character by
    character: context-free, so a query and the text it should find always fold the same way."""
    jp2t = opencc.OpenCC("jp2t.json")
    t2s = opencc.OpenCC("t2s.json")
    ranges = [(0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00), (0x20000, 0x2A6E0)]
    table: dict[int, str] = {c: chr(k) for c, k in HIRAGANA_TO_KATAKANA.items()}
    for start, end in ranges:
        chars = [chr(c) for c in range(start, end)]
        traditional = [
            t if len(t) == 1 and not _common_simplified(ch) else ch
            for ch, t in zip(chars, _per_character(jp2t, chars), strict=True)
        ]
        simple = _per_character(t2s, traditional)
        for original, folded in zip(chars, simple, strict=True):
            if folded != original and len(folded) == 1:
                table[ord(original)] = folded
    return table


def fold_script(text: str) -> str:
    """Han and kana folded to the one searched form (no case or width folding)."""
    return text.translate(_fold_table())


def _strip_latin_marks(text: str) -> str:
    """Remove combining marks U+0300-036F (Latin, Greek, Cyrillic accents) only."""
    decomposed = unicodedata.normalize("NFD", text)
    if decomposed == text and text.isascii():
        return text
    kept = "".join(ch for ch in decomposed if not "\u0300" <= ch <= "\u036f")
    return unicodedata.normalize("NFC", kept)


# Subjects, series, publishers and names repeat from record to record, and a record's title
# is normalised for its token stream, its sort key and its heading: a bounded cache of the two
# folds (pure functions of their text) saves about a tenth of preparing a record at load.
FOLD_CACHE = 8192


@functools.lru_cache(maxsize=FOLD_CACHE)
def normalise(text: str) -> str:
    """The folded form of `text` that both the index and queries use."""
    if not text:
        return ""
    if text.isascii():
        return " ".join(text.casefold().split())
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = _strip_latin_marks(folded)
    if IS_CJK.search(folded):
        folded = folded.translate(_fold_table())
    return " ".join(folded.translate(KATAKANA_MIDDLE_DOTS).split())


def words(text: str) -> list[str]:
    """Normalised words: Latin words (apostrophes dropped: O'Brien → obrien), and whole CJK
    runs (not yet split into n-grams). Every word is letters, digits and marks only, so an
    FTS tokenizer sees exactly one token per word."""
    found = TOKEN.findall(normalise(text))
    return [w.replace("'", "").replace("’", "") if "'" in w or "’" in w else w for w in found]


def is_cjk(word: str) -> bool:
    return bool(IS_CJK.match(word))


# --- sort keys (browse order and sorting) --------------------------------------------------


@functools.cache
def _han_key(ch: str) -> str:
    """Pinyin with tone number of one character (most common reading; cached: pypinyin
    costs ~30 µs a call and a catalogue uses a few thousand distinct characters)."""
    # Imported on first use: pypinyin loads its dictionaries on import (~0.3 s, python -X
    # importtime), which only sorting and browsing headings with Han characters need.
    import pypinyin

    syllables = pypinyin.lazy_pinyin(ch, style=pypinyin.Style.TONE3, neutral_tone_with_five=True)
    syllable = syllables[0] if syllables else ch
    return syllable if syllable != ch else f"~{ch}"


@functools.lru_cache(maxsize=FOLD_CACHE)
def sort_key(heading: str) -> str:
    """Browse and sort order: Latin alphabetically; Chinese by Hanyu Pinyin with tone number,
    character by character, as Chinese catalogues file; kana in gojūon order (katakana filed
    as hiragana); digits first. Latin and pinyin interleave, as a pinyin-ordered catalogue does.
    Ties keep the code point order of the original so the key is total.
    """
    text = normalise(heading)
    parts: list[str] = []
    for ch in text:
        if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or ch > "\uffff":
            parts.append(_han_key(ch) + " ")
        elif "\u30a1" <= ch <= "\u30f6":
            parts.append("\u3000" + chr(ord(ch) - 0x60))  # katakana → hiragana, after Latin
        elif "\u3041" <= ch <= "\u3096":
            parts.append("\u3000" + ch)
        elif ch.isalnum() or ch == " ":
            parts.append(ch)
    key = "".join(parts).strip()
    return f"{key}\x01{text}"
