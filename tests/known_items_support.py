"""The golden known-item set (fixtures/search/known_items.tsv) and the catalogue it is written
against (fixtures/search/known_items_catalogue.tsv), read one way for the tests and for
bench/known_items.py, so that both measure the same thing."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from gateway.catalogue.loading.loader import Loader, LoadOptions
from gateway.config import BUILTIN_PROFILES, DatabaseSettings
from gateway.store import Store

ROOT = Path(__file__).resolve().parent.parent
KNOWN_ITEMS = ROOT / "fixtures" / "search" / "known_items.tsv"
CATALOGUE = ROOT / "fixtures" / "search" / "known_items_catalogue.tsv"
KINDS = (
    "zh",
    "zh-traditional",
    "ja",
    "ja-from-zh",  # simplified or traditional Chinese typed against the Japanese catalogue
    "latin",
    "mixed",
    "pinyin",
    "pinyin-initials",
    "kana-reading",
    "romaji",
)
PROFILES = {p.name: p for p in BUILTIN_PROFILES}


@dataclass(frozen=True)
class KnownItem:
    line: int  # in the TSV, for messages
    database: str
    query: str  # as a reader types it
    expected: str  # the known item's 001
    kind: str
    note: str

    @property
    def needs_top1(self) -> bool:
        """The known item must be the first hit, unless the note says `top1=no` (another record
        is as good an answer, and the note says which)."""
        return "top1=no" not in self.note

    @property
    def absent(self) -> tuple[str, ...]:
        """Records that must not be found at all (`absent=<001>` in the note): false hits."""
        return tuple(
            w.removeprefix("absent=") for w in self.note.split() if w.startswith("absent=")
        )

    def __str__(self) -> str:
        return f"line {self.line} [{self.kind}] {self.database}: {self.query!r} -> {self.expected}"


@dataclass(frozen=True)
class CatalogueFile:
    database: str
    profile: str  # holdings profile, as `libgate load --profile`
    path: Path


def read_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of a tab-separated file with a header line; no quoting (queries hold quotes)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def known_items(path: Path = KNOWN_ITEMS) -> list[KnownItem]:
    items = []
    for line, row in enumerate(read_tsv(path), start=2):
        note = row["note"] or ""
        items.append(
            KnownItem(line, row["database"], row["query"], row["expected"], row["kind"], note)
        )
    return items


def catalogue_files(path: Path = CATALOGUE) -> list[CatalogueFile]:
    return [CatalogueFile(r["database"], r["profile"], ROOT / r["file"]) for r in read_tsv(path)]


def load_catalogue(store: Store) -> None:
    """Load the catalogue into a migrated store, as `make run` loads the demo."""
    for file in catalogue_files():
        options = LoadOptions(
            database=DatabaseSettings(name=file.database), profile=PROFILES[file.profile]
        )
        report = Loader(store, options).load([file.path])
        assert all(f.rejected == 0 and f.error is None for f in report.files), file.path
