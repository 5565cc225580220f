"""libgate's Z39.50 target against Zebra's, same data, same RPN queries:
`python bench/z3950_bench.py`.

The data, libgate's database and Zebra's index are the SRU benchmark's (bench/sru_bench.py:
the generated 100k-record CNMARC file, libgate on SQLite, Zebra 2.2.7 with the ICU chain and
`encoding: utf-8`), so both benchmarks measure the same catalogues. Starts `libgate serve` with
a Z39.50 listener and `zebrasrv` with UNIMARC retrieval, then drives both with the same seeded
RPN query mix (CJK words, Latin words, phrases, ISBNs, ANDed CJK words) from 1 and 4 client
processes, one Z39.50 association each, charset UTF-8 negotiated. Every Search asks for up to
10 piggy-backed UNIMARC records (small set 0, medium set 10, large set 1,000,000: every hit
count below that gets min(hits, 10) records). Prints searches/s, p50/p99 latency, and per
query kind the hits each server found beside the other's.

The client is raw sockets and pre-encoded APDUs; it reads only the response's top level
(result count, records returned) so that its own cost stays small beside the servers'.
`--workers 1,2` serves libgate once per figure with that `[service] workers` (default: one per
core), each its own row; `--processes N` instead runs N single-worker `libgate serve` sharing a
socket handed over as systemd does.

Not a test: nothing asserts a time. `--skip-zebra` leaves Zebra out.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import load_bench  # noqa: E402
import sru_bench  # noqa: E402

from gateway.z3950_codec import ber, oids  # noqa: E402
from gateway.z3950_codec.messages import OPTION_BITS  # noqa: E402
from z3950 import codec  # noqa: E402

OUT = ROOT / "bench" / "out"
LIBGATE = [sys.executable, "-m", "gateway.cli"]
LARGE_SET = 1_000_000


# --- servers ---------------------------------------------------------------------------------


def start_libgate(
    database: Path, threads: int, default_sort: str, processes: int, workers: int = 1
) -> tuple[int, list[subprocess.Popen[bytes]]]:
    """`libgate serve` with a Z39.50 listener; with several processes they share one listening
    socket handed over as systemd socket activation does (LISTEN_FDS, fd 3), each association
    living in the process that accepted it."""
    port = sru_bench.free_port()
    listen = "systemd:domain=INET:index=0" if processes > 1 else f"tcp:{port}:interface=127.0.0.1"
    config = OUT / "z3950-bench-serve.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{database}"\n'
        f'[z3950]\nlisten = ["{listen}"]\nthreads = {threads}\n'
        f'default_sort = "{default_sort}"\n'
        "[sru]\nlisten = []\n[sip2]\nlisten = []\n"
        "[notices]\nenabled = false\n[holds]\nprocess_every_seconds = 86400\n"
        f'[service]\nlog_level = "warning"\nworkers = {workers if processes == 1 else 1}\n',
        encoding="utf-8",
    )
    command = [*LIBGATE, "--config", str(config), "serve"]
    if processes == 1:
        server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
        sru_bench.wait_for(port)
        return port, [server]
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1024)
    fd = listener.fileno()

    def as_fd_3() -> None:  # systemd passes listening sockets from fd 3 on
        os.dup2(fd, 3)
        os.set_inheritable(3, True)

    servers = [
        subprocess.Popen(
            ["sh", "-c", 'export LISTEN_PID=$$; exec "$@"', "sh", *command],
            cwd=ROOT,
            env={**os.environ, "LISTEN_FDS": "1", "LISTEN_FDNAMES": "z3950"},
            preexec_fn=as_fd_3,
            pass_fds=(fd, 3),
            stdout=subprocess.DEVNULL,
        )
        for _ in range(processes)
    ]
    listener.close()
    sru_bench.wait_for(port)
    time.sleep(2)  # every process started and accepting, not only the first
    return port, servers


def start_zebra(directory: Path) -> tuple[int, subprocess.Popen[bytes]]:
    port = sru_bench.free_port()
    config = directory / "yazgfs-z3950.xml"
    config.write_text(
        f"""<yazgfs>
  <listen id="public">tcp:127.0.0.1:{port}</listen>
  <server id="zebra" listenref="public">
    <config>zebra.cfg</config>
    <retrievalinfo>
      <retrieval syntax="unimarc" name="F"/>
    </retrievalinfo>
  </server>
