"""Which stored record a loaded record overlays: match rules made of ordered match points,
and the view of the catalogue they look in.

A rule is a list of match points tried in order (`[[databases]] match`, or `load --match`):
the first point that finds exactly one record matches; a point that finds several is a reject
naming them; a point that finds none (or does not apply: a record without ISBN) passes to the
next; when no point matches, the record is new.

- `001`: the record's id (its 001, or the stable id of a record without one);
- `isbn`, `issn`: any of the record's (normalised) ISBNs / ISSNs;
- `title+author+year`: the folded title, main author and year together (all three needed).

`--match 001` is the rule `001`; `--match isbn` is `isbn, 001` (ISBN first, then the id);
`--match none` has no point: every record is new, and one whose id is already stored is
`ignored`. A point other than 001 that finds record X, for a record whose id is another stored
record Y, is a reject: overlaying X would leave two records with that 001.

The view is the store as the load's transaction reads it, plus what the load decided and has
not written yet (`pending`): new records of the batch in hand (inserted together at its end)
and, in a dry run, everything the run would have written. Records in `pending` hide their
stored rows (a record's id never changes), so a match always sees each record as the load has left it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gateway.catalogue import repository
from gateway.catalogue.normalise import normalise
from gateway.catalogue.repository import StoredItem, StoredRecord
from gateway.config import MATCH_POINTS
from gateway.store import Transaction
from marc.bibliographic import BibRecord
from marc.errors import RecordRejected

SHORTHANDS: dict[str, tuple[str, ...]] = {"001": ("001",), "isbn": ("isbn", "001"), "none": ()}
ON_MATCH = ("replace", "ignore", "merge-copies")
ON_NEW = ("add", "ignore")
ON_DUPLICATE = ("reject", "last")
TitleKey = tuple[str, str, int]


@dataclass(frozen=True)
class MatchRule:
    """Ordered match points; `spec` is how the rule was written (the report's `match`)."""

    spec: str
    points: tuple[str, ...]


def parse_match(spec: str | Sequence[str]) -> MatchRule:
    """`001`, `isbn`, `none`, or match points separated by commas (`001,isbn,title+author+year`);
    a list is the points of `[[databases]] match`. ValueError names what is wrong."""
    if isinstance(spec, str):
        text = spec.strip()
        if text in SHORTHANDS:
            return MatchRule(text, SHORTHANDS[text])
        parts = [p.strip() for p in text.split(",")]
    else:
        parts = [p.strip() for p in spec]
        text = ",".join(parts)
        if len(parts) == 1 and parts[0] in SHORTHANDS:
            return MatchRule(parts[0], SHORTHANDS[parts[0]])
    if parts == ["none"] or parts == []:
        return MatchRule("none", ())
    unknown = [p for p in parts if p not in MATCH_POINTS]
    if unknown:
        raise ValueError(
            f"unknown match point {unknown[0]!r}; known: {', '.join(MATCH_POINTS)}"
            " (or none; isbn alone means isbn,001)"
        )
    if len(set(parts)) != len(parts):
        raise ValueError(f"match point listed twice in {text!r}")
    return MatchRule(text, tuple(parts))


def title_key(bib: BibRecord) -> TitleKey | None:
    """The `title+author+year` point's key, None when the record lacks one of the three."""
    title, author = normalise(bib.display_title), normalise(bib.main_author)
    if not title or not author or bib.year is None:
        return None
    return (title, author, bib.year)


@dataclass
class PendingRecord:
    """A record as the load left it, not (yet) what the store holds."""

    stored: StoredRecord
    isbns: tuple[str, ...]
    issns: tuple[str, ...]
    key: TitleKey | None
    sort_title: str
    added: bool  # not in the store before this load


@dataclass
class CatalogueView:
    """One database of the catalogue as a load sees it (see the module docstring)."""

    database: str
    records: dict[str, PendingRecord] = field(default_factory=dict)  # by record id
    items: dict[str, StoredItem] = field(default_factory=dict)  # copies the load placed
    _stored: dict[str, StoredRecord] = field(default_factory=dict)  # this batch's lookups
    _stored_items: dict[str, StoredItem] = field(default_factory=dict)
    _next_placeholder: int = -1

    def prefetch(
        self, tx: Transaction, record_ids: list[str], barcodes: list[str], *, lock: bool
    ) -> None:
        """Read the batch's records by id and its copies by barcode in a few queries (locked
        for the write to come, unless a dry run only looks)."""
        self._stored = repository.find_records(tx, self.database, record_ids, lock)
        self._stored_items = repository.items_by_barcode(tx, barcodes, lock)

    def placeholder(self) -> int:
        """A stand-in primary key for a record not inserted yet (negative: never a real one)."""
        pk = self._next_placeholder
        self._next_placeholder -= 1
        return pk

    def forget_pending(self) -> None:
        """The batch is written: the store now holds everything pending."""
        self.records.clear()
        self.items.clear()

    # --- lookups ----------------------------------------------------------------------------

    def by_id(self, record_id: str) -> StoredRecord | None:
        pending = self.records.get(record_id)
        if pending is not None:
            return pending.stored
        return self._stored.get(record_id)

    def pending(self, record_id: str) -> PendingRecord | None:
        return self.records.get(record_id)

    def item(self, barcode: str) -> StoredItem | None:
        return self.items.get(barcode) or self._stored_items.get(barcode)

    def by_identifier(
        self, tx: Transaction, kind: str, values: Iterable[str]
    ) -> list[StoredRecord]:
        found: dict[str, StoredRecord] = {}
        for value in values:
            for stored in repository.records_by_identifier(tx, self.database, kind, value):
                if stored.record_id not in self.records:
                    found.setdefault(stored.record_id, stored)
            for pending in self.records.values():
                if value in (pending.isbns if kind == "isbn" else pending.issns):
                    found.setdefault(pending.stored.record_id, pending.stored)
        return sorted(found.values(), key=lambda r: (r.pk < 0, abs(r.pk)))

    def by_title(self, tx: Transaction, key: TitleKey, sort_title: str) -> list[StoredRecord]:
        found: dict[str, StoredRecord] = {}
        for stored, title, author in repository.records_by_sort_title(
            tx, self.database, sort_title, key[2]
        ):
            if stored.record_id in self.records:
                continue
            if (normalise(title), normalise(author), key[2]) == key:
                found.setdefault(stored.record_id, stored)
        for pending in self.records.values():
            if pending.key == key:
                found.setdefault(pending.stored.record_id, pending.stored)
        return sorted(found.values(), key=lambda r: (r.pk < 0, abs(r.pk)))

    # --- what the load decided ----------------------------------------------------------------

    def put(
        self,
        stored: StoredRecord,
        bib: BibRecord,
        sort_title: str,
        *,
        added: bool,
    ) -> None:
        earlier = self.records.get(stored.record_id)
        self.records[stored.record_id] = PendingRecord(
            stored,
            bib.isbns,
            bib.issns,
            title_key(bib),
            sort_title,
            added or (earlier is not None and earlier.added),
        )

    def put_item(self, item: StoredItem) -> None:
        self.items[item.barcode] = item


@dataclass(frozen=True)
class Match:
    """The stored record a loaded record overlays, and the point that found it."""

    stored: StoredRecord
    point: str


def find_match(
    tx: Transaction,
    view: CatalogueView,
    rule: MatchRule,
    record_id: str,
    bib: BibRecord,
    sort_title: str,
) -> Match | None:
    """The first point of `rule` that finds exactly one record; RecordRejected when a point
    finds several, or when what it found is not the record the 001 names."""
    for point in rule.points:
        if point == "001":
            found = view.by_id(record_id)
            candidates = [found] if found is not None else []
            what = f"001 {record_id}"
        elif point in ("isbn", "issn"):
            # The record's own number: its first. CNMARC's later 010s carry a multi-volume
            # set's ISBN (every volume has it) or another edition's, which would match records
            # that are not this one (as loads matched before batches).
            values = (bib.isbns if point == "isbn" else bib.issns)[:1]
            if not values:
                continue
            candidates = view.by_identifier(tx, point, values)
            what = f"{point.upper()} {', '.join(values)}"
        else:
            key = title_key(bib)
            if key is None:
                continue
            candidates = view.by_title(tx, key, sort_title)
            what = f"title, author and year ({bib.display_title} / {bib.main_author} / {bib.year})"
        if not candidates:
            continue
        if len(candidates) > 1:
            ids = ", ".join(c.record_id for c in candidates[:5])
            raise RecordRejected(
                f"{what} matches {len(candidates)} records ({ids}): cannot tell which to"
                " overlay; load with --match 001"
            )
        match = candidates[0]
        if point != "001":
            same_id = view.by_id(record_id)
            if same_id is not None and same_id.pk != match.pk:
                raise RecordRejected(
                    f"{what} matches record {match.record_id} but 001 {record_id} is another record"
                )
        return Match(match, point)
    return None
