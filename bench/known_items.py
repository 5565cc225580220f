"""Known-item search, as readers type it: libgate beside Zebra on the golden set.

The set is `fixtures/search/known_items.tsv` (database, query, expected 001, kind, note); the
catalogue it is written against is `fixtures/search/known_items_catalogue.tsv` (the files
`make run` loads, plus the Japanese readings fixture). This loads that catalogue with our CLI
into a fresh temporary SQLite store, reads each query as a reader's query (the free-text reader
`gateway.cql.free_text.read_query` where it exists, else strict CQL, where a refusal is a miss)
and runs it through `gateway.catalogue.search.search`. Then the same queries go to Zebra
(idzebra-2.0 with its shipped ICU chain, `icu.idx`/`words-icu.xml`, and its shipped TF/IDF
ranking `rank-1`), loaded with the same records exported from the store, each query as the
@and of its words on Bib-1 any (use 1016) with relevance (2=102), a quoted phrase as structure
1 (phrase). Zebra's side reuses the indexing rules and server start of load_bench/sru_bench.

Per kind and overall: recall (the expected record anywhere in the result), top-1 and top-10
rates, the median hit count, and every miss. Prints a markdown table for docs/benchmarks.md; `--json`
writes everything as JSON instead. Not a test: tests/test_known_items.py asserts the set.

Run: `.venv/bin/python bench/known_items.py [--skip-zebra] [--json PATH]` (half a minute).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import load_bench  # noqa: E402
import sru_bench  # noqa: E402

from gateway.catalogue.query import Boolean, Node, Query, Term  # noqa: E402
from gateway.catalogue.search import MAX_PAGE, search  # noqa: E402
from gateway.circulation.policy import Policy  # noqa: E402
from gateway.config import Settings  # noqa: E402
from gateway.cql.to_query import cql_to_query  # noqa: E402
from gateway.store import Store, open_store  # noqa: E402
from tests.known_items_support import (  # noqa: E402
    KINDS,
    CatalogueFile,
    KnownItem,
    catalogue_files,
    known_items,
)

RULE = Policy.from_settings(Settings()).availability  # the default policy's R2
LIBGATE = [str(ROOT / ".venv" / "bin" / "libgate")]
ZEBRA_DEPTH = 100  # records fetched per Zebra result: more than either catalogue holds
QUOTED_OR_WORD = re.compile(r'"([^"]*)"|(\S+)')


# --- reading a query as a reader typed it -----------------------------------------------------


def query_reader(choice: str = "auto") -> tuple[str, Callable[[str], Query]]:
    """How libgate reads the queries. `auto`: the free-text reader once it exists, else strict
    CQL (two words are an error). `cql`: strict CQL. `words`: the query asked as Zebra is asked
    (the AND of its words on `any`, a quoted part a phrase), to measure today's index apart
    from the reader. The free-text reader is imported by name: it is being built beside this
    bench (issue 13)."""
    if choice == "words":
        return "the AND of its words on any (as Zebra is asked)", words_on_any
    if choice == "auto":
        try:
            free_text = importlib.import_module("gateway.cql.free_text")
        except ImportError:
            pass
        else:

            def read(text: str) -> Query:
                query: Query = free_text.read_query(text).query
                return query

            return "free text (gateway.cql.free_text.read_query)", read
    return "strict CQL (gateway.cql.to_query.cql_to_query)", cql_to_query


def query_parts(text: str) -> list[tuple[str, bool]]:
    """(words or phrase, is a quoted phrase) in order."""
    parts = []
    for match in QUOTED_OR_WORD.finditer(text):
        phrase, word = match.group(1), match.group(2)
        parts.append((phrase, True) if phrase is not None else (word, False))
    return parts


def words_on_any(text: str) -> Query:
    terms: list[Node] = [
        Term("any", "adj" if phrase else "all", value) for value, phrase in query_parts(text)
    ]
    root = terms[0]
    for term in terms[1:]:
        root = Boolean("and", root, term)
    return Query(root)


# --- outcomes and figures ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Outcome:
    item: KnownItem
    rank: int | None  # 1-based position of the expected record; None if not found
    hits: int  # how many records the query found (0 on an error)
    found: list[str]  # the records found, in the engine's order
    error: str = ""  # why the query was not run (a parse error, Zebra's diagnostic)


def figures(outcomes: list[Outcome]) -> dict[str, float | int]:
    n = len(outcomes)
    found = [o for o in outcomes if o.rank is not None]
    return {
        "queries": n,
        "recall": len(found) / n if n else 0.0,
        "top1": sum(1 for o in found if o.rank == 1) / n if n else 0.0,
        "top10": sum(1 for o in found if o.rank is not None and o.rank <= 10) / n if n else 0.0,
        "errors": sum(1 for o in outcomes if o.error),
        "false_hits": sum(1 for o in outcomes if set(o.item.absent) & set(o.found)),
        "median_hits": statistics.median(o.hits for o in outcomes) if outcomes else 0,
    }


def by_kind(outcomes: list[Outcome]) -> dict[str, dict[str, float | int]]:
    table = {}
    for kind in KINDS:
        chosen = [o for o in outcomes if o.item.kind == kind]
        if chosen:
            table[kind] = figures(chosen)
    table["all"] = figures(outcomes)
    return table


def misses(outcomes: list[Outcome]) -> list[Outcome]:
    """Rows that fall short of what the set asks: not in the top 10, not first where the row
    asks for the top hit, or with a record found that the row says must not be (`absent=`)."""
    return [
        o
        for o in outcomes
        if o.rank is None
        or o.rank > 10
        or (o.rank != 1 and o.item.needs_top1)
        or set(o.item.absent) & set(o.found)
    ]


# --- libgate -----------------------------------------------------------------------------------


def load_catalogue(directory: Path, files: list[CatalogueFile]) -> Path:
    """A fresh SQLite store loaded by our CLI, as `make run` loads the demo; its config file."""
    config = directory / "libgate.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{directory / "libgate.db"}"\n', "utf-8")
    run = [*LIBGATE, "--config", str(config)]
    subprocess.run([*run, "init"], check=True, cwd=ROOT, capture_output=True)
    for file in files:
        subprocess.run(
            [*run, "load", "--database", file.database, "--profile", file.profile, str(file.path)],
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
    return config


def libgate_outcomes(
    store: Store, items: list[KnownItem], read: Callable[[str], Query]
) -> list[Outcome]:
    outcomes = []
    for item in items:
        try:
            query = read(item.query)
        except Exception as error:  # any refusal to read the query is a miss, listed by type
            outcomes.append(Outcome(item, None, 0, [], f"{type(error).__name__}: {error}"))
            continue
        result = search(store, query, item.database, availability=RULE, limit=MAX_PAGE)
        ids = [hit.record_id for hit in result.hits]
        rank = ids.index(item.expected) + 1 if item.expected in ids else None
        outcomes.append(Outcome(item, rank, result.total, ids))
    return outcomes


# --- Zebra -------------------------------------------------------------------------------------

ZEBRA_HITS = re.compile(r"Number of hits: (\d+)")
ZEBRA_ID = re.compile(r"^001 (.*)$", re.MULTILINE)
ZEBRA_DIAGNOSTIC = re.compile(r"Diagnostic message\(s\) from database:\s*\n\s*\[(\d+)\]([^\n]*)")


def zebra_query(text: str) -> str:
    """PQF: the @and of the query's words on Bib-1 any, ranked; a quoted part is a phrase."""
    terms = []
    for value, phrase in query_parts(text):
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        structure = " @attr 4=1" if phrase else ""
        terms.append(f'@attr 1=1016 @attr 2=102{structure} "{quoted}"')
    return "@and " * (len(terms) - 1) + " ".join(terms)


