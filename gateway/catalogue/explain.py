"""How a query was read, for people: each term's index, the fields it reached, and each word's
searched forms (folded script, pinyin, initials, kana reading). `libgate search --explain`
prints it; it is built from the same decisions the planner makes (`word_forms`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.catalogue.indexes import INDEXES, INITIALS_FIELD, KEYWORD
from gateway.catalogue.normalise import words
from gateway.catalogue.query import Query, terms
from gateway.catalogue.word_forms import (
    INITIALS_INDEXES,
    keyword_fields,
    pinyin_fields,
    pinyin_runs,
    reading_fields,
    run_forms,
    word_forms,
)


@dataclass(frozen=True)
class WordReading:
    written: str  # as typed
    searched: str  # normalised and script-folded
    pinyin: list[str] = field(default_factory=list)  # each syllable reading, spaced
    initials: str = ""
    reading: str = ""  # katakana


@dataclass(frozen=True)
class TermReading:
    index: str
    relation: str
    value: str
    truncation: str
    fields: list[str]
    words: list[WordReading]
    together_as_pinyin: list[str] = field(default_factory=list)  # runs read as one phrase

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "relation": self.relation,
            "value": self.value,
            "truncation": self.truncation,
            "fields": self.fields,
            "words": [w.__dict__ for w in self.words],
            "together_as_pinyin": self.together_as_pinyin,
        }


def explain(query: Query) -> list[TermReading]:
    found = []
    for term in terms(query.root):
        spec = INDEXES.get(term.index)
        if spec is None or spec.kind != KEYWORD or term.relation == "exact":
            found.append(
                TermReading(
                    term.index, term.relation, term.value, term.truncation, [term.index], []
                )
            )
            continue
        readings: list[WordReading] = []
        reached = list(keyword_fields(term.index))
        searched = words(term.value)
        typed = term.value.split()
        # The typed word beside its searched form, where typing and searching split alike
        # ('94中国 is one typed word and two searched ones: then the searched form is shown).
        shown = typed if len(typed) == len(searched) else searched
        for written, word in zip(shown, searched, strict=True):
            forms = word_forms(word)
            readings.append(
                WordReading(
                    written,
                    word,
                    [" ".join(s) for s in forms.pinyin],
                    forms.initials if term.index in INITIALS_INDEXES else "",
                    word if forms.reading else "",
                )
            )
            if forms.pinyin:
                reached.extend(f for f in pinyin_fields(term.index) if f not in reached)
            if forms.initials and term.index in INITIALS_INDEXES and INITIALS_FIELD not in reached:
                reached.append(INITIALS_FIELD)
            if forms.reading:
                reached.extend(f for f in reading_fields(term.index) if f not in reached)
        if term.relation == "adj":
            run = run_forms(searched)
            together = [" ".join(run.pinyin[0])] if run is not None else []
        elif term.relation == "any":
            together = []
        else:
            together = [" ".join(run.pinyin[0]) for _, _, run in pinyin_runs(searched)]
        if together:
            reached.extend(f for f in pinyin_fields(term.index) if f not in reached)
        found.append(
            TermReading(
                term.index, term.relation, term.value, term.truncation, reached, readings, together
            )
        )
    return found


def explain_lines(syntax: str, query: Query) -> list[str]:
    """The reading as lines of text (the CLI's --explain)."""
    lines = [f"read as: {syntax}"]
    for term in explain(query):
        truncation = " (words starting with it)" if term.truncation == "right" else ""
        lines.append(f"term: {term.index} {term.relation} {term.value!r}{truncation}")
        lines.append(f"  fields: {', '.join(term.fields)}")
        for word in term.words:
            parts = [f"searched as {word.searched}"]
            if word.pinyin:
                parts.append("pinyin " + " | ".join(word.pinyin))
            if word.initials:
                parts.append(f"pinyin initials {word.initials}")
            if word.reading:
                parts.append(f"kana reading {word.reading}")
            lines.append(f"  word {word.written!r}: " + "; ".join(parts))
        for together in term.together_as_pinyin:
            lines.append(f"  together as pinyin: {together}")
    return lines
