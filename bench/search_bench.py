"""Search latency on a generated catalogue, both engines: `python bench/search_bench.py`.

Loads the generated CNMARC file (bench/generate_cnmarc.py; cached under bench/out/) into a
fresh SQLite database and, with `--postgres DSN`, a fresh PostgreSQL schema, then runs a fixed
query mix drawn from the loaded data (seeded): CJK words, Latin words, Latin phrases, ISBN,
booleans, a very common word (first page only, with the exact hit count), author, year ranges,
title-sorted results and browse. Prints median and p99 latency per kind and the peak RSS.
Not a test: no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.catalogue.model import BibRecord  # noqa: E402
from gateway.catalogue.normalise import CJK_RUN, normalise, words  # noqa: E402
from gateway.catalogue.query import Boolean, Query, SortKey, Term  # noqa: E402
from gateway.catalogue.search import browse, search  # noqa: E402
from gateway.circulation.policy import Policy  # noqa: E402
from gateway.config import Settings  # noqa: E402
from gateway.store import Store, open_store  # noqa: E402

RULE = Policy.from_settings(Settings()).availability  # the default policy's R2

OUT = ROOT / "bench" / "out"


def generated_file(records: int) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"gen-{records}-utf-8.iso"
    if not path.exists():
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "generate_cnmarc.py"),
                "--records",
                str(records),
                "--encoding",
                "utf-8",
                "--seed",
                "1",
                "-o",
                str(path),
            ],
            check=True,
        )
    return path


def load(url: str, path: Path) -> float:
    config = OUT / f"search-{uuid.uuid4().hex[:6]}.toml"
    config.write_text(f'[storage]\nurl = "{url}"\n[loader]\nbatch_size = 1000\n', encoding="utf-8")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "load", str(path)],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )
    config.unlink()
    return time.perf_counter() - started


# Queries by kind; a browse is ("browse", the term to start from).
Mix = dict[str, list[Query | tuple[str, str]]]


def query_mix(store: Store, seed: int, per_kind: int) -> Mix:
    chooser = random.Random(seed)
    with store.read() as tx:
        count = int(tx.scalar("SELECT count(*) FROM bib_records"))
        sample = tx.execute(
            "SELECT bib FROM bib_records WHERE id % ? = 0 ORDER BY id LIMIT 3000",
            (max(count // 3000, 1),),
        )
        isbns = [
            r[0]
            for r in tx.execute(
                "SELECT value FROM bib_identifiers WHERE kind = 'isbn' ORDER BY value LIMIT 2000"
            )
        ]
    bibs = [BibRecord.from_json(r[0]) for r in sample]
    cjk_words, latin_words, phrases, authors = [], [], [], []
    frequency: Counter[str] = Counter()
    for bib in bibs:
        title = normalise(bib.title)
        for run in CJK_RUN.findall(title):
            if len(run) >= 2:
                start = chooser.randrange(0, len(run) - 1)
                cjk_words.append(run[start : start + chooser.choice((2, 2, 3, 4))])
            frequency.update(run[i : i + 2] for i in range(len(run) - 1))
        latin = [w for w in words(bib.title) if w.isascii() and w.isalpha()]
        latin_words += [w for w in latin if len(w) > 3]
        frequency.update(latin)
        if len(latin) >= 3:
            start = chooser.randrange(0, len(latin) - 2)
            phrases.append(" ".join(latin[start : start + 3]))
        if bib.names:
            authors.append(bib.names[0].name)
    common = [w for w, _ in frequency.most_common(5)]

    def pick(values: list[str]) -> list[str]:
        return [chooser.choice(values) for _ in range(per_kind)] if values else []

    mix: Mix = {
        "CJK word": [Query(Term("title", "all", w)) for w in pick(cjk_words)],
        "Latin word": [Query(Term("title", "all", w)) for w in pick(latin_words)],
        "Latin phrase": [Query(Term("title", "adj", p)) for p in pick(phrases)],
        "ISBN": [Query(Term("isbn", "=", i)) for i in pick(isbns)],
        "author": [Query(Term("author", "all", a)) for a in pick(authors)],
        "boolean": [
            Query(Boolean("and", Term("title", "all", a), Term("any", "all", b)))
            for a, b in zip(pick(cjk_words), pick(latin_words + cjk_words), strict=False)
        ],
        "common word": [Query(Term("any", "all", w)) for w in pick(common)],
        "title-sorted": [
            Query(Term("title", "all", w), (SortKey("title"),)) for w in pick(cjk_words)
        ],
        "year range": [
            Query(Boolean("and", Term("title", "all", w), Term("year", "within", "1990 2010")))
            for w in pick(cjk_words)
        ],
        "browse": [("browse", w) for w in pick(cjk_words)],
    }
    return mix


def run_mix(store: Store, database: str, mix: Mix) -> dict[str, tuple[float, float, float]]:
    results = {}
    for kind, queries in mix.items():
        if not queries:
            continue
        timings, hits = [], []
        for query in queries:
            started = time.perf_counter()
            if isinstance(query, tuple):
                entries = browse(store, database, "title", query[1], count=10)
                hits.append(len(entries))
            else:
                hits.append(search(store, query, database, availability=RULE, limit=10).total)
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
        results[kind] = (statistics.median(timings), p99, statistics.mean(hits))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--per-kind", type=int, default=200)
    parser.add_argument(
        "--postgres", metavar="DSN", help="also PostgreSQL (e.g. postgresql:///test)"
    )
    args = parser.parse_args()
    path = generated_file(args.records)
    engines: list[tuple[str, str, str | None]] = []
    sqlite_db = OUT / f"search-{args.records}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(sqlite_db) + suffix).unlink(missing_ok=True)
    engines.append(("SQLite", f"sqlite:///{sqlite_db}", None))
    admin = None
    if args.postgres:
        import psycopg

        schema = "bench_" + uuid.uuid4().hex[:8]
        admin = psycopg.connect(args.postgres, autocommit=True)
        admin.execute(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in args.postgres else "?"
        engines.append(
            ("PostgreSQL", f"{args.postgres}{separator}options=-csearch_path%3D{schema}", schema)
        )
    try:
        print(
            f"catalogue: {args.records} generated records ({path.name}); {args.per_kind} queries per kind\n"
        )
        for name, url, _ in engines:
            seconds = load(url, path)
            store = open_store(url)
            mix = query_mix(store, 7, args.per_kind)
            run_mix(store, "main", {k: v[:10] for k, v in mix.items()})  # warm caches
            results = run_mix(store, "main", mix)
            store.close()
            print(
                f"### {name} (load with index: {seconds:.1f} s, {args.records / seconds:,.0f} records/s)\n"
            )
            print("| query kind | median ms | p99 ms | mean hits |")
            print("|---|---|---|---|")
            for kind, (median, p99, mean_hits) in results.items():
                print(f"| {kind} | {median:.2f} | {p99:.2f} | {mean_hits:,.0f} |")
            print()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of the searching process: {peak:.0f} MB")
    finally:
        if admin is not None:
            for _, _, engine_schema in engines:
                if engine_schema:
                    admin.execute(f'DROP SCHEMA "{engine_schema}" CASCADE')
            admin.close()


if __name__ == "__main__":
    main()
