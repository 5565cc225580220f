"""How one searched word is read: as written, as pinyin, as pinyin initials, as a kana reading.

The planner builds its queries from these forms and `libgate search --explain` prints them,
so what a reader is told is what was searched. The rules, each chosen to add recall without
false hits on the title's own characters:

- Every word is searched as written (normalised and script-folded) in the keyword fields.
- A Latin word that divides wholly into pinyin syllables of which there are at least two
  (`mingdai`, `jianqiao`; not `ming`, which is too common a syllable alone) is also searched
  as those syllables, adjacent, in the pinyin fields. Consecutive words that all divide into
  syllables (`ming dai`, `lu xun`) are also read together as one pinyin phrase.
- A Latin word of three or more letters that looks like initials (at most one vowel in four
  letters: `jqzgmds`, `hlm`; English words have more) is also matched against the pinyin
  initials of whole titles and names.
- A kana word of two or more characters (hiragana is folded onto katakana) is also searched
  in the readings of Japanese titles and names.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.catalogue import pinyin
from gateway.catalogue.indexes import INITIALS_FIELD, KEYWORD_FIELDS, PINYIN_FIELDS, READING_FIELDS
from gateway.catalogue.normalise import is_cjk
from gateway.catalogue.readings import fold_reading

# How words are read, for the SRU explain record (Chinese, English): the same rules as above.
SUMMARY = (
    "检索词的读法：所有检索词按同一规范形式比较——繁体、日文新字体统一为简体（圖書館、図書館 → "
    "图书馆），平假名统一为片假名，全角半角统一；拼音（两个以上音节，如 mingdai、jian qiao）"
    "检索题名、责任者、主题的拼音；拼音首字母（如 jqzgmds）检索整个题名或人名；假名（如 "
    "わがはい）检索日文题名和人名的读音。cql.serverChoice 同样处理。",
    "How words are read: every word is compared in one folded form (traditional Chinese and "
    "Japanese shinjitai fold to simplified: 圖書館, 図書館 → 图书馆; hiragana to katakana; full "
    "to half width). A word of two or more pinyin syllables (mingdai, jian qiao) also searches "
    "the pinyin of titles, names and subjects; pinyin initials (jqzgmds) match whole titles and "
    "names; kana (わがはい) also search the readings of Japanese titles and names. "
    "cql.serverChoice reads words the same way.",
)
VOWELS = frozenset("aeiou")
MIN_INITIALS = 3
MIN_READING = 2  # kana characters
MIN_SYLLABLES = 2
KANA_ONLY_START, KANA_ONLY_END = "\u30a1", "\u30fe"


@dataclass(frozen=True)
class WordForms:
    word: str  # as searched in the keyword fields (normalised)
    pinyin: tuple[tuple[str, ...], ...] = ()  # each way it reads as syllables
    initials: str = ""
    reading: list[str] | None = None  # the bigram chain of its kana, for the reading fields


def _looks_like_initials(word: str) -> bool:
    if len(word) < MIN_INITIALS or not word.isascii() or not word.isalpha():
        return False
    return sum(ch in VOWELS for ch in word) * 4 <= len(word)


def _is_kana(word: str) -> bool:
    return all(KANA_ONLY_START <= ch <= KANA_ONLY_END for ch in word)


def _kana_chain(word: str) -> list[str]:
    return [word[i : i + 2] for i in range(len(word) - 1)]


def word_forms(word: str) -> WordForms:
    """The forms of one normalised word (from `normalise.words`)."""
    if is_cjk(word):
        if _is_kana(word) and len(word) >= MIN_READING:
            return WordForms(word, reading=_kana_chain(fold_reading(word)))
        return WordForms(word)
    splits = tuple(s for s in pinyin.splits(word) if len(s) >= MIN_SYLLABLES)
    initials = word if _looks_like_initials(word) else ""
    return WordForms(word, pinyin=splits, initials=initials)


def run_forms(words: list[str]) -> WordForms | None:
    """Several words that all read as syllables, together as one pinyin phrase (`ming dai`,
    `lu xun`); None when any word does not (kana words are read one by one)."""
    if len(words) < 2:
        return None
    syllables: list[str] = []
    for word in words:
        found = pinyin.splits(word)
        if not found:
            return None
        syllables.extend(found[0])
    return WordForms(" ".join(words), pinyin=(tuple(syllables),))


def pinyin_runs(words: list[str]) -> list[tuple[int, int, WordForms]]:
    """The longest runs of two or more consecutive words that read as syllables, as
    (start, end, forms): in `红楼梦 cao xueqin`, `cao xueqin` is one."""
    runs = []
    start = 0
    while start < len(words):
        end = start
        while end < len(words) and pinyin.splits(words[end]):
            end += 1
        run = run_forms(words[start:end])
        if run is not None:
            runs.append((start, end, run))
        start = max(end, start + 1)
    return runs


# Which fields a keyword index reaches in each form.
def keyword_fields(index: str) -> tuple[str, ...]:
    return KEYWORD_FIELDS if index == "any" else (index,)


def pinyin_fields(index: str) -> tuple[str, ...]:
    if index == "any":
        return tuple(PINYIN_FIELDS.values())
    return (PINYIN_FIELDS[index],) if index in PINYIN_FIELDS else ()


def reading_fields(index: str) -> tuple[str, ...]:
    if index == "any":
        return tuple(READING_FIELDS.values())
    return (READING_FIELDS[index],) if index in READING_FIELDS else ()


INITIALS_INDEXES = frozenset({"any", "title", "author"})
__all__ = [
    "INITIALS_FIELD",
    "INITIALS_INDEXES",
    "WordForms",
    "keyword_fields",
    "pinyin_fields",
    "reading_fields",
    "pinyin_runs",
    "run_forms",
    "word_forms",
]
