"""Tantivy against the SQL planner it replaced: equal answers, and timings.

The baseline is the libgate of a git revision before the switch (default `ff4bb1d`, the last
commit searching with FTS5 / tsvector), unpacked with `git archive` into a temporary
directory; the candidate is this tree. Each runs in its own process (`--worker`) over its own
store loaded from the same files, and prints JSON: for every query the exact hit count and the
first 20 record ids, for every browse its headings, and timings. The main process compares.

Queries (one golden set; `tests/test_search.py`, `test_sru_*` and `test_z3950_*` use these
forms): every CJK substring of 1-4 characters of every title in the fixtures (n-grams, as
`search_design_eval.py`), phrases (`adj`), right truncation (Latin and CJK), ISBN-10/13 and
ISBN prefixes, CLC prefixes, languages, years and ranges, AND / OR / NOT, `exact` headings,
`any`, `cql.allRecords`, each sort key both ways, and the availability limit (after checking
out copies). Rankings are not compared (BM25 in Tantivy vs FTS5's bm25 / ts_rank); sorted
orders are (`--compare-order`: the first 20 ids of every sorted query).

Run: `python bench/tantivy_eval.py` (fixtures, SQLite), `--postgres postgresql:///test` for
PostgreSQL as well, `--generated 20000` to time on a generated file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FILES = [
    ("fixtures/marc/demo_main.iso", "libgate"),
    ("fixtures/marc/real/cnmarc/bnu_cnmarc_10_utf8.iso", "bnu"),
    ("fixtures/marc/japanese/japanese_cnmarc.iso", "libgate"),
    ("fixtures/marc/real/cjk/yaz_marccol1.u8.marc", "none"),
    ("fixtures/marc/real/cjk/marc4j_pride-and-prejudice-fixed.mrc", "none"),
    ("fixtures/marc/real/large/mrrc-testbed_loc_bib_sample.mrc", "none"),
]
FIXED_QUERIES = [
    "历史",
    "中国",
    "dc.title = 中国发展报告",
    "dc.title = 中国 and dc.title = 发展",
    "dc.title = 历史 or dc.title = 猫",
    "dc.title = 中国 not dc.title = 明代",
    'dc.title adj "发展报告"',
    'dc.title adj "pride and prejudice"',
    'dc.title any "猫 图书馆"',
    'dc.title all "中国 报告"',
    "bath.name = 国家统计局",
    "dc.creator = 鲁迅",
    "dc.title = pride*",
    "dc.title = 中*",
    "dc.title = 发展报*",
    "dc.title = pri*",
    "dc.title = 中国 and bath.isbn = 9787101003048",
    "bath.isbn = 9787101003048",
    "bath.isbn = 7101003044",
    "bath.isbn = 978710*",
    "dc.subject = 历史",
    "dc.publisher = 出版社",
    "cql.serverChoice = 研究",
    "dc.date = 2005",
    "dc.date > 2000",
    "dc.date <= 1990",
    "dc.date <> 2005",
    'dc.date within "1990 2000"',
    'dc.title == "红楼梦"',
    "cql.allRecords = 1",
    "cql.allRecords = 1 not dc.title = 中国",
    "dc.language = chi",
    "dc.language = jpn",
    "ガラス",
    "猫",
    "吾輩",
    "劍橋",
    "dc.title = the",
    "dc.title = a*",
]
SORTS = ["", "title", "-title", "author", "-author", "date", "-date", "record", "-record"]
BROWSE = [("title", ""), ("title", "z"), ("author", "l"), ("subject", "历"), ("series", "")]


def _titles(store: Any) -> list[str]:
    from gateway.catalogue.model import BibRecord

    with store.read() as tx:
        rows = tx.execute("SELECT bib FROM bib_records WHERE database = 'main'")
    return [BibRecord.from_json(bib).display_title for (bib,) in rows]


def _ngram_queries(titles: list[str]) -> list[str]:
    from gateway.catalogue.normalise import CJK_RUN, normalise

    found: set[str] = set()
    for title in titles:
        for run in CJK_RUN.findall(normalise(title)):
            for size in range(1, 5):
                for i in range(len(run) - size + 1):
                    found.add(run[i : i + size])
    return sorted(found)


def worker(args: argparse.Namespace) -> None:
    """Load, query, print JSON (runs in the tree on sys.path: baseline or candidate)."""
    from gateway.catalogue.loading.loader import Loader, LoadOptions
    from gateway.catalogue.query import Query, SortKey, Term
    from gateway.catalogue.search import browse, search
    from gateway.circulation.policy import Policy
    from gateway.config import BUILTIN_PROFILES, DatabaseSettings, Settings
    from gateway.cql.to_query import cql_to_query
    from gateway.store import open_store
    from gateway.store.migrate import migrate

    rule = Policy.from_settings(Settings()).availability
    store = open_store(args.url)
    migrate(store)
    profiles = {p.name: p for p in BUILTIN_PROFILES}
    database = DatabaseSettings(name="main")
    started = time.perf_counter()
    files = [(ROOT / p, prof) for p, prof in FILES]
    if args.file:
        files = [(Path(args.file), "libgate")]
    for path, profile in files:
        if path.exists():
            Loader(store, LoadOptions(database=database, profile=profiles[profile])).load([path])
    load_seconds = time.perf_counter() - started
    # Check out a third of the copies (status word), so the availability limit matters.
    with store.write() as tx:
        tx.execute("UPDATE items SET status = '借出' WHERE id % 3 = 0")
    out: dict[str, object] = {"load_seconds": load_seconds, "queries": {}, "timings": {}}
    queries: dict[str, list[object]] = {}
    texts = list(FIXED_QUERIES)
    if not args.file:
        texts += [f'dc.title adj "{q}"' for q in _ngram_queries(_titles(store))]
    for text in texts:
        base = cql_to_query(text)
        for sort in SORTS if text in FIXED_QUERIES else [""]:
            keys = (SortKey(sort.lstrip("-"), sort.startswith("-")),) if sort else ()
            for available in (False, True) if text in FIXED_QUERIES else (False,):
                query = Query(base.root, keys)
                result = search(
                    store, query, "main", availability=rule, limit=20, available_only=available
                )
                ids = [h.record_id for h in result.hits] if sort else []
                queries[f"{text} | sort={sort} | available={available}"] = [result.total, ids]
    out["queries"] = queries
    out["browse"] = {
        f"{index}:{start}": [
            [e.heading, e.count] for e in browse(store, "main", index, start, count=20)
        ]
        for index, start in BROWSE
    }
    # Timings: ranked top 10 with the exact count, repeated.
    timed = ["历史", "中国", "研究", "dc.title = a*", "dc.title = 中国 and dc.title = 发展"]
    timed += ["cql.allRecords = 1", 'dc.title adj "发展报告"']
    timings: dict[str, float] = {}
    for text in timed + ["中国 --available", "历史 --available"]:
        query = cql_to_query(text.split(" --")[0])
        available = text.endswith("--available")
        search(store, query, "main", availability=rule, limit=10, available_only=available)
        samples = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            search(store, query, "main", availability=rule, limit=10, available_only=available)
            samples.append((time.perf_counter() - t0) * 1000)
        timings[text] = statistics.median(samples)
    out["timings"] = timings
    term = Term("title", "all", "中国")
    out["sanity"] = search(store, Query(term), "main", availability=rule).total
    store.close()
    print(json.dumps(out, ensure_ascii=False))


def run_tree(tree: Path, url: str, generated: str | None, repeat: int) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--url", url]
    command += ["--repeat", str(repeat)] + (["--file", generated] if generated else [])
    done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: worker failed\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def fresh_pg_url(base: str, label: str) -> str:
    import uuid
    from urllib.parse import quote

    import psycopg

    schema = f"eval_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options={quote(f'-csearch_path={schema}')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", default="ff4bb1d", help="git revision of the SQL planner")
    parser.add_argument("--postgres", help="also compare on this PostgreSQL (a scratch schema)")
    parser.add_argument("--generated", type=int, help="time on a generated file of N records")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    work = Path(tempfile.mkdtemp(prefix="tantivy-eval-"))
    baseline = work / "baseline"
    baseline.mkdir()
    archive = subprocess.run(
        ["git", "archive", args.baseline, "gateway", "marc", "sip2", "sru", "z3950", "fixtures"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
    generated = None
    if args.generated:
        generated = str(work / f"gen{args.generated}.iso")
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "generate_cnmarc.py"),
                "--records",
                str(args.generated),
                "-o",
                generated,
            ],
            check=True,
        )
    engines = [("sqlite", None)] + ([("postgresql", args.postgres)] if args.postgres else [])
    failures = 0
    for engine, base in engines:
        results = {}
        for label, tree in (("sql", baseline), ("tantivy", ROOT)):
            if base is None:
                url = f"sqlite:///{work / f'{label}-{engine}.db'}"
            else:
                url = fresh_pg_url(base, label)
            results[label] = run_tree(tree, url, generated, args.repeat)
        old, new = results["sql"], results["tantivy"]
        differ = [q for q in old["queries"] if old["queries"][q] != new["queries"].get(q)]
        browse_differ = [b for b in old["browse"] if old["browse"][b] != new["browse"][b]]
        failures += len(differ) + len(browse_differ)
        print(f"\n## {engine}: {len(old['queries'])} queries, {len(old['browse'])} browse lists")
        print(f"load: SQL planner {old['load_seconds']:.1f} s, Tantivy {new['load_seconds']:.1f} s")
        print(f"different answers (count or sorted first 20): {len(differ)}")
        for q in differ[:20]:
            print(f"  {q}: SQL {old['queries'][q]} vs Tantivy {new['queries'].get(q)}")
        print(f"different browse lists: {len(browse_differ)}")
        print("\n| query (top 10 ranked + exact count) | SQL ms | Tantivy ms |\n|---|---:|---:|")
        for text, ms in old["timings"].items():
            print(f"| `{text}` | {ms:.2f} | {new['timings'][text]:.2f} |")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
