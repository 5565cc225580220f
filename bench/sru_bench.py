"""libgate's SRU server against Zebra's, same data, same queries: `python bench/sru_bench.py`.

Loads the generated CNMARC file (bench/generate_cnmarc.py, cached under bench/out/) into
libgate (SQLite) and into Zebra (idzebra-2.0, grs.marcxml.unimarc with our UNIMARC indexing
rules from load_bench.py, `encoding: utf-8`, the ICU word-breaking chain, sort registers for
date and title), starts `libgate serve` and `zebrasrv`, and drives both over SRU 1.2 with the
same seeded query mix (CJK words, Latin words, phrases, ISBN, booleans, sorted) at each
concurrency level: one persistent HTTP/1.1 connection per client process, 10 MARCXML records
per response. Prints queries/s, p50/p99 latency and, per query kind, the hits each server
found (where the semantics match, the counts should match).

`--workers 1,2` serves libgate once per figure with that `[service] workers` (default: one per
core), each as its own row. `--processes N` instead serves libgate from N single-worker
processes sharing one listening socket (the socket is opened here and handed to each `libgate
serve` as systemd socket activation does, through LISTEN_FDS; the config says
`listen = ["systemd:domain=INET:index=0"]`).

Not a test: nothing asserts a time. Needs yaz's and idzebra-2.0's programs for the Zebra side
(`--skip-zebra` leaves it out).
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import load_bench  # noqa: E402

from gateway.catalogue.model import BibRecord  # noqa: E402
from gateway.catalogue.normalise import words  # noqa: E402

OUT = ROOT / "bench" / "out"
LIBGATE = [sys.executable, "-m", "gateway.cli"]
HITS = re.compile(rb"<(?:\w+:)?numberOfRecords>(\d+)<")
DIAGNOSTIC = re.compile(rb"info:srw/diagnostic/1/(\d+)")

# Zebra: load_bench's UNIMARC rules (without the series in the title register, as libgate) plus
# the sort registers CQL sortBy needs (Zebra sorts on a register named like the CQL index:
# dc.date → date, dc.title → title).
SORT_ATTRIBUTES = "att 9001 date\natt 9002 title\n"
CQL_EXTRA = """
relation.adj                            = 2=3 4=1
set.bath                                = http://zing.z3950.org/cql/bath/2.0/
index.bath.isbn                         = 1=7 4=3
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port}")


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) of these processes, their live descendants and the children
    they have reaped (Linux /proc): the servers' own cost, which a machine loaded by others
    changes far less than it changes queries/s. 0 where /proc is missing."""
    ticks = 0
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
            for task in Path(f"/proc/{pid}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(child) for child in children)
        except (OSError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


# --- libgate -------------------------------------------------------------------------------


def libgate_database(data: Path, records: int) -> Path:
    path = OUT / f"sru-libgate-{records}.db"
    if path.exists():
        with sqlite3.connect(path) as db:
            if db.execute("SELECT count(*) FROM bib_records").fetchone()[0] == records:
                return path
        path.unlink()
    config = OUT / f"sru-libgate-{records}-load.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{path}"\n', encoding="utf-8")
    started = time.monotonic()
    subprocess.run([*LIBGATE, "--config", str(config), "load", str(data)], check=True, cwd=ROOT)
    print(f"libgate load: {records} records in {time.monotonic() - started:.1f} s", flush=True)
    return path


def start_libgate(
    database: Path, processes: int, threads: int, default_sort: str, workers: int = 1
) -> tuple[int, list[subprocess.Popen[bytes]]]:
    port = free_port()
    listen = "systemd:domain=INET:index=0" if processes > 1 else f"tcp:{port}:interface=127.0.0.1"
    config = OUT / "sru-bench-serve.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{database}"\n'
        f"[service]\nworkers = {workers if processes == 1 else 1}\n"
        f'[sru]\nlisten = ["{listen}"]\n'
        f'threads = {threads}\nmax_records = 100\ndefault_sort = "{default_sort}"\n'
        "[sip2]\nlisten = []\n[z3950]\nlisten = []\n"
        "[notices]\nenabled = false\n[holds]\nprocess_every_seconds = 86400\n",
        encoding="utf-8",
    )
    command = [*LIBGATE, "--config", str(config), "serve"]
    servers = []
    if processes == 1:
        servers.append(subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL))
    else:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(1024)
        fd = listener.fileno()

        def as_fd_3() -> None:  # systemd passes listening sockets from fd 3 on
            os.dup2(fd, 3)
            os.set_inheritable(3, True)

        for _ in range(processes):
            # LISTEN_PID must be the server's own pid: the shell's, which exec keeps.
            servers.append(
                subprocess.Popen(
                    ["sh", "-c", 'export LISTEN_PID=$$; exec "$@"', "sh", *command],
                    cwd=ROOT,
                    env={**os.environ, "LISTEN_FDS": "1", "LISTEN_FDNAMES": "sru"},
                    preexec_fn=as_fd_3,
                    pass_fds=(fd, 3),  # 3: the copy made in as_fd_3
                    stdout=subprocess.DEVNULL,
                )
            )
        listener.close()
    wait_for(port)
    return port, servers


# --- Zebra ---------------------------------------------------------------------------------


def zebra_directory(data: Path, records: int) -> Path:
    directory = OUT / f"sru-zebra-{records}"
    done = directory / "indexed"
    if done.exists():
        return directory
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    config = load_bench.zebra_config(directory, icu=True)
    rules = load_bench.UNIMARC_ABS.replace(
        "Date-of-publication:w:range(data,9,4)",
        "Date-of-publication:w:range(data,9,4),date:s:range(data,9,4)",
    ).replace("melm 200$a      Title,Title:p", "melm 200$a      Title,Title:p,title:s")
    # libgate's title index does not hold the series (225$a is the series index): nor here,
    # so that title searches mean the same on both servers.
    rules = rules.replace(
        "melm 225$a      Title-series,Title-series:p,Title",
        "melm 225$a      Title-series,Title-series:p",
    )
    (directory / "unimarc.abs").write_text(rules, encoding="utf-8")
    (directory / "libgate-bib1.att").write_text(load_bench.ATTSET + SORT_ATTRIBUTES, "utf-8")
    properties = Path("/usr/share/yaz/etc/pqf.properties").read_text("utf-8")
    # The first definition of a key wins: ours replace YAZ's defaults for the same keys.
    ours = {line.split("=")[0].strip() for line in CQL_EXTRA.strip().splitlines()}
    kept = [line for line in properties.splitlines() if line.split("=")[0].strip() not in ours]
    (directory / "pqf.properties").write_text("\n".join(kept) + "\n" + CQL_EXTRA, encoding="utf-8")
    subprocess.run(
        ["zebraidx", "-c", str(config), "-l", "init.log", "init"], cwd=directory, check=True
    )
    started = time.monotonic()
    subprocess.run(
        ["zebraidx", "-c", str(config), "-l", "index.log", "update", str(data)],
        cwd=directory,
        check=True,
    )
    print(f"zebraidx: {records} records in {time.monotonic() - started:.1f} s", flush=True)
    done.write_text("ok\n")
    return directory


def start_zebra(directory: Path) -> tuple[int, list[subprocess.Popen[bytes]]]:
    port = free_port()
    # The GFS converts the stored UNIMARC to MARCXML, as libgate does, so both send the same.
    (directory / "yazgfs.xml").write_text(
        f"""<yazgfs>
  <listen id="public">tcp:127.0.0.1:{port}</listen>
  <server id="zebra" listenref="public">
    <config>zebra.cfg</config>
    <cql2rpn>pqf.properties</cql2rpn>
    <retrievalinfo>
      <retrieval syntax="xml" name="marcxml">
        <backend syntax="unimarc" name="F">
          <marc inputformat="marc" outputformat="marcxml" inputcharset="utf-8"/>
        </backend>
      </retrieval>
      <retrieval syntax="unimarc" name="F"/>
    </retrievalinfo>
  </server>
