"""Union search across 30 targets: `python bench/union_bench.py [--targets 30] [--rounds 5]
[--records 2000] [--json PATH] [--profile] [--gc-freeze] [--quiet-wait S]`.

The bench starts every peer itself (bench/union_peers.py). A deterministic CNMARC corpus
(bench/generate_cnmarc.py, 2 x `--records` records, and the 10 real BNU records of fixtures/) is
cut into 12 overlapping catalogues of `--records` records each (every generated record is in 6
of them): 6 served by their own `zebrasrv` (Debian idzebra-2.0, UNIMARC rules, ICU words) and 6
as databases of two `libgate serve` instances (3 each), searched over Z39.50 and over SRU. The
targets are config entries over those servers, a few of them the same server under another name;
some are reached through a delaying relay (a separate asyncio process, one port per delayed
target) that holds every server-to-client chunk back by the target's latency (50, 200 or 1000
ms); one more target accepts and never answers (its short timeout is its whole cost). Peers'
indexes and databases are kept under bench/out/union-N/ between runs (delete it after changing
how they are made).

Measured in one run, each query (CJK words, an ISBN, a Latin word) in each round:

- each target alone (a one-target `UnionSearch`): its own latency, as the client sees it;
- the union of all targets but the silent one, and again with it, on this process's Twisted
  reactor through union/fanout.py's `UnionSearch` and union/targets.py's clients: time to the
  first results (the merged view first non-empty), to the last answering target's answer read,
  to the search's end (`done`), and to the merged, ranked view at the end ("shown");
- `libgate union search --json` (its own process) wall time.

Then: what the union adds over the slowest answering target's own latency (shown minus that,
per query and round; median and p95), and where that target's time went alone and in the union
(from the relay's log of every chunk: when its request reached the relay, the server's time,
the relay's hold, the client's time after the last chunk); this process's CPU and garbage
collector time per search; `merge` + `rank` throughput on the records of every target, the
records' reading rate, peak RSS of this process and tracemalloc of one search; how busy the
machine was (other people's work skews every figure here). `--profile` adds cProfile of the
union searches on the reactor (bench/out/union-profile.txt); `--gc-freeze` calls gc.freeze()
after the warm-up, as a long-running server could after its start.

Connection reuse: `--connections pooled` (the default) keeps one Z39.50 pool for the run, as
the portal does under `libgate serve` (`PooledClients`): associations are reused across
searches, and the targets alone are measured on warm connections too. `--connections fresh`
gives every search new associations, as `libgate union search` (`FreshClients`).

Not a test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import load_bench  # noqa: E402
import sru_bench  # noqa: E402
from union_peers import (  # noqa: E402
    LIBGATE,
    OUT,
    SILENT,
    SILENT_TIMEOUT,
    UNION_TIMEOUT,
    Planned,
    catalogue_parts,
    plan,
    start_relays,
    start_servers,
    union_config,
)

QUERIES = ("中国", "文化 研究", "ISBN", "Buddhism")  # ISBN: one record's, read from the corpus


# --- searching, on the reactor -----------------------------------------------------------------


class ClientSource(Protocol):
    """Where each search's clients come from. `start` gives the clients for one search;
    `end` runs after it (close what only this search used)."""

    def start(self) -> Any: ...  # Callable[[UnionTarget], TargetClient]

    def end(self) -> Any: ...  # Deferred


class FreshClients:
    """As `libgate union search`: a new SruClient per search, closed after it, and a new
    Z39.50 association per target (a pool that keeps none)."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.sru: Any = None
        self.pool: Any = None

    def start(self) -> Any:
        from union.sru_client import SruClient
        from union.targets import clients
        from union.z3950_pool import Z3950Pool

        self.sru = SruClient(self.reactor)
        self.pool = Z3950Pool(self.reactor, idle_per_target=0)
        return clients(self.reactor, self.sru, self.pool)

    def end(self) -> Any:
        return self.pool.close().addBoth(lambda _: self.sru.close())


class PooledClients:
    """As the portal under `libgate serve`: one Z39.50 pool for the whole run (associations
    reused across searches, `[union]` defaults), a new SruClient per search."""

    def __init__(self, reactor: Any) -> None:
        from union.z3950_pool import Z3950Pool

        self.reactor = reactor
        self.sru: Any = None
        self.pool = Z3950Pool(reactor)

    def start(self) -> Any:
        from union.sru_client import SruClient
        from union.targets import clients

        self.sru = SruClient(self.reactor)
        return clients(self.reactor, self.sru, self.pool)

    def end(self) -> Any:
        return self.sru.close()


