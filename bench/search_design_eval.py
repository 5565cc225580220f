"""Which CJK index design? Recall and precision on a known-item set built from the fixtures.

Known items: every title in the fixture catalogues (demo, real BNU CNMARC, the Japanese CNMARC
catalogue, the Chinese and Japanese MARC21 records, the search-test extras). Queries: each
title's CJK substrings of 1-4 characters (the "word inside a title" a reader types) and the
full titles. A record is relevant when its normalised title contains the query as a contiguous
substring. Designs compared:

- `bigram-chain` (ours, run for real through the SQL planner on SQLite): phrase of bigrams.
- `unigram-and` (ICU per-character, as Koha's chain): every character anywhere in the title.
- `bigram-bag`: every bigram anywhere (bigrams without positions).
- `whole-run` (no segmentation, as Zebra's default): the query equals a whole CJK run.
- `unigram-and + kana folding`: as Koha, with voiced kana folded (ガラス = カラス).

Run: `python bench/search_design_eval.py` (a few seconds; writes nothing but a temp database).
"""

from __future__ import annotations

import sys
import tempfile
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.catalogue.indexes import KEYWORD_SOURCES  # noqa: E402
from gateway.catalogue.loading.loader import Loader, LoadOptions  # noqa: E402
from gateway.catalogue.model import BibRecord  # noqa: E402
from gateway.catalogue.normalise import CJK_RUN, normalise  # noqa: E402
from gateway.catalogue.query import Query, Term  # noqa: E402
from gateway.catalogue.search import search  # noqa: E402
from gateway.circulation.policy import Policy  # noqa: E402
from gateway.config import BUILTIN_PROFILES, DatabaseSettings, Settings  # noqa: E402
from gateway.store import open_store  # noqa: E402
from gateway.store.migrate import migrate  # noqa: E402

RULE = Policy.from_settings(Settings()).availability  # the default policy's R2

ROOT = Path(__file__).resolve().parent.parent
FILES = [
    ("fixtures/marc/demo_main.iso", "libgate"),
    ("fixtures/marc/real/cnmarc/bnu_cnmarc_10_utf8.iso", "bnu"),
    ("fixtures/marc/japanese/japanese_cnmarc.iso", "libgate"),
    ("fixtures/marc/real/cjk/yaz_marccol1.u8.marc", "none"),
    ("fixtures/marc/real/cjk/marc4j_pride-and-prejudice-fixed.mrc", "none"),
    ("fixtures/marc/real/large/mrrc-testbed_loc_bib_sample.mrc", "none"),
]


def fold_voicing(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if ch not in "\u3099\u309a")


def designs(query: str, title: str) -> dict[str, bool]:
    runs = CJK_RUN.findall(title)
    bigrams = {run[i : i + 2] for run in runs for i in range(len(run) - 1)}
    q_bigrams = {query[i : i + 2] for i in range(len(query) - 1)} or {query}
    return {
        "unigram-and": all(ch in title for ch in query),
        "bigram-bag": all(b in bigrams or (len(query) == 1 and query in title) for b in q_bigrams),
        "whole-run": query in runs,
        "unigram-and + kana folding": all(ch in fold_voicing(title) for ch in fold_voicing(query)),
    }


def main() -> None:
    workdir = Path(tempfile.mkdtemp())
    store = open_store(f"sqlite:///{workdir / 'eval.db'}")
    migrate(store)
    profiles = {p.name: p for p in BUILTIN_PROFILES}
    database = DatabaseSettings(name="main")
    for path, profile in FILES:
        if (ROOT / path).exists():
            Loader(store, LoadOptions(database=database, profile=profiles[profile])).load(
                [ROOT / path]
            )
    with store.read() as tx:
        records = {
            rid: BibRecord.from_json(bib)
            for rid, bib in tx.execute("SELECT record_id, bib FROM bib_records")
        }
    # What the title index holds: the title proper with its parts, and the other titles; values
    # are kept apart (a substring never spans two values).
    titles = {
        rid: " | ".join(normalise(v) for v in KEYWORD_SOURCES["title"](bib))
        for rid, bib in records.items()
    }
    queries: set[str] = set()
    for title in titles.values():
        for run in CJK_RUN.findall(title):
            queries.add(run)
            for size in (1, 2, 3, 4):
                queries.update(run[i : i + size] for i in range(0, max(len(run) - size + 1, 0)))
    queries |= {"ガラス", "カラス"}
    names = [
        "bigram-chain (ours)",
        "unigram-and",
        "bigram-bag",
        "whole-run",
        "unigram-and + kana folding",
    ]
    totals = {name: [0, 0, 0] for name in names}  # true positives, returned, relevant
    for query in sorted(queries):
        relevant = {rid for rid, title in titles.items() if query in title}
        found = {
            "bigram-chain (ours)": {
                h.record_id
                for h in search(
                    store, Query(Term("title", "all", query)), "main", availability=RULE, limit=1000
                ).hits
            }
        }
        for name in names[1:]:
            found[name] = {rid for rid, title in titles.items() if designs(query, title)[name]}
        for name in names:
            totals[name][0] += len(found[name] & relevant)
            totals[name][1] += len(found[name])
            totals[name][2] += len(relevant)
    print(
        f"{len(records)} records, {len(queries)} CJK queries (substrings of 1-4 characters and whole runs)\n"
    )
    print("| design | precision | recall | wrong hits |")
    print("|---|---|---|---|")
    for name in names:
        tp, returned, relevant_total = totals[name]
        precision = tp / returned if returned else 1.0
        recall = tp / relevant_total if relevant_total else 1.0
        print(f"| {name} | {precision:.4f} | {recall:.4f} | {returned - tp} |")
    store.close()


if __name__ == "__main__":
    main()
