"""Pinyin for searching Chinese headings: what the index writes and how a Latin word is read.

Chinese OPACs let readers type a title in pinyin, joined (`mingdai`), spaced (`ming dai`) or
as the initials of the whole title (`jqzgmds` for 剑桥中国明代史). Here:

- A heading's pinyin is a stream of toneless syllables, one token each, so joined and spaced
  forms meet: catalogers' pinyin (CNMARC 200 $A/$9, 7XX $A/$9) is split into syllables where
  its words allow, and the syllables generated with pypinyin, whose phrase dictionary picks
  the reading of heteronyms from context (银行 yin hang, 长城 chang cheng), are indexed
  beside it where they differ.
  Han characters are script-folded first, so a Japanese 図書館 reads tu shu guan too.
- A query word is pinyin only when it splits wholly into syllables; it is then searched as the
  phrase of those syllables, every way it splits by pinyin's spelling rule: inside a word a
  syllable starting with a, o or e follows an apostrophe (`xi'an` is 西安, `xian` is 先), so
  the spelled split comes first; readers leave apostrophes out (`tiananmen`), so the splits
  that need one are searched too, after it.
- Initials: the first letter of each syllable of a heading's Han characters, one token.

ü is written u (readers type lv, lu or lü for 绿; 女 nü and 怒 nu then share a form, which
costs less than missing either).
"""

from __future__ import annotations

import functools
import re
import unicodedata

from gateway.catalogue.normalise import FOLD_CACHE, fold_script

# Interjection readings with no vowel (m, n, ng, hm, hng) would split ordinary words into noise.
_NOT_SYLLABLES = frozenset({"m", "n", "ng", "hm", "hng", "r", "e^", "ê"})
MAX_SPLITS = 8  # ways one query word may split into syllables
MAX_SPLIT_WORD = 40  # characters: longer words are not tried as pinyin
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_LATIN_WORD = re.compile(r"[a-z]+(?:['’][a-z]+)*|[0-9]+")
_VOWEL_START = ("a", "o", "e")


def _toneless(syllable: str) -> str:
    stripped = "".join(
        ch for ch in unicodedata.normalize("NFD", syllable) if not unicodedata.combining(ch)
    )
    return stripped.lower().replace("v", "u")


@functools.cache
def syllables() -> frozenset[str]:
    """Every toneless Hanyu Pinyin syllable pypinyin knows (about 410)."""
    from pypinyin.pinyin_dict import pinyin_dict

    found: set[str] = set()
    for readings in pinyin_dict.values():
        for reading in readings.split(","):
            syllable = _toneless(reading)
            if syllable.isascii() and syllable.isalpha() and syllable not in _NOT_SYLLABLES:
                found.add(syllable)
    return frozenset(found)


def fold_latin(word: str) -> str:
    """A Latin word as pinyin is compared: lower case, tone marks gone, ü and v as u."""
    return _toneless(word).replace("’", "'")


def _split_part(part: str, strict: bool = True) -> list[tuple[str, ...]]:
    known = syllables()
    # ways[i]: the splits of part[i:], built from the end; capped so a long word cannot explode.
    ways: list[list[tuple[str, ...]]] = [[] for _ in range(len(part) + 1)]
    ways[len(part)] = [()]
    for start in range(len(part) - 1, -1, -1):
        found: list[tuple[str, ...]] = []
        bare_vowels: tuple[str, ...]
        if start > 0 and part[start] in _VOWEL_START:
            if strict:
                continue  # would need an apostrophe before it
            bare_vowels = ("a", "o", "e")  # 阿 哦 鹅 alone: too rare to guess mid-word
        else:
            bare_vowels = ()
        for end in range(min(len(part), start + 6), start, -1):  # syllables are ≤ 6 letters
            piece = part[start:end]
            if piece in known and piece not in bare_vowels:
                found.extend((piece, *rest) for rest in ways[end])
                if len(found) >= MAX_SPLITS:
                    break
        ways[start] = found[:MAX_SPLITS]
    return ways[0]


@functools.lru_cache(maxsize=FOLD_CACHE)
def splits(word: str) -> tuple[tuple[str, ...], ...]:
    """Every way `word` divides wholly into pinyin syllables (at most MAX_SPLITS): first the
    splits pinyin's spelling allows, then those that need a left-out apostrophe (`xian` is
    also xi an, 西安, as readers type it); empty when it does not divide (most English words).
    Apostrophes that are there divide syllables (xi'an)."""
    word = fold_latin(word)
    if not word.isascii() or len(word) > MAX_SPLIT_WORD:
        return ()
    parts = word.split("'")
    if not all(p.isalpha() for p in parts):
        return ()
    combined: list[tuple[str, ...]] = [()]
    for part in parts:
        strict = _split_part(part)
        found = strict + [s for s in _split_part(part, strict=False) if s not in strict]
        if not found:
            return ()
        combined = [(*a, *b) for a in combined for b in found][:MAX_SPLITS]
    return tuple(combined)