@dataclass
class Searched:
    """One search: milliseconds from its start to each moment (None: never)."""

    started: float  # perf_counter at its start (the relay's log uses the same clock)
    first_ms: float | None  # the merged view first non-empty
    last_answer_ms: float | None  # the last answering target's answer read into the fan-out
    done_ms: float  # every target final (or the deadline): `done` fired
    shown_ms: float  # done, then merged() and ranked: what a reader is shown
    merge_ms: float  # that final merged() alone
    works: int
    cpu_ms: float  # this process's CPU time over the search (user + system)
    gc_ms: float  # the cyclic garbage collector's passes during the search
    gc_oldest: int  # of which full (generation 2) collections
    states: dict[str, tuple[str, int, int]]  # name: (state, hits, ms)
    sources: list[Any]  # every target's SourceRecords
    raw: list[tuple[Any, Any]]  # (UnionTarget, TargetAnswer) as the clients gave them


class Observed:
    """A target's client, watched: once the fan-out has taken in an answer (its callbacks run
    when the Deferred given to it fires), note when, and whether the merged view is now
    non-empty. The fan-out's cancel (its deadline) reaches the wrapped client."""

    def __init__(self, inner: Any, watch: Watch) -> None:
        self.inner = inner
        self.watch = watch

    def search(self, target: Any, query: Any, on_searching: Callable[[], None]) -> Any:
        from twisted.internet.defer import Deferred
        from twisted.python.failure import Failure

        inner = self.inner.search(target, query, on_searching)
        outer: Deferred[Any] = Deferred(lambda _: inner.cancel())

        def forward(result: Any) -> None:
            if outer.called:
                return None  # cancelled: the fan-out has its answer (a timeout)
            if isinstance(result, Failure):
                outer.errback(result)
            else:
                self.watch.raw.append((target, result))
                outer.callback(result)
                self.watch.answered()
            return None

        inner.addBoth(forward)
        return outer


class Watch:
    def __init__(self) -> None:
        self.started = 0.0
        self.search: Any = None
        self.first: float | None = None
        self.ended: float | None = None  # when `done` fired
        self.last_answer: float | None = None
        self.raw: list[tuple[Any, Any]] = []

    def answered(self) -> None:
        # The answer that ends the search fires `done` inside the fan-out's callback, and the
        # bench's own work after `done` runs before the callback returns: that moment counts.
        now = time.perf_counter() if self.ended is None else self.ended
        self.last_answer = now
        if self.first is None and self.search is not None and self.search.merged():
            self.first = time.perf_counter() if self.ended is None else self.ended


