"""Memory of a large catalogue: `python bench/memory_bench.py --records 1000000`.

1. Loads the generated CNMARC file of N records (bench/generate_cnmarc.py, seed 1; the file
   bench/load_bench.py uses) into a fresh SQLite database kept under bench/out/ (`--report`
   written next to it), measuring wall time, the peak RSS of the largest process and the peak
   PSS of the whole process tree (the prepare workers included), as bench/load_bench.py does.
2. Serves that database with `libgate serve` (one process: `[service] workers = 1`; SRU and
   Z39.50 listeners) and drives the SRU and Z39.50 benchmarks' query mixes at it (CJK and Latin
   words, phrases, ISBNs, booleans, title-sorted), while sampling the server's memory every
   0.2 s from /proc: RSS, its anonymous part (the Python heap, Tantivy's caches), its
   file-backed part, and of that how much is the Tantivy index's memory-mapped files (page
   cache the kernel can drop and share, not memory the process owns).

Prints a Markdown table and writes it to bench/out/memory-bench-*.md. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import load_bench  # noqa: E402
import sru_bench  # noqa: E402
import z3950_bench  # noqa: E402

OUT = ROOT / "bench" / "out"


def load(records: int) -> tuple[Path, list[str]]:
    """The database of N records (loaded once, measured); lines describing the load."""
    path = load_bench.generated_file(records)
    database = OUT / f"memory-{records}.db"
    if database.exists():
        with sqlite3.connect(database) as db:
            if db.execute("SELECT count(*) FROM bib_records").fetchone()[0] == records:
                return database, [f"database {database} already loaded (not measured again)"]
        for stale in OUT.glob(f"memory-{records}.db*"):
            if stale.is_dir():
                shutil.rmtree(stale)
            else:
                stale.unlink()
    load_bench.warm(path)
    config = OUT / f"memory-{records}-load.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{database}"\n', encoding="utf-8")
    report = OUT / f"memory-{records}-report.json"
    run = load_bench.run_measured(
        [*load_bench.libgate_command(), "--config", str(config), "load", str(path)]
        + ["--report", str(report)],
        cwd=ROOT,
    )
    if run.returncode != 0:
        raise SystemExit(f"load failed: {run.stderr[-500:]}")
    timings = json.loads(report.read_text(encoding="utf-8")).get("timings", {})
    size = sum(f.stat().st_size for f in OUT.glob(f"memory-{records}.db*") if f.is_file())
    index = sum(f.stat().st_size for f in (OUT / f"memory-{records}.db.search").iterdir())
    return database, [
        f"| load {records:,} records | {run.seconds:.1f} s | {records / run.seconds:,.0f} rec/s"
        f" | peak RSS {run.peak_rss_kb / 1024:.0f} MB (largest process)"
        f" | peak PSS {run.peak_tree_kb / 1024:.0f} MB (all processes)"
        f" | CPU {run.cpu_seconds:.0f} s (others {run.other_cpu_seconds:.0f} s) |",
        "",
        f"Split (`--report` timings): {json.dumps(timings)}",
        f"Database {size / 1e6:,.0f} MB, Tantivy index {index / 1e6:,.0f} MB.",
    ]


def memory(pid: int, index_dir: Path) -> dict[str, int]:
    """kB: rss, anon, file (file-backed and shared memory), index (Tantivy's mapped files)."""
    values = {"rss": 0, "anon": 0, "file": 0, "index": 0}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    kb = int(rest.split()[0])
                    if key == "VmRSS":
                        values["rss"] = kb
                    elif key == "RssAnon":
                        values["anon"] = kb
                    else:
                        values["file"] += kb
        prefix = str(index_dir.resolve())
        mapped = ""
        with open(f"/proc/{pid}/smaps", encoding="utf-8", errors="replace") as smaps:
            for line in smaps:
                first = line.split(maxsplit=1)[0]
                if "-" in first and not first.endswith(":"):
                    fields = line.split()
                    mapped = fields[5] if len(fields) > 5 else ""
                elif first == "Rss:" and mapped.startswith(prefix):
                    values["index"] += int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--per-kind", type=int, default=100, help="queries of each kind")
    args = parser.parse_args()
    database, lines = load(args.records)
    index_dir = Path(str(database) + ".search")
    data = load_bench.generated_file(args.records)
    sru_mix = sru_bench.query_mix(database, data, 1, args.per_kind)
    z_mix = [
        (kind, z3950_bench.search_apdu(rpn, "main", 10))
        for kind, rpn in z3950_bench.query_mix(database, data, args.per_kind)
    ]
    port = sru_bench.free_port()
    z_port = sru_bench.free_port()
    config = OUT / "memory-bench-serve.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{database}"\n'
        '[service]\nworkers = 1\nlog_level = "warning"\n'
        f'[sru]\nlisten = ["tcp:{port}:interface=127.0.0.1"]\n'
        f'[z3950]\nlisten = ["tcp:{z_port}:interface=127.0.0.1"]\n'
        "[sip2]\nlisten = []\n[notices]\nenabled = false\n[holds]\nprocess_every_seconds = 86400\n",
        encoding="utf-8",
    )
    server = subprocess.Popen(
        [*load_bench.libgate_command(), "--config", str(config), "serve"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    peaks: dict[str, dict[str, int]] = {}
    phase = ["started"]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            now = memory(server.pid, index_dir)
            best = peaks.setdefault(phase[0], dict(now))
            for key, value in now.items():
                best[key] = max(best[key], value)
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        sru_bench.wait_for(port)
        sru_bench.wait_for(z_port)
        sampler.start()
        time.sleep(1)
        phase[0] = "SRU, 1 connection"
        rate1, p50_1, _, _ = sru_bench.drive(port, "/main", sru_mix, 1, 10)
        phase[0] = "SRU, 4 connections"
        rate4, _, _, _ = sru_bench.drive(port, "/main", sru_mix, 4, 10)
        phase[0] = "Z39.50, 4 associations"
        zrate, _, _, _ = z3950_bench.drive(z_port, z_mix, 4)
        time.sleep(0.5)
    finally:
        done.set()
        server.terminate()
        server.wait(timeout=30)
    lines += [
        "",
        f"`libgate serve` (one process) over the {args.records:,}-record database:"
        f" SRU {rate1:,.0f} q/s (1 connection, median {p50_1:.1f} ms), {rate4:,.0f} q/s"
        f" (4 connections); Z39.50 {zrate:,.0f} searches/s (4 associations).",
        "",
        "| phase | peak RSS MB | anonymous MB | file-backed MB | of which Tantivy index (mmap) MB |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, peak in peaks.items():
        lines.append(
            f"| {name} | {peak['rss'] / 1024:.0f} | {peak['anon'] / 1024:.0f}"
            f" | {peak['file'] / 1024:.0f} | {peak['index'] / 1024:.0f} |"
        )
    command = "python bench/memory_bench.py " + " ".join(sys.argv[1:])
    load_bench.emit(
        load_bench.header(f"Memory: {args.records:,} records", command.strip()) + lines,
        "memory-bench",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
