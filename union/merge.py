"""Union search results from many catalogues as one list: the same work from several libraries
is one result listing every library that holds it; results ranked by relevance to the query
(or sorted by title, author or year) and counted into facets (library, year, language).

Pure functions over records already read into the one display model (`marc`'s BibRecord); the
fan-out that fetches them is elsewhere. pazpar2's mergekey/rank/termlist are the model; the
keys here are ours: an ISBN or ISSN first, then the folded title, first author and year.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gateway.catalogue.normalise import is_cjk, normalise, sort_key, words
from gateway.circulation.ill_partner_copies import PartnerCopy
from gateway.union_port import FACETS, SORTS  # the one list: the portal offers the same orders
from marc.bibliographic import BibRecord
from marc.identifiers import normalise_isbn, normalise_issn

# How much a query word found in each part of a record counts (title over subject over notes).
FIELD_WEIGHTS = (("title", 4.0), ("author", 2.0), ("subject", 1.5), ("other", 0.5))


@dataclass(frozen=True)
class SourceRecord:
    """One record as one target sent it: which target, its id there, its place in that
    target's answer (0 = first), the record, and the copies the target showed with it
    (`holdings_known`: the target sends holdings, so no copies means it holds none)."""

    target: str
    record_id: str
    position: int
    bib: BibRecord
    copies: tuple[PartnerCopy, ...] = ()
    holdings_known: bool = False


@dataclass
class MergedRecord:
    """One work: the fullest of its records for display, and every source that holds it."""

    key: str
    bib: BibRecord
    sources: list[SourceRecord] = field(default_factory=list)
    score: float = 0.0

    @property
    def targets(self) -> list[str]:
        """The libraries holding it, in the order they answered with it."""
        return list(dict.fromkeys(s.target for s in self.sources))


# Counts by facet name (gateway.union_port.FACETS), each (value, works) most frequent first.
Facets = dict[str, list[tuple[str, int]]]


def standard_numbers(bib: BibRecord) -> set[str]:
    """The record's ISBNs (as ISBN-13) and ISSNs, as match keys."""
    numbers = {f"isbn:{n}" for n in map(normalise_isbn, bib.isbns) if n}
    numbers |= {f"issn:{n}" for n in map(normalise_issn, bib.issns) if n}
    return numbers


def work_key(bib: BibRecord) -> str:
    """Folded title + first author + year: 剑桥中国明代史 / 劍橋中國明代史 and full-width or
    half-width forms meet, as they do in the search index."""
    title = "".join(words(bib.display_title))
    author = "".join(words(bib.main_author))
    return f"work:{title}|{author}|{bib.year or ''}"