class Bench:
    def __init__(self, reactor: Any, source: ClientSource) -> None:
        self.reactor = reactor
        self.source = source

    async def search(self, targets: Sequence[Any], text: str) -> Searched:
        from gateway.cql.free_text import read_query
        from union.fanout import UnionSearch

        query = read_query(text).query
        watch = Watch()
        clients = self.source.start()
        collections: list[list[float]] = []  # [start, generation, end] of each GC pass

        def collecting(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                collections.append([time.perf_counter(), info["generation"], 0.0])
            elif collections:
                collections[-1][2] = time.perf_counter()

        gc.callbacks.append(collecting)
        cpu = time.process_time()
        watch.started = time.perf_counter()
        search = UnionSearch(
            targets,
            query,
            text,
            lambda target: Observed(clients(target), watch),
            self.reactor,
            UNION_TIMEOUT,
        )
        watch.search = search

        def ended(result: Any) -> Any:
            watch.ended = time.perf_counter()
            return result

        search.done.addCallback(ended)
        await search.done
        merged = search.merged()
        shown = time.perf_counter()
        cpu = time.process_time() - cpu
        gc.callbacks.remove(collecting)
        await self.source.end()
        started = watch.started
        assert watch.ended is not None  # `done` has fired

        def ms(moment: float | None) -> float | None:
            return None if moment is None else (moment - started) * 1000

        return Searched(
            started=started,
            first_ms=ms(watch.first),
            last_answer_ms=ms(watch.last_answer),
            done_ms=(watch.ended - started) * 1000,
            shown_ms=(shown - started) * 1000,
            merge_ms=(shown - watch.ended) * 1000,
            works=len(merged),
            cpu_ms=cpu * 1000,
            gc_ms=sum(end - begun for begun, _, end in collections if end) * 1000,
            gc_oldest=sum(1 for _, generation, _ in collections if generation == 2),
            states={s.name: (s.state.value, s.hits, s.ms) for s in search.statuses.values()},
            sources=[r for s in search.statuses.values() for r in s.records],
            raw=watch.raw,
        )


# --- the measurements --------------------------------------------------------------------------

ANSWERED = ("ok", "diagnostic")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest rank (with few samples p95 is the largest but one, or the largest)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def max_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux


def rss_kb() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def run_cli(config: Path, text: str, names: Sequence[str] | None) -> dict[str, Any]:
    """`libgate union search --json` in its own process: wall ms, its peak RSS, what it found."""
    import tempfile

    command = [*LIBGATE, "--config", str(config), "union", "search", "--json"]
    if names is not None:
        command += ["--targets", ",".join(names)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen([*command, "--", text], cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = (time.perf_counter() - started) * 1000
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {err.read().decode()}")
        found = json.loads(out.read())
    states = [t["status"] for t in found["targets"]]
    return {
        "wall_ms": wall,
        "peak_rss_kb": usage.ru_maxrss,
        "slowest_target_ms": max(t["ms"] for t in found["targets"]),
        "ok": states.count("ok"),
        "timeout": states.count("timeout"),
        "total": found["total"],
    }


def read_rate(raw: list[tuple[Any, Any]]) -> dict[str, dict[str, float]]:
    """Records read per second through marc/, by syntax, as the fan-out reads them."""
    from union.records import read_iso2709, read_xml

    by_syntax: dict[str, list[tuple[Any, Any]]] = {}
    for target, answer in raw:
        for record in answer.records:
            by_syntax.setdefault(record.syntax, []).append((target, record))
    rates = {}
    for syntax, records in by_syntax.items():
        started = time.perf_counter()
        passes = 0
        while passes < 3 or time.perf_counter() - started < 0.5:
            for target, record in records:
                if syntax == "xml":
                    read_xml(record.data, target.syntax)
                else:
                    read_iso2709(record.data, record.syntax, target.encoding)
            passes += 1
        seconds = (time.perf_counter() - started) / passes
        rates[syntax] = {"records": len(records), "per_second": len(records) / seconds}
    return rates


def merge_rate(sources: list[Any], text: str) -> dict[str, float]:
    """merge + rank of every target's records, repeated: ms each, records and works per s."""
    from union.merge import merge, rank

    timings = {}
    works = 0
    for name in ("merge", "rank"):
        merged = merge(sources)
        works = len(merged)
        started = time.perf_counter()
        passes = 0
        while passes < 5 or time.perf_counter() - started < 0.5:
            if name == "merge":
                merge(sources)
            else:
                rank(merged, text)
            passes += 1
        timings[name] = (time.perf_counter() - started) / passes
    both = timings["merge"] + timings["rank"]
    return {
        "source_records": len(sources),
        "works": works,
        "merge_ms": timings["merge"] * 1000,
        "rank_ms": timings["rank"] * 1000,
        "records_per_second": len(sources) / both,
        "works_per_second": works / both,
    }


def searched_dict(found: Searched) -> dict[str, Any]:
    return {
        "started": found.started,
        "first_ms": found.first_ms,
        "last_answer_ms": found.last_answer_ms,
        "done_ms": found.done_ms,
        "shown_ms": found.shown_ms,
        "merge_ms": found.merge_ms,
        "works": found.works,
        "cpu_ms": found.cpu_ms,
        "gc_ms": found.gc_ms,
        "gc_oldest": found.gc_oldest,
        "source_records": len(found.sources),
        "states": found.states,
    }


async def measure(
    reactor: Any,
    targets: list[Any],
    queries: list[str],
    rounds: int,
    config: Path,
    profile: bool,
    freeze: bool,
    connections: str = "pooled",
) -> dict[str, Any]:
    source = PooledClients(reactor) if connections == "pooled" else FreshClients(reactor)
    bench = Bench(reactor, source)
    answering = [t for t in targets if t.name != SILENT]
    names = [t.name for t in answering]
    rss_start = max_rss_kb()
    machine_before, ours_before = (
        load_bench._system_busy_ticks(),
        sru_bench.cpu_seconds([os.getpid()]),
    )
    wall_before = time.monotonic()
    for text in queries:  # the servers' caches warmed, as for every other search after
        await bench.search(answering, text)
    if freeze:  # what start-up and the warm-up left, kept out of every later GC pass
        gc.collect()
        gc.freeze()
    shuffle = random.Random(16)
    samples: dict[str, dict[str, list[Any]]] = {
        q: {"alone": [], "union": [], "with_silent": [], "cli": [], "cli_with_silent": []}
        for q in queries
    }
    cli_one: list[dict[str, Any]] = []
    for number in range(rounds):
        for text in queries:
            alone = {}
            order = list(answering)
            shuffle.shuffle(order)
            for target in order:
                found = await bench.search([target], text)
                state, hits, final = found.states[target.name]
                alone[target.name] = {
                    "ms": found.done_ms,
                    "state": state,
                    "hits": hits,
                    "final_ms": final,
                    "started": found.started,
                }
            union = await bench.search(answering, text)
            with_silent = await bench.search(targets, text)
            taken = samples[text]
            taken["alone"].append(alone)
            taken["union"].append(searched_dict(union))
            taken["with_silent"].append(searched_dict(with_silent))
            taken["cli"].append(run_cli(config, text, names))
            if number == 0:
                taken["cli_with_silent"].append(run_cli(config, text, None))
        cli_one.append(run_cli(config, queries[0], names[:1]))
        print(f"round {number + 1} of {rounds} done", file=sys.stderr, flush=True)
    rss_searches = max_rss_kb()
    wall = time.monotonic() - wall_before
    machine = (load_bench._system_busy_ticks() - machine_before) / os.sysconf("SC_CLK_TCK")
    ours = sru_bench.cpu_seconds([os.getpid()]) - ours_before
    # merge, rank and reading rates on one more search's records (not kept during the rounds:
    # this process's heap stays the fan-out's, whose size the garbage collector's passes track)
    merges, reads = {}, {}
    for text in queries:
        found = await bench.search(answering, text)
        merges[text] = merge_rate(found.sources, text)
        reads[text] = read_rate(found.raw)
    del found
    tracemalloc.start()
    traced = await bench.search(answering, queries[0])
    traced_current, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del traced
    profiled = ""
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(3):
            for text in queries:
                await bench.search(answering, text)
        profiler.disable()
        buffer = io.StringIO()
        stats = pstats.Stats(profiler, stream=buffer)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
        profiled = buffer.getvalue()
    return {
        "load": {
            "seconds": wall,
            "machine_cores": machine / wall,
            "ours_cores": ours / wall,
            "others_cores": max(0.0, machine - ours) / wall,
        },
        "samples": samples,
        "cli_one_target": cli_one,
        "merge": merges,
        "read": reads,
        "memory": {
            "max_rss_kb_before_searches": rss_start,
            "max_rss_kb_after_searches": rss_searches,
            "rss_kb_now": rss_kb(),
            "tracemalloc_peak_kb": traced_peak // 1024,
            "tracemalloc_retained_kb": traced_current // 1024,
        },
        "profile": profiled,
    }


# --- where the slowest target's time went ----------------------------------------------------

Events = dict[str, list[tuple[float, str]]]  # target name: (moment, c | s | d), in order
PARTS = ("sent_ms", "server_ms", "held_ms", "between_ms", "after_ms")


def relay_events(path: Path, delayed: list[Planned]) -> Events:
    """The relay's log, by target (listener index i is the i-th delayed target)."""
    events: Events = {target.name: [] for target in delayed}
    for line in path.read_text(encoding="ascii").splitlines():
        index, _, kind, moment = line.split()
        if int(index) < len(delayed):
            events[delayed[int(index)].name].append((float(moment), kind))
    return events


def relay_timeline(
    events: list[tuple[float, str]], started: float, final_ms: float
) -> dict[str, float] | None:
    """One delayed target in one search, from its relay's chunks: when the client's first
    request reached the relay (`sent`), the server's time to its first answer chunk, summed
    over the exchanges (`server`), the relay's holding (`held`, its latency per exchange), the
    client between an answer and its next request (`between`), and from the last chunk
    delivered to the target's final state (`after`: reading the answer)."""
    end = started + final_ms / 1000
    seen = [(moment, kind) for moment, kind in events if started <= moment <= end + 0.002]
    requests = [moment for moment, kind in seen if kind == "c"]
    if not requests:
        return None
    server = held = 0.0
    waiting = ""  # server: after a request; held: after the answer's first chunk
    mark = last_delivered = requests[0]
    for moment, kind in seen:
        if kind == "c" and not waiting:
            waiting, mark = "server", moment
        elif kind == "s" and waiting == "server":
            server += moment - mark
            waiting, mark = "held", moment
        elif kind == "d":
            last_delivered = moment
            if waiting == "held":
                held += moment - mark
                waiting = ""
    return {
        "sent_ms": (requests[0] - started) * 1000,
        "server_ms": server * 1000,
        "held_ms": held * 1000,
        "between_ms": (last_delivered - requests[0] - server - held) * 1000,
        "after_ms": max(0.0, end - last_delivered) * 1000,
    }


def slowest_timelines(measured: dict[str, Any], events: Events) -> dict[str, Any]:
    """The slowest answering target of each query-round, alone and in the union: medians of
    each part, and of the union's minus alone's."""
    alone_parts: dict[str, list[float]] = {part: [] for part in PARTS}
    own: list[float] = []  # shown − slowest alone, less what its server and relay added
    union_parts: dict[str, list[float]] = {part: [] for part in PARTS}
    for taken in measured["samples"].values():
        for alone, union in zip(taken["alone"], taken["union"], strict=True):
            answered = {n: a for n, a in alone.items() if a["state"] in ANSWERED}
            name = max(answered, key=lambda n: answered[n]["ms"])
            if name not in events:
                continue  # not a delayed target: no relay saw it
            by_itself = relay_timeline(
                events[name], answered[name]["started"], answered[name]["final_ms"]
            )
            together = relay_timeline(events[name], union["started"], union["states"][name][2])
            if by_itself is None or together is None:
                continue
            for part in PARTS:
                alone_parts[part].append(by_itself[part])
                union_parts[part].append(together[part])
            added_outside = sum(together[p] - by_itself[p] for p in ("server_ms", "held_ms"))
            own.append(union["shown_ms"] - answered[name]["ms"] - added_outside)
    added = {
        part: [u - a for u, a in zip(union_parts[part], alone_parts[part], strict=True)]
        for part in PARTS
    }
    return {
        "samples": len(alone_parts["sent_ms"]),
        "alone": {part: median(values) for part, values in alone_parts.items()},
        "union": {part: median(values) for part, values in union_parts.items()},
        "added": {part: median(values) for part, values in added.items()},
        "own_median_ms": median(own),
        "own_p95_ms": percentile(own, 0.95) if own else float("nan"),
        "added_p95": {
            part: percentile(values, 0.95) if values else float("nan")
            for part, values in added.items()
        },
    }


# --- the report --------------------------------------------------------------------------------


def summarise(measured: dict[str, Any], planned: list[Planned], events: Events) -> dict[str, Any]:
    """Per query and overall: the union against the slowest answering target alone."""
    per_query = {}
    overheads: list[float] = []
    overheads_done: list[float] = []
    overheads_silent: list[float] = []
    silent_extra: list[float] = []
    for text, taken in measured["samples"].items():
        rows = []
        for alone, union, silent in zip(
            taken["alone"], taken["union"], taken["with_silent"], strict=True
        ):
            answered = {n: a["ms"] for n, a in alone.items() if a["state"] in ANSWERED}
            slowest = max(answered, key=answered.__getitem__)
            row = {
                "slowest": slowest,
                "slowest_ms": answered[slowest],
                "overhead_ms": union["shown_ms"] - answered[slowest],
                "overhead_done_ms": union["done_ms"] - answered[slowest],
                "overhead_with_silent_ms": (silent["last_answer_ms"] or 0) - answered[slowest],
                "silent_extra_ms": silent["done_ms"] - SILENT_TIMEOUT * 1000,
            }
            rows.append(row)
            overheads.append(row["overhead_ms"])
            overheads_done.append(row["overhead_done_ms"])
            overheads_silent.append(row["overhead_with_silent_ms"])
            silent_extra.append(row["silent_extra_ms"])
        union, silent = taken["union"], taken["with_silent"]
        per_query[text] = {
            "rows": rows,
            "answering": median(
                [sum(s[0] in ANSWERED for s in u["states"].values()) for u in union]
            ),
            "hits": median([sum(s[1] for s in u["states"].values()) for u in union]),
            "source_records": median([u["source_records"] for u in union]),
            "works": median([u["works"] for u in union]),
            "first_ms": median([u["first_ms"] for u in union if u["first_ms"] is not None]),
            "done_ms": median([u["done_ms"] for u in union]),
            "shown_ms": median([u["shown_ms"] for u in union]),
            "merge_ms": median([u["merge_ms"] for u in union]),
            "cpu_ms": median([u["cpu_ms"] for u in union]),
            "gc_ms": median([u["gc_ms"] for u in union]),
            "gc_max_ms": max(u["gc_ms"] for u in union),
            "gc_oldest": sum(u["gc_oldest"] for u in union),
            "slowest_ms": median([r["slowest_ms"] for r in rows]),
            "slowest": sorted({r["slowest"] for r in rows}),
            "overhead_median_ms": median([r["overhead_ms"] for r in rows]),
            "overhead_p95_ms": percentile([r["overhead_ms"] for r in rows], 0.95),
            "silent_first_ms": median([s["first_ms"] for s in silent if s["first_ms"]]),
            "silent_last_answer_ms": median([s["last_answer_ms"] for s in silent]),
            "silent_done_ms": median([s["done_ms"] for s in silent]),
            "silent_state": sorted({s["states"][SILENT][0] for s in silent}),
            "cli_ms": median([c["wall_ms"] for c in taken["cli"]]),
            "cli_with_silent_ms": median([c["wall_ms"] for c in taken["cli_with_silent"]]),
        }
    by_kind: dict[str, list[float]] = {}
    kind_of = {p.name: f"{p.server.split()[0]} {p.protocol} {p.latency_ms} ms" for p in planned}
    for taken in measured["samples"].values():
        for alone in taken["alone"]:
            for name, seen in alone.items():
                if seen["state"] in ANSWERED:
                    by_kind.setdefault(kind_of[name], []).append(seen["ms"])
    return {
        "per_query": per_query,
        "slowest_timeline": slowest_timelines(measured, events),
        "overhead_median_ms": median(overheads),
        "overhead_p95_ms": percentile(overheads, 0.95),
        "overhead_done_median_ms": median(overheads_done),
        "overhead_done_p95_ms": percentile(overheads_done, 0.95),
        "overhead_with_silent_median_ms": median(overheads_silent),
        "overhead_with_silent_p95_ms": percentile(overheads_silent, 0.95),
        "silent_extra_median_ms": median(silent_extra),
        "silent_extra_p95_ms": percentile(silent_extra, 0.95),
        "samples": len(overheads),
        "alone_by_kind": {
            kind: {"median_ms": median(ms), "p95_ms": percentile(ms, 0.95), "n": len(ms)}
            for kind, ms in sorted(by_kind.items())
        },
        "cli_one_target_ms": median([c["wall_ms"] for c in measured["cli_one_target"]]),
        "cli_peak_rss_kb": max(
            c["peak_rss_kb"] for t in measured["samples"].values() for c in t["cli"]
        ),
    }


FROZEN = ", gc.freeze() after the warm-up"


def report(summary: dict[str, Any], measured: dict[str, Any], args: argparse.Namespace) -> str:
    lines = []
    silent_states = sorted({s for q in summary["per_query"].values() for s in q["silent_state"]})
    count = args.targets
    lines.append(
        f"{count} targets ({count - 1} answering + 1 silent), {args.records:,} records per"
        f" catalogue, {args.rounds} rounds{FROZEN if args.gc_freeze else ''};"
        " ms, median over rounds unless marked"
    )
    lines.append("")
    lines.append(
        "| query | answering | hits | records read | works | first results | done | shown"
        " | slowest alone | shown − slowest (median / p95) | client CPU | GC (max) | CLI wall |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for text, q in summary["per_query"].items():
        lines.append(
            f"| {text} | {q['answering']:.0f} | {q['hits']:,.0f} | {q['source_records']:.0f}"
            f" | {q['works']:.0f} | {q['first_ms']:.0f} | {q['done_ms']:.0f}"
            f" | {q['shown_ms']:.0f} | {q['slowest_ms']:.0f} | {q['overhead_median_ms']:.0f} /"
            f" {q['overhead_p95_ms']:.0f} | {q['cpu_ms']:.0f}"
            f" | {q['gc_ms']:.0f} ({q['gc_max_ms']:.0f}) | {q['cli_ms']:.0f} |"
        )
    lines.append("")
    lines.append(
        f"With the silent target too (its timeout {SILENT_TIMEOUT:g} s; state"
        f" {', '.join(silent_states)}):"
    )
    lines.append("")
    lines.append(
        "| query | first results | last answer read | done | done − silent timeout | CLI wall |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|")
    for text, q in summary["per_query"].items():
        lines.append(
            f"| {text} | {q['silent_first_ms']:.0f} | {q['silent_last_answer_ms']:.0f}"
            f" | {q['silent_done_ms']:.0f} | {q['silent_done_ms'] - SILENT_TIMEOUT * 1000:.0f}"
            f" | {q['cli_with_silent_ms']:.0f} |"
        )
    lines.append("")
    s = summary
    lines.append(
        f"Union over the slowest answering target alone ({s['samples']} query-rounds):"
        f" shown (done + merged and ranked) median {s['overhead_median_ms']:.0f} ms, p95"
        f" {s['overhead_p95_ms']:.0f} ms; done alone median {s['overhead_done_median_ms']:.0f},"
        f" p95 {s['overhead_done_p95_ms']:.0f}; with the silent target, the last answer read"
        f" median {s['overhead_with_silent_median_ms']:.0f}, p95"
        f" {s['overhead_with_silent_p95_ms']:.0f}; the silent target's search ends"
        f" {s['silent_extra_median_ms']:.0f} ms (p95 {s['silent_extra_p95_ms']:.0f}) after its"
        " timeout."
    )
    timeline = s["slowest_timeline"]
    if timeline["samples"]:
        lines.append("")
        lines.append(
            f"Where the slowest answering target's time went, alone and in the union (its relay's"
            f" log, {timeline['samples']} query-rounds; ms, median):"
        )
        lines.append("")
        lines.append(
            "| | request reached the relay | server | held by the relay"
            " | client between exchanges | last chunk to final |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|")
        for label, key in (
            ("alone", "alone"),
            ("in the union", "union"),
            ("added (median)", "added"),
            ("added (p95)", "added_p95"),
        ):
            row = timeline[key]
            lines.append(f"| {label} | " + " | ".join(f"{row[p]:.0f}" for p in PARTS) + " |")
        lines.append("")
        lines.append(
            "Shown − slowest alone, less what the slowest target's server and relay added (the"
            " client's own part, with the machine's contention): median"
            f" {timeline['own_median_ms']:.0f} ms, p95 {timeline['own_p95_ms']:.0f} ms."
        )
    lines.append("")
    lines.append("Each target alone, by kind (ms):")
    lines.append("")
    lines.append("| server, protocol, added latency | median | p95 | searches |")
    lines.append("|---|---:|---:|---:|")
    for kind, k in s["alone_by_kind"].items():
        lines.append(f"| {kind} | {k['median_ms']:.0f} | {k['p95_ms']:.0f} | {k['n']} |")
    lines.append("")
    lines.append(
        "| query | records merged | works | merge ms | rank ms | records/s | works/s |"
        " read records/s (syntax) |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for text, m in measured["merge"].items():
        reads = ", ".join(
            f"{r['per_second']:,.0f} ({syntax}, {r['records']})"
            for syntax, r in measured["read"][text].items()
        )
        lines.append(
            f"| {text} | {m['source_records']} | {m['works']} | {m['merge_ms']:.1f}"
            f" | {m['rank_ms']:.1f} | {m['records_per_second']:,.0f}"
            f" | {m['works_per_second']:,.0f} | {reads} |"
        )
    memory = measured["memory"]
    lines.append("")
    lines.append(
        "Memory of the searching process: peak RSS"
        f" {memory['max_rss_kb_before_searches'] / 1024:.0f}"
        f" MB before searching, {memory['max_rss_kb_after_searches'] / 1024:.0f} MB after every"
        f" search; tracemalloc over one {count - 1}-target search: peak"
        f" {memory['tracemalloc_peak_kb'] / 1024:.1f} MB, retained"
        f" {memory['tracemalloc_retained_kb'] / 1024:.1f} MB. `libgate union search` peak RSS"
        f" {s['cli_peak_rss_kb'] / 1024:.0f} MB; its wall with one fast target"
        f" {s['cli_one_target_ms']:.0f} ms (start-up and imports)."
    )
    load = measured["load"]
    lines.append("")
    lines.append(
        f"Machine over the {load['seconds']:.0f} s of measuring: {load['machine_cores']:.2f} cores"
        f" busy, of which this bench and its peers {load['ours_cores']:.2f}, other processes"
        f" {load['others_cores']:.2f}."
    )
    return "\n".join(lines)


def isbn_of(corpus: list[bytes], number: int) -> str:
    """The first ISBN of corpus record `number`, as a reader would type it (no hyphens)."""
    from union.records import read_iso2709

    bib = read_iso2709(corpus[number], "unimarc").bib
    return bib.isbns[0].replace("-", "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=30, help="targets, the silent one too")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds of every query")
    parser.add_argument("--records", type=int, default=2000, help="records per catalogue")
    parser.add_argument("--json", type=Path, help="write every figure and sample here")
    parser.add_argument("--profile", action="store_true", help="cProfile the union searches")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() after the warm-up: start-up's objects left out of GC passes",
    )
    parser.add_argument(
        "--connections",
        choices=("pooled", "fresh"),
        default="pooled",
        help="Z39.50 associations kept across searches, as the portal does (pooled), or a new"
        " one per search, as `libgate union search` (fresh)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0,
        metavar="S",
        help="wait up to S seconds for other processes to leave the machine before measuring",
    )
    args = parser.parse_args()
    if args.targets < 2:
        parser.error("--targets: at least 2 (one answering, the silent one)")
    if not (shutil.which("zebrasrv") and shutil.which("zebraidx")):
        raise SystemExit("zebrasrv and zebraidx are missing: apt-get install idzebra-2.0")
    home = OUT / f"union-{args.records}"
    home.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    servers = start_servers(home, args.records)
    relay: subprocess.Popen[str] | None = None
    try:
        planned = plan(args.targets, servers)
        delayed = [(p.upstream, p.latency_ms) for p in planned if p.latency_ms]
        events_path = home / "relay-events.log"
        relay_ports, relay = start_relays([*delayed, (None, 0)], events_path)
        slowed = iter(relay_ports[:-1])
        ports = [next(slowed) if p.latency_ms else None for p in planned]
        config = union_config(home, planned, ports, relay_ports[-1])
        _, corpus = catalogue_parts(args.records)
        queries = [isbn_of(corpus, args.records // 2) if q == "ISBN" else q for q in QUERIES]
        print(f"peers up in {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
        if args.quiet_wait:
            load_bench.wait_quiet(args.quiet_wait)
        measured = run_on_reactor(
            config, queries, args.rounds, args.profile, args.gc_freeze, args.connections
        )
    finally:
        if relay is not None:
            relay.terminate()
            relay.wait(timeout=30)
        servers.stop()
    events = relay_events(events_path, [p for p in planned if p.latency_ms])
    summary = summarise(measured, planned, events)
    text = report(summary, measured, args)
    print(text)
    if measured["profile"]:
        (OUT / "union-profile.txt").write_text(measured["profile"], encoding="utf-8")
        print(f"\ncProfile: {OUT / 'union-profile.txt'}")
    print(f"\nwhole run {time.monotonic() - began:.0f} s", file=sys.stderr)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "targets": [p.__dict__ for p in planned],
                    "queries": queries,
                    "summary": summary,
                    **{k: v for k, v in measured.items() if k != "profile"},
                },
                ensure_ascii=False,
                indent=1,
            ),
            encoding="utf-8",
        )
    return 0


def run_on_reactor(
    config: Path,
    queries: list[str],
    rounds: int,
    profile: bool,
    freeze: bool,
    connections: str = "pooled",
) -> dict[str, Any]:
    """The measurements on this process's Twisted reactor, with the targets of `config`."""
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    from gateway.config import load_settings

    targets = list(load_settings(str(config)).union.targets)
    outcome: dict[str, Any] = {}

    def start() -> None:
        running = Deferred.fromCoroutine(
            measure(reactor, targets, queries, rounds, config, profile, freeze, connections)
        )
        running.addCallbacks(outcome.update, lambda failure: outcome.update(error=failure))
        running.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run()
    if "error" in outcome:
        outcome["error"].raiseException()
    return outcome


if __name__ == "__main__":
    raise SystemExit(main())