</yazgfs>
""",
        encoding="utf-8",
    )
    server = subprocess.Popen(
        ["zebrasrv", "-f", config.name, "-l", "srv-z3950.log", "-v", "none"], cwd=directory
    )
    sru_bench.wait_for(port)
    return port, server


# --- the query mix -----------------------------------------------------------------------------


def term(text: str, **attributes: int) -> tuple[str, Any]:
    types = {"use": 1, "structure": 4}  # Bib-1 attribute types
    elements = [
        {"attributeType": types[name], "attributeValue": ("numeric", value)}
        for name, value in attributes.items()
    ]
    return ("op", ("attrTerm", {"attributes": elements, "term": ("general", text.encode())}))


def rpn_of(cql: str) -> tuple[str, Any] | None:
    """The RPN for the SRU mix's CQL forms (None for sorted queries: Search does not sort)."""
    if "sortby" in cql:
        return None
    if match := re.fullmatch(r"dc\.title = (\S+) and dc\.title = (\S+)", cql):
        return (
            "rpnRpnOp",
            {
                "rpn1": term(match.group(1), use=4),
                "rpn2": term(match.group(2), use=4),
                "op": ("and", None),
            },
        )
    if match := re.fullmatch(r'dc\.title adj "(.+)"', cql):
        return term(match.group(1), use=4, structure=1)
    if match := re.fullmatch(r"bath\.isbn = (\S+)", cql):
        return term(match.group(1), use=7, structure=3)  # key: Zebra keeps ISBNs whole
    if match := re.fullmatch(r"dc\.title = (\S+)", cql):
        return term(match.group(1), use=4)
    raise ValueError(f"no RPN for {cql!r}")


def query_mix(database: Path, data: Path, per_kind: int) -> list[tuple[str, tuple[str, Any]]]:
    mix = []
    for kind, cql in sru_bench.query_mix(database, data, 7, per_kind):
        rpn = rpn_of(cql)
        if rpn is not None:
            mix.append((kind, rpn))
    return mix