</yazgfs>
""",
        encoding="utf-8",
    )
    server = subprocess.Popen(
        ["zebrasrv", "-f", "yazgfs.xml", "-l", "srv.log", "-v", "none"], cwd=directory
    )
    wait_for(port)
    return port, [server]


# --- the query mix ---------------------------------------------------------------------------


def query_mix(database: Path, data: Path, seed: int, per_kind: int) -> list[tuple[str, str]]:
    """(kind, CQL) pairs in a fixed, shuffled order, drawn from the loaded records."""
    import generate_cnmarc

    chooser = random.Random(seed)
    with sqlite3.connect(database) as db:
        count = db.execute("SELECT count(*) FROM bib_records").fetchone()[0]
        rows = db.execute(
            "SELECT bib FROM bib_records WHERE id % ? = 0 ORDER BY id LIMIT 3000",
            (max(count // 3000, 1),),
        ).fetchall()
    bibs = [BibRecord.from_json(row[0]) for row in rows]
    # ISBNs exactly as catalogued (Zebra's ISBN register is the raw value; ours normalises)
    catalogued = set(re.findall(rb"\x1fa(97[89]\d{10})[\x1e\x1f]", data.read_bytes()))
    isbns = [i for b in bibs for i in b.isbns if i.encode() in catalogued][:2000]
    latin, phrases = [], []
    for bib in bibs:
        found = [w for w in words(bib.title) if w.isascii() and w.isalpha() and len(w) > 3]
        latin += found
        if len(found) >= 2:
            phrases.append(" ".join(found[:2]))
    cjk = [w for w in generate_cnmarc.ZH_WORDS if len(w) == 2]

    def pick(values: list[str]) -> list[str]:
        return [chooser.choice(values) for _ in range(per_kind)]

    mix = (
        [("CJK word", f"dc.title = {w}") for w in pick(cjk)]
        + [("Latin word", f"dc.title = {w}") for w in pick(latin)]
        + [("phrase", f'dc.title adj "{p}"') for p in pick(phrases)]
        + [("ISBN", f"bath.isbn = {i}") for i in pick(isbns)]
        + [
            ("boolean", f"dc.title = {a} and dc.title = {b}")
            for a, b in zip(pick(cjk), pick(cjk), strict=True)
        ]
        + [("sorted", f"dc.title = {w} sortby dc.date/sort.descending") for w in pick(cjk)]
    )
    chooser.shuffle(mix)
    return mix


# --- the load generator ----------------------------------------------------------------------


def client(
    args: tuple[int, str, list[tuple[str, str]], int, int],
) -> list[tuple[str, float, int, int]]:
    """One connection: (kind, seconds, hits, diagnostic number or 0) per query."""
    port, path, queries, maximum, warm = args
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    results = []
    for index, (kind, query) in enumerate(queries):
        target = (
            path
            + "?"
            + urlencode(
                {
                    "version": "1.2",
                    "operation": "searchRetrieve",
                    "query": query,
                    "maximumRecords": maximum,
                    "recordSchema": "marcxml",
                }
            )
        )
        started = time.perf_counter()
        connection.request("GET", target)
        body = connection.getresponse().read()
        elapsed = time.perf_counter() - started
        if index < warm:
            continue
        hits = HITS.search(body)
        diagnostic = DIAGNOSTIC.search(body)
        results.append(
            (
                kind,
                elapsed,
                int(hits.group(1)) if hits else 0,
                int(diagnostic.group(1)) if diagnostic else 0,
            )
        )
    connection.close()
    return results


def drive(
    port: int, path: str, mix: list[tuple[str, str]], connections: int, maximum: int
) -> tuple[float, float, float, list[tuple[str, float, int, int]]]:
    warm = 20
    shares = [mix[i::connections] for i in range(connections)]
    jobs = [(port, path, share[:warm] + share, maximum, warm) for share in shares]
    with multiprocessing.Pool(connections) as pool:
        started = time.perf_counter()
        parts = pool.map(client, jobs)
        wall = time.perf_counter() - started
    results = [r for part in parts for r in part]
    # the warm-up requests are inside `wall`; count them in the rate too
    rate = (len(results) + warm * connections) / wall
    latencies = sorted(r[1] for r in results)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return rate, statistics.median(latencies) * 1000, p99 * 1000, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--per-kind", type=int, default=300, help="queries of each kind")
    parser.add_argument("--connections", default="1,4", help="comma-separated levels")
    parser.add_argument(
        "--workers",
        default=str(os.cpu_count() or 1),
        help="comma-separated [service] workers figures, one libgate row each (default: cores)",
    )
    parser.add_argument("--processes", type=int, default=1, help="libgate serve processes")
    parser.add_argument("--threads", type=int, default=8, help="SRU threads per process")
    parser.add_argument("--maximum", type=int, default=10, help="records per response")
    parser.add_argument(
        "--default-sort",
        default="record,relevance",
        help="comma-separated [sru] default_sort values, one libgate row each: record"
        " (catalogue order, as Zebra answers) and relevance (ranked)",
    )
    parser.add_argument("--skip-zebra", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    data = load_bench.generated_file(args.records)
    database = libgate_database(data, args.records)
    zebra = None if args.skip_zebra else zebra_directory(data, args.records)
    mix = query_mix(database, data, 7, args.per_kind)
    levels = [int(level) for level in args.connections.split(",")]
    servers: list[tuple[str, int, str, list[subprocess.Popen[bytes]]]] = []
    rows, kinds = [], {}
    try:
        sorts = args.default_sort.split(",")
        if not set(sorts) <= {"record", "relevance"}:
            parser.error(f"--default-sort: {args.default_sort!r}: each is record or relevance")
        for default_sort in sorts:
            for workers in [int(figure) for figure in args.workers.split(",")]:
                port, processes = start_libgate(
                    database, args.processes, args.threads, default_sort, workers
                )
                label = f"libgate ({default_sort} order" + (
                    f", {args.processes} processes)"
                    if args.processes > 1
                    else f", {workers} worker{'s' if workers > 1 else ''})"
                )
                servers.append((label, port, "/main", processes))
        if zebra is not None:
            port, processes = start_zebra(zebra)
            servers.append(("Zebra 2.2.7 (ICU)", port, "/Default", processes))
        for connections in levels:
            for label, port, path, processes in servers:
                pids = [process.pid for process in processes]
                cpu = cpu_seconds(pids)
                rate, p50, p99, results = drive(port, path, mix, connections, args.maximum)
                # per request, the warm-up ones included (drive counts them in the rate too)
                cpu = (cpu_seconds(pids) - cpu) * 1000 / (len(results) + 20 * connections)
                diagnostics = Counter(r[3] for r in results if r[3])
                hits = sum(r[2] for r in results)
                rows.append((label, connections, rate, cpu, p50, p99, hits, diagnostics))
                by_kind: dict[str, int] = {}
                for kind, _, hits, _ in results:
                    by_kind[kind] = by_kind.get(kind, 0) + hits
                kinds[label] = by_kind
                print(
                    f"{label}, {connections} connection(s): {rate:,.0f} q/s, p50 {p50:.2f} ms,"
                    f" p99 {p99:.2f} ms",
                    flush=True,
                )
    finally:
        for _, _, _, processes in servers:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
    print()
    print(
        f"{args.records:,} records, {len(mix)} queries ({args.per_kind} per kind), "
        f"{args.maximum} MARCXML records per response, SRU 1.2 GET, keep-alive"
    )
    print()
    # The ratio is to Zebra at the same number of connections, in this run.
    zebra_rate = {c: rate for label, c, rate, *_ in rows if label.startswith("Zebra")}
    print(
        "| server | connections | q/s | × Zebra | server CPU ms/q | p50 ms | p99 ms | hits (sum)"
        " | diagnostics |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for label, connections, rate, cpu, p50, p99, hits, diagnostics in rows:
        shown = ", ".join(f"{n}: {c}" for n, c in sorted(diagnostics.items())) or "none"
        ratio = f"{rate / zebra_rate[connections]:.2f}" if connections in zebra_rate else "-"
        print(
            f"| {label} | {connections} | {rate:,.0f} | {ratio} | {cpu:.2f} | {p50:.2f}"
            f" | {p99:.2f} | {hits:,} | {shown} |"
        )
    print()
    labels = list(kinds)
    print("| query kind | " + " | ".join(f"hits: {label}" for label in labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for kind in sorted({k for found in kinds.values() for k in found}):
        print(
            f"| {kind} | " + " | ".join(f"{kinds[label].get(kind, 0):,}" for label in labels) + " |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