def merge(records: Iterable[SourceRecord]) -> list[MergedRecord]:
    """Group records of the same work. Two records are one work when they share an ISBN or
    ISSN, or when they share the title-author-year key and do not both carry standard numbers
    that differ (two editions with their own ISBNs stay apart). First come, first listed."""
    records = list(records)
    parent = list(range(len(records)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    numbers = [standard_numbers(r.bib) for r in records]
    by_number: dict[str, int] = {}
    by_work: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        for number in numbers[i]:
            if number in by_number:
                parent[root(i)] = root(by_number[number])
            else:
                by_number[number] = i
        by_work.setdefault(work_key(record.bib), []).append(i)
    for members in by_work.values():
        for i in members[1:]:
            first = members[0]
            if numbers[i] and numbers[first] and not numbers[i] & numbers[first]:
                continue  # different editions: each has its own numbers
            parent[root(i)] = root(first)
    groups: dict[int, list[int]] = {}
    for i in range(len(records)):
        groups.setdefault(root(i), []).append(i)
    merged = []
    for members in sorted(groups.values(), key=lambda m: m[0]):
        sources = [records[i] for i in members]
        best = max(sources, key=lambda s: _completeness(s.bib))
        numbered = sorted(set().union(*(numbers[i] for i in members)))
        key = numbered[0] if numbered else work_key(best.bib)
        merged.append(MergedRecord(key, best.bib, sources))
    return merged


def _completeness(bib: BibRecord) -> int:
    """How much of a work a record describes: the display takes the fullest."""
    return sum(
        1
        for value in (
            bib.title,
            bib.responsibility,
            bib.publisher,
            bib.date,
            bib.extent,
            bib.subjects,
            bib.isbns,
            bib.clc,
            bib.series,
            bib.summary,
        )
        if value
    )


def _query_words(query_text: str) -> list[str]:
    """The query's words, CJK runs cut into overlapping pairs as the index does."""
    found: list[str] = []
    for word in words(query_text):
        if is_cjk(word) and len(word) > 2:
            found += [word[i : i + 2] for i in range(len(word) - 1)]
        else:
            found.append(word)
    return found


def _fields(bib: BibRecord) -> dict[str, str]:
    return {
        "title": normalise(" ".join([bib.display_title, *bib.other_titles])),
        "author": normalise(" ".join(n.name for n in bib.names)),
        "subject": normalise(" ".join(bib.subjects)),
        "other": normalise(" ".join([bib.publisher, *bib.series, *bib.notes, bib.summary])),
    }


def relevance(record: MergedRecord, query_words: Sequence[str]) -> float:
    """Field-weighted matches of the query's words, an exact title above all, and a little
    for each more library holding it (a work many libraries hold is a likelier known item)."""
    if not query_words:
        return float(len(record.targets))
    fields = _fields(record.bib)
    score = 0.0
    for word in query_words:
        for name, weight in FIELD_WEIGHTS:
            if word in fields[name]:
                score += weight
                break
    joined = "".join(query_words)
    if joined and joined == "".join(words(record.bib.display_title)):
        score += 10.0
    return score + math.log1p(len(record.targets)) * 0.5


def rank(
    merged: list[MergedRecord], query_text: str, sort: str = "relevance"
) -> list[MergedRecord]:
    """Relevance (ties: the order the targets answered), or title, author or year."""
    query_words = _query_words(query_text)
    for record in merged:
        record.score = relevance(record, query_words)
    if sort == "title":
        return sorted(merged, key=lambda r: sort_key(r.bib.display_title))
    if sort == "author":
        return sorted(merged, key=lambda r: sort_key(r.bib.main_author) or "\uffff")
    if sort == "year":
        return sorted(merged, key=lambda r: -(r.bib.year or 0))
    order = {id(r): i for i, r in enumerate(merged)}
    return sorted(merged, key=lambda r: (-r.score, order[id(r)]))


def facet_values(record: MergedRecord) -> dict[str, set[str]]:
    """The work's values for each facet (gateway.union_port.FACETS): the libraries holding it,
    its year, its languages."""
    return {
        "library": set(record.targets),
        "year": {str(record.bib.year)} if record.bib.year else set(),
        "language": set(record.bib.languages),
    }


def facets(merged: Sequence[MergedRecord], most: int = 20) -> Facets:
    """Counts of results by each facet (holding library, year, language), most frequent
    first, by FACETS name."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in FACETS}
    for record in merged:
        for name, values in facet_values(record).items():
            counts[name].update(values)
    return {name: counts[name].most_common(most) for name in FACETS}


def narrowed(merged: Sequence[MergedRecord], only: Sequence[tuple[str, str]]) -> list[MergedRecord]:
    """The works that have every (facet, value) asked for."""
    if not only:
        return list(merged)
    kept = []
    for record in merged:
        values = facet_values(record)
        if all(value in values[name] for name, value in only):
            kept.append(record)
    return kept


__all__ = [
    "FIELD_WEIGHTS",
    "SORTS",
    "Facets",
    "MergedRecord",
    "SourceRecord",
    "facet_values",
    "facets",
    "merge",
    "narrowed",
    "rank",
    "relevance",
    "standard_numbers",
    "work_key",
]