def init_apdu() -> bytes:
    def bits(names: list[str], table: dict[str, int]) -> tuple[bytes, int]:
        width = max(table.values()) + 1
        data = bytearray((width + 7) // 8)
        for name in names:
            data[table[name] // 8] |= 0x80 >> (table[name] % 8)
        return bytes(data), width

    proposal = codec.schema().encode(
        "CharSetandLanguageNegotiation",
        ("proposal", {"proposedCharSets": [("iso10646", {"encodingLevel": oids.ISO10646_UTF8})]}),
    )
    value = {
        "protocolVersion": bits(["1", "2", "3"], {"1": 0, "2": 1, "3": 2}),
        "options": bits(["search", "present", "namedResultSets", "negotiationModel"], OPTION_BITS),
        "preferredMessageSize": 1 << 20,
        "exceptionalRecordSize": 1 << 20,
        "implementationName": b"libgate z3950_bench",
        "otherInfo": [
            {
                "information": (
                    "externallyDefinedInfo",
                    {
                        "direct-reference": oids.CHARSET_NEGOTIATION_3,
                        "encoding": ("single-ASN1-type", bytes(proposal)),
                    },
                )
            }
        ],
    }
    return bytes(codec.schema().encode("PDU", ("initRequest", value)))


def search_apdu(rpn: tuple[str, Any], database: str, maximum: int) -> bytes:
    value = {
        "smallSetUpperBound": 0,
        "largeSetLowerBound": LARGE_SET,
        "mediumSetPresentNumber": maximum,
        "replaceIndicator": True,
        "resultSetName": b"default",
        "databaseNames": [database.encode()],
        "mediumSetElementSetNames": ("genericElementSetName", b"F"),
        "preferredRecordSyntax": oids.UNIMARC,
        "query": ("type-1", {"attributeSet": oids.BIB1, "rpn": rpn}),
    }
    return bytes(codec.schema().encode("PDU", ("searchRequest", value)))


# --- the load generator ------------------------------------------------------------------------


def read_apdu(sock: socket.socket, buffer: bytearray) -> bytes:
    while True:
        length = ber.apdu_length(buffer, 1 << 26)
        if length is not None:
            apdu = bytes(buffer[:length])
            del buffer[:length]
            return apdu
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buffer += chunk


def summary(apdu: bytes) -> tuple[int, int, int]:
    """(result count, records returned, diagnostic or 0) from a search response's top level."""
    _, children = ber.top_level(ber.normalise(apdu))  # YAZ writes indefinite lengths
    count = returned = diagnostic = 0
    for header, body in children:
        if header.tag == 23:
            count = int.from_bytes(body, "big", signed=True)
        elif header.tag == 24:
            returned = int.from_bytes(body, "big", signed=True)
        elif header.tag == 130:
            diagnostic = codec.schema().decode(
                "DefaultDiagFormat", b"\x30" + ber.encode_length(len(body)) + body
            )["condition"]
    return count, returned, diagnostic


Timed = tuple[list[tuple[str, float, int, int, int]], float, float]


def client(args: tuple[int, list[tuple[str, bytes]], int]) -> Timed:
    """One association: (kind, seconds, hits, records returned, diagnostic) per search after
    the warm-up, and when the measured searches began and ended (CLOCK_MONOTONIC, comparable
    between processes)."""
    port, queries, warm = args
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = bytearray()
    sock.sendall(init_apdu())
    read_apdu(sock, buffer)
    results = []
    began = 0.0
    for index, (kind, apdu) in enumerate(queries):
        started = time.perf_counter()
        if index == warm:
            began = started
        sock.sendall(apdu)
        answer = read_apdu(sock, buffer)
        elapsed = time.perf_counter() - started
        if index >= warm:
            results.append((kind, elapsed, *summary(answer)))
    ended = time.perf_counter()
    sock.close()
    return results, began, ended


def drive(
    port: int, mix: list[tuple[str, bytes]], connections: int
) -> tuple[float, float, float, list[tuple[str, float, int, int, int]]]:
    """Searches/s over the span from the first measured search to the last (the warm-up, where
    a cold index reads its first pages, is left out for both servers), p50, p99, results."""
    warm = 20
    shares = [mix[i::connections] for i in range(connections)]
    jobs = [(port, share[:warm] + share, warm) for share in shares]
    with multiprocessing.Pool(connections) as pool:
        parts = pool.map(client, jobs)
    results = [r for part, _, _ in parts for r in part]
    wall = max(ended for _, _, ended in parts) - min(began for _, began, _ in parts)
    rate = len(results) / wall
    latencies = sorted(r[1] for r in results)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return rate, statistics.median(latencies) * 1000, p99 * 1000, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--per-kind", type=int, default=300, help="queries of each kind")
    parser.add_argument("--connections", default="1,4", help="comma-separated levels")
    parser.add_argument("--threads", type=int, default=4, help="[z3950] threads")
    parser.add_argument(
        "--workers",
        default=str(os.cpu_count() or 1),
        help="comma-separated [service] workers figures, one libgate row each (default: cores)",
    )
    parser.add_argument("--processes", type=int, default=1, help="libgate serve processes")
    parser.add_argument("--maximum", type=int, default=10, help="piggy-backed records")
    parser.add_argument(
        "--default-sort",
        choices=("relevance", "record"),
        default="record",
        help="libgate's [z3950] default_sort: catalogue order as Zebra answers, or ranked",
    )
    parser.add_argument("--skip-zebra", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    data = load_bench.generated_file(args.records)
    database = sru_bench.libgate_database(data, args.records)
    zebra = None if args.skip_zebra else sru_bench.zebra_directory(data, args.records)
    mix = query_mix(database, data, args.per_kind)
    servers: list[tuple[str, int, str, list[subprocess.Popen[bytes]]]] = []
    rows, kinds = [], {}
    try:
        for workers in [int(figure) for figure in args.workers.split(",")]:
            port, processes = start_libgate(
                database, args.threads, args.default_sort, args.processes, workers
            )
            if workers > 1:
                time.sleep(2)  # every worker started and accepting, not only the first
            label = f"libgate ({args.default_sort} order" + (
                f", {args.processes} processes)"
                if args.processes > 1
                else f", {workers} worker{'s' if workers > 1 else ''})"
            )
            servers.append((label, port, "main", processes))
        if zebra is not None:
            port, process = start_zebra(zebra)
            servers.append(("Zebra 2.2.7 (ICU)", port, "Default", [process]))
        for connections in (int(level) for level in args.connections.split(",")):
            for label, port, name, processes in servers:
                encoded = [(kind, search_apdu(rpn, name, args.maximum)) for kind, rpn in mix]
                pids = [process.pid for process in processes]
                cpu = sru_bench.cpu_seconds(pids)
                rate, p50, p99, results = drive(port, encoded, connections)
                # per search, the warm-up ones and the Inits included
                cpu = (sru_bench.cpu_seconds(pids) - cpu) * 1000 / (len(results) + 20 * connections)
                diagnostics = Counter(r[4] for r in results if r[4])
                rows.append(
                    (
                        label,
                        connections,
                        rate,
                        cpu,
                        p50,
                        p99,
                        sum(r[2] for r in results),
                        sum(r[3] for r in results),
                        diagnostics,
                    )
                )
                by_kind: dict[str, int] = {}
                for kind, _, hits, _, _ in results:
                    by_kind[kind] = by_kind.get(kind, 0) + hits
                kinds[label] = by_kind
                print(
                    f"{label}, {connections} session(s): {rate:,.0f} searches/s,"
                    f" p50 {p50:.2f} ms, p99 {p99:.2f} ms",
                    flush=True,
                )
    finally:
        for _, _, _, processes in servers:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
    print()
    print(
        f"{args.records:,} records, {len(mix)} searches ({args.per_kind} per kind), up to"
        f" {args.maximum} piggy-backed UNIMARC records per search, Z39.50 v3, UTF-8 negotiated"
    )
    print()
    # The ratio is to Zebra with the same number of sessions, in this run.
    zebra_rate = {c: rate for label, c, rate, *_ in rows if label.startswith("Zebra")}
    print(
        "| server | sessions | searches/s | × Zebra | server CPU ms/search | p50 ms | p99 ms"
        " | hits (sum) | records sent | diagnostics |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for label, connections, rate, cpu, p50, p99, hits, sent, diagnostics in rows:
        shown = ", ".join(f"{n}: {c}" for n, c in sorted(diagnostics.items())) or "none"
        ratio = f"{rate / zebra_rate[connections]:.2f}" if connections in zebra_rate else "-"
        print(
            f"| {label} | {connections} | {rate:,.0f} | {ratio} | {cpu:.2f} | {p50:.2f}"
            f" | {p99:.2f} | {hits:,} | {sent:,} | {shown} |"
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
    raise SystemExit(main())