def _catalogued_tokens(text: str) -> list[str]:
    """Catalogers' pinyin as syllables: each word split where it divides wholly into
    syllables (the fewest), other words (digits, names in other romanisations) kept."""
    tokens: list[str] = []
    for word in _LATIN_WORD.findall(fold_latin(text)):
        found = splits(word)
        tokens.extend(found[0] if found else (word,))
    return tokens


@functools.cache
def _single_readings() -> dict[str, str]:
    """Han characters with one toneless reading (中 is zhong whatever its tone): these need
    no context, and looking them up costs a dict access instead of a pypinyin call."""
    from pypinyin.pinyin_dict import pinyin_dict

    single: dict[str, str] = {}
    for code, readings in pinyin_dict.items():
        toneless = {_toneless(r) for r in readings.split(",")}
        if len(toneless) == 1:
            (syllable,) = toneless
            if syllable.isascii() and syllable.isalpha():
                single[chr(code)] = syllable
    return single


_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")


@functools.cache
def _toneless_reading(reading: str) -> str:
    return _toneless(reading)


def _run_syllables(run: str) -> list[str]:
    """The syllables of a run of Han characters, as pypinyin's `lazy_pinyin` reads them
    (its segmentation into dictionary phrases, then each phrase's reading, else each
    character's most common one), without its style machinery: the same answer at a seventh
    of the cost (`tests/test_search_as_typed.py` compares the two)."""
    single = _single_readings()
    if all(ch in single for ch in run):
        return [single[ch] for ch in run]
    # A heteronym in the run (行 xing/hang, 长 chang/zhang): read in context. Imported on first
    # use (the dictionaries take ~0.3 s to load).
    from pypinyin.phrases_dict import phrases_dict
    from pypinyin.pinyin_dict import pinyin_dict
    from pypinyin.seg.mmseg import seg

    found: list[str] = []
    for word in seg.cut(run):
        phrase = phrases_dict.get(word) if len(word) > 1 else None
        if phrase:
            found.extend(_toneless_reading(readings[0]) for readings in phrase)
            continue
        for ch in word:
            syllable = single.get(ch)
            if syllable is None:
                readings = pinyin_dict.get(ord(ch))
                if readings is None:
                    continue
                syllable = _toneless_reading(readings.split(",")[0])
            found.append(syllable)
    return [s for s in found if s.isascii() and s.isalpha()]


@functools.lru_cache(maxsize=FOLD_CACHE)
def _generated(text: str) -> tuple[tuple[str, ...], str]:
    """(syllable tokens with the heading's Latin words and digits in place, initials of its Han
    characters)."""
    folded = fold_script(text)
    tokens: list[str] = []
    letters: list[str] = []
    at = 0
    for match in _HAN_RUN.finditer(folded):
        tokens.extend(_LATIN_WORD.findall(fold_latin(folded[at : match.start()])))
        syllables_found = _run_syllables(match.group())
        tokens.extend(syllables_found)
        letters.extend(s[0] for s in syllables_found)
        at = match.end()
    tokens.extend(_LATIN_WORD.findall(fold_latin(folded[at:])))
    return tuple(tokens), "".join(letters)


def has_han(text: str) -> bool:
    return bool(_HAN.search(text))


def heading_syllables(text: str, catalogued: str = "") -> list[str]:
    """The pinyin tokens of one heading: the cataloger's pinyin where given, else generated
    from its Han characters (Latin words and digits in the heading keep their place).
    Empty for a heading without Han characters."""
    if catalogued.strip():
        return _catalogued_tokens(catalogued)
    if not has_han(text):
        return []
    return list(_generated(text)[0])


def heading_pinyin(text: str, catalogued: str = "") -> list[list[str]]:
    """Every pinyin of a heading to index: the cataloger's and, where it differs, the
    generated one (catalogers err too: BNU gives 叶震 as Xie Zhen; readers type ye zhen)."""
    found = [heading_syllables(text, catalogued)] if catalogued.strip() else []
    generated = list(_generated(text)[0]) if has_han(text) else []
    if generated and generated not in found:
        found.append(generated)
    return [tokens for tokens in found if tokens]


def initials(text: str) -> str:
    """The first letters of the pinyin of a heading's Han characters: 剑桥中国明代史 → jqzgmds."""
    if not has_han(text):
        return ""
    return _generated(text)[1]