def zebra_directory(directory: Path, config_file: Path, databases: list[str]) -> Path:
    """Zebra's register holding each database's records as libgate stores them (exported with
    our CLI, so both search the same records: a record loaded twice is one record in both)."""
    directory.mkdir()
    config = load_bench.zebra_config(directory, icu=True)
    with config.open("a", encoding="utf-8") as handle:
        handle.write("rank: rank-1\n")  # Zebra's shipped TF/IDF ranking, used with @attr 2=102
    shutil.copy("/usr/share/yaz/etc/pqf.properties", directory / "pqf.properties")
    subprocess.run(
        ["zebraidx", "-c", str(config), "-l", "init.log", "init"], cwd=directory, check=True
    )
    for database in databases:
        exported = directory / f"{database}.iso"
        subprocess.run(
            [*LIBGATE, "--config", str(config_file), "export", "--database", database]
            + ["--output", str(exported)],
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
        subprocess.run(
            ["zebraidx", "-c", str(config), "-l", "index.log", "-d", database, "update"]
            + [str(exported)],
            cwd=directory,
            check=True,
        )
    return directory


def yaz_client(port: int, database: str, commands: str) -> str:
    script = f"open tcp:127.0.0.1:{port}\nbase {database}\n{commands}quit\n"
    run = subprocess.run(["yaz-client"], input=script, capture_output=True, text=True, timeout=60)
    return run.stdout


def zebra_ask(port: int, database: str, pqf: str) -> tuple[int, list[str], str]:
    """Hit count, the 001s of the first records in Zebra's order, and a diagnostic if any.
    Two sessions: a Present beyond the hit count is refused, so the count comes first."""
    answer = yaz_client(port, database, f"find {pqf}\n")
    counted = ZEBRA_HITS.search(answer)
    diagnostic = ZEBRA_DIAGNOSTIC.search(answer)
    if counted is None or diagnostic:
        why = f"Bib-1 diagnostic {diagnostic.group(1)}{diagnostic.group(2)}" if diagnostic else ""
        return 0, [], why or "no answer"
    hits = int(counted.group(1))
    if hits == 0:
        return 0, [], ""
    shown = yaz_client(
        port,
        database,
        f"format unimarc\nelements F\nfind {pqf}\nshow 1+{min(hits, ZEBRA_DEPTH)}\n",
    )
    return hits, [m.strip() for m in ZEBRA_ID.findall(shown)], ""


def zebra_outcomes(directory: Path, items: list[KnownItem]) -> list[Outcome]:
    port, processes = sru_bench.start_zebra(directory)
    try:
        outcomes = []
        for item in items:
            hits, ids, error = zebra_ask(port, item.database, zebra_query(item.query))
            rank = ids.index(item.expected) + 1 if item.expected in ids else None
            outcomes.append(Outcome(item, rank, hits, ids, error))
        return outcomes
    finally:
        for process in processes:
            process.terminate()
            process.wait()


# --- report ------------------------------------------------------------------------------------


def percent(value: float | int) -> str:
    return f"{100 * value:.0f}%"


def markdown(results: dict[str, list[Outcome]]) -> str:
    tables = {name: by_kind(outcomes) for name, outcomes in results.items()}
    names = list(results)
    header = "| kind | queries | " + " | ".join(
        f"{name} recall | {name} top-1 | {name} top-10" for name in names
    )
    lines = [header + " |", "|---|---:|" + "---:|---:|---:|" * len(names)]
    for kind in [*KINDS, "all"]:
        if kind not in tables[names[0]]:
            continue
        cells = [kind if kind != "all" else "**all**", str(tables[names[0]][kind]["queries"])]
        for name in names:
            row = tables[name][kind]
            cells += [percent(row["recall"]), percent(row["top1"]), percent(row["top10"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def miss_lines(name: str, outcomes: list[Outcome]) -> list[str]:
    lines = [f"{name}: {len(misses(outcomes))} rows short of the set"]
    for o in misses(outcomes):
        where = "not found" if o.rank is None else f"rank {o.rank}"
        false_hits = set(o.item.absent) & set(o.found)
        if false_hits:
            where += f", false hit {', '.join(sorted(false_hits))}"
        detail = o.error or f"{o.hits} hits, first {', '.join(o.found[:3]) or '-'}"
        lines.append(
            f"  [{o.item.kind}] {o.item.database}: {o.item.query!r} -> {o.item.expected}"
            f" {where} ({detail})"
        )
    return lines


def as_json(reader: str, results: dict[str, list[Outcome]]) -> dict[str, object]:
    return {
        "reader": reader,
        "engines": {
            name: {
                "by_kind": by_kind(outcomes),
                "rows": [
                    {
                        "line": o.item.line,
                        "database": o.item.database,
                        "query": o.item.query,
                        "expected": o.item.expected,
                        "kind": o.item.kind,
                        "rank": o.rank,
                        "hits": o.hits,
                        "found": o.found[:10],
                        "error": o.error,
                        "short": o in misses(outcomes),
                    }
                    for o in outcomes
                ],
            }
            for name, outcomes in results.items()
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-zebra", action="store_true", help="libgate only")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")
    parser.add_argument(
        "--reader",
        choices=("auto", "cql", "words"),
        default="auto",
        help="auto: free text if gateway.cql.free_text exists, else strict CQL; words: the AND"
        " of the words on any, as Zebra is asked",
    )
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="build the stores in DIR and keep them"
    )
    args = parser.parse_args()
    if not args.skip_zebra and not (shutil.which("zebraidx") and shutil.which("yaz-client")):
        parser.error("Zebra needs idzebra-2.0 and yaz (apt-get install idzebra-2.0 yaz)")
    items = known_items()
    unknown = sorted({i.kind for i in items} - set(KINDS))
    if unknown:
        parser.error(f"known_items.tsv: unknown kinds {unknown}")
    files = catalogue_files()
    reader, read = query_reader(args.reader)
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="known-items-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        config = load_catalogue(scratch, files)
        store = open_store(f"sqlite:///{scratch / 'libgate.db'}")
        try:
            results = {"libgate": libgate_outcomes(store, items, read)}
        finally:
            store.close()
        if not args.skip_zebra:
            databases = sorted({f.database for f in files})
            zebra = zebra_directory(scratch / "zebra", config, databases)
            results["Zebra"] = zebra_outcomes(zebra, items)
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        args.json.write_text(
            json.dumps(as_json(reader, results), ensure_ascii=False, indent=1) + "\n", "utf-8"
        )
    print(f"{len(items)} known-item queries; libgate reads them as {reader}.")
    print("Zebra: ICU chain (icu.idx), rank-1, @and of words on Bib-1 any (1016).\n")
    print(markdown(results))
    print()
    for name, outcomes in results.items():
        print("\n".join(miss_lines(name, outcomes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
