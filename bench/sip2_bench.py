"""SIP2 server throughput and latency, 50 self-check connections: `python bench/sip2_bench.py`.

Builds a catalogue of its own (bench/generate_cnmarc.py records, one bench copy per record so
no two connections ever touch the same copy or title, one reader per connection), starts
`libgate serve` with one SIP2 account per connection, and drives it from separate client
processes (raw non-blocking sockets on epoll, no asyncio overhead), each connection logged in
with 93 and then sending one request at a time, every frame with AY/AZ, reading each response
up to its CR and checking its checksum and its ok flag:

- circulation: 11 checkout then 09 checkin of the connection's own copies, for its own reader,
  as fast as answers come (saturation, closed loop), then paced at `--rate` transactions/s
  across all connections (open loop: latency is counted from the moment a request was due,
  so a slow answer is not hidden by the next request starting late; 1,500 and 3,000/s by
  default, i.e. 750 and 1,500 checkout+checkin pairs/s);
- read-only: 17 item information and 23 patron status alternately (no PIN: a self-check
  machine checks the PIN once, with 63, not on every status poll);
- checkout with the reader's PIN in AD (as the PyPI `sip2` client sends every 11), then checkin:
  each such checkout verifies a scrypt PIN hash;
- the ceiling: the same read-only stream against a bare Twisted server (in this file) that
  answers every frame with one fixed SIP2 response, in the same run.

On SQLite and, with `--postgres DSN`, on PostgreSQL (a fresh schema in that database, dropped
at the end). One transaction = one 11 or one 09 with its answer. CPU use of the server and of
the client processes is printed beside each figure, so a load generator at its limit shows.
Not a test: no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import heapq
import multiprocessing
import os
import resource
import select
import socket
import subprocess
import sys
import time
import uuid
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sip2.codec import checksum  # noqa: E402

OUT = ROOT / "bench" / "out"
LIBGATE = str(Path(sys.executable).parent / "libgate")
INSTITUTION = "MAIN"
LOCATION = "中文书库"  # a location of the default config
ITEM_TYPE = "普通外借资料"  # circulating
CATEGORY = "本科生"  # a patron category of the default config
PASSWORD = "bench"
CIRCULATION = ("11 checkout", "09 checkin")
READ_ONLY = ("17 item information", "23 patron status")
# What a good answer starts with (command, then the ok flag where there is one).
LOGIN_ATTEMPTS = 5  # a 940 at login is tried again (see _connect)
EXPECTED = {"11": b"121", "09": b"101", "17": b"18", "23": b"24"}


# --- requests ------------------------------------------------------------------------------


def frame(body: str, sequence: int) -> bytes:
    """A request with AY and AZ, the checksum over the bytes through `AZ`, and its CR."""
    data = f"{body}AY{sequence}AZ".encode()
    return data + checksum(data).encode("ascii") + b"\r"


def response_ok(data: bytes) -> bool:
    """The response ends with `AZxxxx` CR and its checksum adds up."""
    body = data.rstrip(b"\r\n")
    if len(body) < 6 or body[-6:-4] != b"AZ":
        return False
    try:
        stated = int(body[-4:], 16)
    except ValueError:
        return False
    return (sum(body[:-4]) + stated) & 0xFFFF == 0


def sip_date() -> str:
    return time.strftime("%Y%m%d    %H%M%S")


@dataclass(frozen=True)
class Terminal:
    """One SC connection: its account, its reader and its copies."""

    login: str
    patron: str
    items: tuple[str, ...]
    pin: str = ""

    def login_frame(self) -> bytes:
        return frame(f"9300CN{self.login}|CO{PASSWORD}|CP{LOCATION}|", 0)

    def steps(self, mode: str) -> list[tuple[str, str]]:
        """(command, body) in the order this terminal sends them, repeated for ever."""
        date = sip_date()
        blank = " " * 18
        steps = []
        pin = f"AD{self.pin}|" if mode == "circulation-pin" else ""
        for item in self.items:
            if mode.startswith("circulation"):
                steps.append(
                    ("11", f"11YN{date}{blank}AO{INSTITUTION}|AA{self.patron}|AB{item}|AC|{pin}")
                )
                steps.append(("09", f"09N{date}{date}AP{LOCATION}|AO{INSTITUTION}|AB{item}|AC|"))
            else:
                steps.append(("17", f"17{date}AO{INSTITUTION}|AB{item}|AC|"))
                steps.append(("23", f"23000{date}AO{INSTITUTION}|AA{self.patron}|AC|"))
        return steps


# --- the bare ceiling: a Twisted server that answers every frame with one fixed response -----

BARE_RESPONSE = "1803020120261130    120000CF0|AB54122100600013|AJ现代汉语词典|CK001|AQ中文书库|"


def bare_response() -> bytes:
    data = f"{BARE_RESPONSE}AY1AZ".encode()
    return data + checksum(data).encode("ascii") + b"\r"


def serve_bare(port: int) -> None:
    from twisted.internet import reactor
    from twisted.internet.protocol import Protocol, ServerFactory

    response = bare_response()

    class Bare(Protocol):
        buffer = b""

        def dataReceived(self, data: bytes) -> None:
            self.buffer += data
            frames = self.buffer.count(b"\r")
            if frames:
                self.buffer = self.buffer[self.buffer.rindex(b"\r") + 1 :]
                for _ in range(frames):
                    self.transport.write(response)  # one write per response, as libgate

    factory = ServerFactory()
    factory.protocol = Bare
    reactor.listenTCP(port, factory, interface="127.0.0.1", backlog=256)
    print("listening", flush=True)
    reactor.run()


# --- the load generator: one process drives many connections on epoll ------------------------


@dataclass
class Phase:
    mode: str  # circulation | read
    port: int
    seconds: float
    warmup: float
    rate: float = 0.0  # transactions/s over all connections; 0 = as fast as answers come
    check: bool = True  # check checksum and ok flag (off for the bare server's fixed answer)
    connections: int = 0  # all connections of the phase, for pacing offsets


@dataclass
class WorkerResult:
    latencies: list[bytes]  # array('d') of seconds, per kind
    errors: int = 0
    examples: list[str] = field(default_factory=list)
    cpu: float = 0.0  # seconds of this process's CPU inside the measured window


def _connect(port: int, terminal: Terminal, check: bool) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for attempt in range(LOGIN_ATTEMPTS):
        sock.sendall(terminal.login_frame())
        data = b""
        while not data.endswith(b"\r"):
            chunk = sock.recv(4096)
            if not chunk:
                raise RuntimeError(f"{terminal.login}: connection closed at login")
            data += chunk
        if not check or data.startswith(b"941"):
            break
        # 50 logins at once from one address: each counts as a failure in flight until its
        # check succeeds (gateway/login_failures.py), so a few may meet a short delay (940).
        # A self-check machine logs in again; so does the bench, after a pause.
        if attempt == LOGIN_ATTEMPTS - 1:
            raise RuntimeError(f"{terminal.login}: login refused: {data!r}")
        time.sleep(0.5 * (attempt + 1))
    sock.setblocking(False)
    return sock


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def client_worker(
    terminals: list[tuple[int, Terminal]],
    phase: Phase,
    barrier: multiprocessing.synchronize.Barrier,
    results: multiprocessing.Queue[WorkerResult],
) -> None:
    kinds = 2
    unit = 2  # a checkout and its checkin; read-only pairs 17 with 23 the same way
    socks = {}
    plans = {}  # fd -> (frames[step][sequence], expected per step, kind per step)
    for index, terminal in terminals:
        sock = _connect(phase.port, terminal, phase.check)
        steps = terminal.steps(phase.mode)
        frames = [[frame(body, seq) for seq in range(10)] for _, body in steps]
        expected = [EXPECTED[command] for command, _ in steps]
        plans[sock.fileno()] = (frames, expected, [i % kinds for i in range(len(steps))], index)
        socks[sock.fileno()] = sock
    poller = select.epoll()
    for fd in socks:
        poller.register(fd, select.EPOLLIN)
    latencies = [array("d") for _ in range(kinds)]
    errors = 0
    examples: list[str] = []
    position = dict.fromkeys(socks, 0)
    sequence = dict.fromkeys(socks, 1)
    due = dict.fromkeys(socks, 0.0)  # when the request in flight was due (paced) or sent
    buffers = dict.fromkeys(socks, b"")
    interval = phase.connections / phase.rate if phase.rate else 0.0
    barrier.wait(timeout=120)
    start = time.perf_counter()
    measure_from = start + phase.warmup
    end_at = measure_from + phase.seconds
    cpu_start = cpu_end = None
    timers: list[tuple[float, int]] = []

    def send(fd: int, when: float) -> None:
        frames = plans[fd][0]
        step = position[fd] % len(frames)
        due[fd] = when
        socks[fd].send(frames[step][sequence[fd]])

    for fd in socks:
        if interval:
            offset = plans[fd][3] / phase.connections * interval
            heapq.heappush(timers, (start + offset, fd))
        else:
            send(fd, time.perf_counter())
    active = len(socks)
    while active:
        now = time.perf_counter()
        if cpu_start is None and now >= measure_from:
            cpu_start = _cpu()
        if cpu_end is None and now >= end_at:
            cpu_end = _cpu()
        while timers and timers[0][0] <= now:
            when, fd = heapq.heappop(timers)
            send(fd, when)
        wait = min(timers[0][0] - now, 0.05) if timers else 0.05
        for fd, _ in poller.poll(max(wait, 0)):
            data = socks[fd].recv(65536)
            if not data:
                raise RuntimeError(f"connection {plans[fd][3]} closed by the server")
            buffer = buffers[fd] + data
            if not buffer.endswith(b"\r"):
                buffers[fd] = buffer  # read until CR
                continue
            buffers[fd] = b""
            done = time.perf_counter()
            frames, expected, kind_of, _ = plans[fd]
            step = position[fd] % len(frames)
            good = not phase.check or (buffer.startswith(expected[step]) and response_ok(buffer))
            if measure_from <= done <= end_at:
                latencies[kind_of[step]].append(done - due[fd])
            if not good:  # counted in warm-up and drain too
                errors += 1
                if len(examples) < 3:
                    examples.append(buffer.decode("utf-8", "replace"))
            position[fd] += 1
            sequence[fd] = (sequence[fd] + 1) % 10
            if done >= end_at and position[fd] % unit == 0:
                poller.unregister(fd)  # stop at a pair boundary: no copy left on loan
                socks[fd].close()
                active -= 1
                continue
            if interval:
                next_due = due[fd] + interval
                if next_due <= done:
                    send(fd, next_due)  # late: the wait so far counts in its latency
                else:
                    heapq.heappush(timers, (next_due, fd))
            else:
                send(fd, done)
    cpu_end = cpu_end if cpu_end is not None else _cpu()
    results.put(
        WorkerResult(
            [a.tobytes() for a in latencies],
            errors,
            examples,
            cpu_end - (cpu_start if cpu_start is not None else cpu_end),
        )
    )


# --- measuring a phase ----------------------------------------------------------------------


TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
QUIET = 0.05  # the machine counts as quiet below this share of all cores busy


def process_cpu(pid: int) -> float:
    """CPU seconds (all threads) of a process, from /proc; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def server_cpu(pid: int) -> float:
    """CPU seconds of `libgate serve` and of its workers (the supervisor's children)."""
    total = process_cpu(pid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid:
                    total += process_cpu(int(entry.name))
    return total


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process (server and backends), by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    found[int(entry.name)] = process_cpu(int(entry.name))
    return found


def machine_busy() -> float:
    """CPU seconds spent by all cores (not idle, not waiting for I/O), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICK


def other_load(seconds: float = 1.0) -> float:
    """The share of all cores busy right now (before a phase starts: other people's load)."""
    before = machine_busy()
    time.sleep(seconds)
    return (machine_busy() - before) / seconds / CORES


@dataclass
class Figures:
    label: str
    per_second: float
    kinds: dict[str, tuple[int, float, float]]  # kind -> count, p50 ms, p99 ms
    p50: float
    p99: float
    errors: int
    server_cpu: float  # percent of one core
    database_cpu: float | None  # percent of one core, all PostgreSQL processes
    client_cpu: float  # percent of one core, all client processes
    machine: float  # percent of all cores busy during the phase (ours, kernel, anyone's)
    before: float  # percent of all cores busy just before the phase: other people's load
    examples: list[str]
    server_us: float = 0.0  # server CPU microseconds per message (or transaction)
    load: float = 0.0  # the 1-minute load average at the end of the phase


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * fraction))]


def run_phase(
    label: str,
    phase: Phase,
    terminals: list[Terminal],
    clients: int,
    server_pid: int,
    kind_names: tuple[str, ...],
    postgres: bool = False,
    quiet_wait: float = 0.0,
    on_start: Callable[[], object] | None = None,
) -> Figures:
    before = other_load()  # the server is idle: this is everyone else
    waited = 0
    while before > QUIET and waited < quiet_wait:
        before = other_load(2.0)  # a shared machine: wait for the others to pause
        waited += 2
    context = multiprocessing.get_context("fork")
    phase.connections = len(terminals)
    indexed = list(enumerate(terminals))
    groups = [indexed[i::clients] for i in range(clients)]
    barrier = context.Barrier(clients + 1)
    queue = context.Queue()
    workers = [
        context.Process(target=client_worker, args=(group, phase, barrier, queue), daemon=True)
        for group in groups
        if group
    ]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=120)
    start = time.perf_counter()
    if on_start is not None:
        on_start()
    time.sleep(max(0.0, start + phase.warmup - time.perf_counter()))
    server_before, machine_before = server_cpu(server_pid), machine_busy()
    database_before = postgres_cpu() if postgres else {}
    time.sleep(max(0.0, start + phase.warmup + phase.seconds - time.perf_counter()))
    server_after, machine_after = server_cpu(server_pid), machine_busy()
    database_after = postgres_cpu() if postgres else {}
    results: list[WorkerResult] = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        if worker.exitcode != 0:
            raise RuntimeError(f"{label}: a client process failed (exit {worker.exitcode})")
    every: list[float] = []
    kinds = {}
    for index, name in enumerate(kind_names):
        values: list[float] = []
        for result in results:
            values.extend(array("d", result.latencies[index]))
        values.sort()
        every.extend(values)
        kinds[name] = (
            len(values),
            percentile(values, 0.50) * 1000,
            percentile(values, 0.99) * 1000,
        )
    every.sort()
    server = server_after - server_before
    database = sum(used - database_before.get(pid, 0.0) for pid, used in database_after.items())
    client_cpu = sum(r.cpu for r in results)
    return Figures(
        label=label,
        per_second=len(every) / phase.seconds,
        kinds=kinds,
        p50=percentile(every, 0.50) * 1000,
        p99=percentile(every, 0.99) * 1000,
        errors=sum(r.errors for r in results),
        server_cpu=server / phase.seconds * 100,
        database_cpu=database / phase.seconds * 100 if postgres else None,
        client_cpu=client_cpu / phase.seconds * 100,
        machine=(machine_after - machine_before) / phase.seconds / CORES * 100,
        before=before * 100,
        examples=[e for r in results for e in r.examples][:3],
        server_us=server / len(every) * 1e6 if every else float("nan"),
        load=os.getloadavg()[0],
    )


# --- the catalogue, the readers, the server ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}); see {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port}; see {log}")


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


def libgate(config: Path, *arguments: str) -> None:
    subprocess.run(
        [LIBGATE, "--config", str(config), *arguments],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )


def prepare(
    url: str,
    work: Path,
    terminals: int,
    per_terminal: int,
    log_level: str,
    workers: int = 1,
    sip2_threads: int | None = None,
) -> tuple[Path, list[Terminal], int]:
    """Config, catalogue, copies and readers for one engine; returns (config, terminals, port)."""
    from gateway.store import open_store

    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    accounts = "".join(
        f'[[sip2.accounts]]\nlogin = "sc{n:03d}"\npassword = "{PASSWORD}"\n'
        f'location = "{LOCATION}"\n'
        for n in range(terminals)
    )
    threads = f"threads = {sip2_threads}\n" if sip2_threads else ""
    config = work / "libgate.toml"
    config.write_text(
        f'[storage]\nurl = "{url}"\n[service]\nlog_level = "{log_level}"\nworkers = {workers}\n'
        "[sru]\nlisten = []\n[z3950]\nlisten = []\n"  # SIP2 only: no other listener to collide with
        f'[sip2]\nlisten = ["tcp:{port}:interface=127.0.0.1"]\n'
        # Every bench connection comes from 127.0.0.1: trusted, so the per-address caps (32
        # sockets from one address by default) do not refuse the 33rd terminal.
        f'trusted_networks = ["127.0.0.0/8"]\n{threads}{accounts}',
        encoding="utf-8",
    )
    copies = terminals * per_terminal
    libgate(config, "init")
    libgate(config, "load", "--database", "main", str(generated_file(max(copies, 100))))
    store = open_store(url)
    with store.read() as tx:
        rows = tx.execute(
            "SELECT record_id FROM bib_records WHERE database = 'main' ORDER BY id LIMIT ?",
            (copies,),
        )
    store.close()
    record_ids = [row[0] for row in rows]
    items = work / "items.csv"
    patrons = work / "patrons.csv"
    made: list[Terminal] = []
    with (
        items.open("w", newline="", encoding="utf-8") as item_file,
        patrons.open("w", newline="", encoding="utf-8") as patron_file,
    ):
        item_csv, patron_csv = csv.writer(item_file), csv.writer(patron_file)
        item_csv.writerow(
            ["barcode", "database", "record_id", "location", "call_number", "item_type", "status"]
        )
        patron_csv.writerow(["barcode", "name", "pin", "category", "email", "phone"])
        for n in range(terminals):
            barcodes = []
            for k in range(per_terminal):
                barcode = f"SB{n:03d}{k:02d}"
                record = record_ids[(n * per_terminal + k) % len(record_ids)]
                item_csv.writerow(
                    [barcode, "main", record, LOCATION, f"B{n}/{k}", ITEM_TYPE, "归还"]
                )
                barcodes.append(barcode)
            patron = f"SBP{n:03d}"
            pin = f"{n:04d}"
            patron_csv.writerow([patron, f"读者{n}", pin, CATEGORY, "", ""])
            made.append(Terminal(f"sc{n:03d}", patron, tuple(barcodes), pin))
    libgate(config, "items", "import", str(items))
    libgate(config, "patrons", "import", str(patrons))
    return config, made, port


def open_loans(url: str) -> int:
    """Loans still open after the phases: each connection stops after a checkin, so 0."""
    from gateway.store import open_store

    store = open_store(url)
    try:
        with store.read() as tx:
            return int(tx.execute("SELECT count(*) FROM loans WHERE returned_at IS NULL")[0][0])
    finally:
        store.close()


def start(command: list[str], log: Path, port: int) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    wait_for_port(port, process, log)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- printing -----------------------------------------------------------------------------


def profile(
    directory: str | None,
    pid: int,
    name: str,
    phase: Phase,
    started: list[subprocess.Popen[bytes]],
) -> None:
    """py-spy sampling the server through a phase, from the moment its clients are connected."""
    if not directory:
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).parent / "py-spy")
    command = [
        spy,
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
        "--rate",
        "200",
        "--gil",
        "--subprocesses",
    ]
    command += ["--duration", str(int(phase.warmup + phase.seconds)), "--threads"]
    command += ["--output", str(Path(directory) / f"{name}.txt")]
    started.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


def row(figures: Figures, what: str) -> str:
    kinds = " / ".join(f"{p50:.1f}, {p99:.1f}" for _, p50, p99 in figures.kinds.values())
    database = "-" if figures.database_cpu is None else f"{figures.database_cpu:.0f}"
    return (
        f"| {figures.label} | {what} | {figures.per_second:,.0f} | {figures.p50:.2f} |"
        f" {figures.p99:.2f} | {kinds} | {figures.errors} | {figures.server_cpu:.0f} |"
        f" {database} | {figures.client_cpu:.0f} | {figures.machine:.0f} |"
        f" {figures.before:.0f} | {figures.server_us:.0f} | {figures.load:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--clients", type=int, default=2, help="load generator processes")
    parser.add_argument("--items", type=int, default=2, help="copies per connection")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured, per phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="not measured, per phase")
    parser.add_argument(
        "--rate",
        type=float,
        action="append",
        help="a paced run at this many transactions/s (repeatable; default 1500 and 3000; 0: none)",
    )
    parser.add_argument(
        "--pin-seconds",
        type=float,
        default=10.0,
        help="measured seconds of a run whose checkouts carry the reader's PIN (AD),"
        " as the PyPI sip2 client sends them (0: skip it)",
    )
    parser.add_argument("--postgres", metavar="DSN", help="also PostgreSQL, e.g. postgresql:///db")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="before each phase, wait up to this many seconds for other processes to leave"
        " the machine idle (a shared machine); 0: start at once",
    )
    parser.add_argument("--log-level", default="info", help="the server's [service] log_level")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="the server's [service] workers (default: one per core)",
    )
    parser.add_argument(
        "--threads", type=int, help="the server's [sip2] threads (default: its own)"
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="sample the server with py-spy during each libgate phase (collapsed stacks in DIR)",
    )
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        serve_bare(args.bare_server)
        return
    rates = [r for r in (args.rate or [1500.0, 3000.0]) if r > 0]
    run_id = uuid.uuid4().hex[:6]
    engines: list[tuple[str, str, str | None]] = []
    if not args.no_sqlite:
        database = OUT / f"sip2-{run_id}" / "libgate.db"
        engines.append(("SQLite", f"sqlite:///{database}", None))
    admin = None
    if args.postgres:
        import psycopg

        schema = f"sip2bench_{run_id}"
        admin = psycopg.connect(args.postgres, autocommit=True)
        admin.execute(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in args.postgres else "?"
        url = f"{args.postgres}{separator}options=-csearch_path%3D{schema}"
        engines.append(("PostgreSQL", url, schema))
    busy = other_load()
    if busy > 0.05:
        print(f"warning: other processes keep {busy:.0%} of the machine busy; figures will be low")
    print(
        f"{args.connections} connections from {args.clients} client processes,"
        f" {args.items} copies each; {args.seconds:.0f} s measured after {args.warmup:.0f} s"
        f" warm-up per phase; server log level {args.log_level}; {args.workers} workers;"
        f" {os.cpu_count()} cores\n",
        flush=True,
    )
    table: list[str] = []
    detail: list[Figures] = []
    try:
        for name, url, _ in engines:
            work = OUT / f"sip2-{run_id}" / name.lower()
            print(f"preparing {name} …", flush=True)
            config, terminals, port = prepare(
                url,
                work,
                args.connections,
                args.items,
                args.log_level,
                args.workers,
                args.threads,
            )
            log = work / "serve.log"
            server = start([LIBGATE, "--config", str(config), "serve"], log, port)
            try:
                phases = [
                    (f"libgate {name}", "circulation", 0.0, "checkout+checkin, saturated"),
                ]
                for rate in rates:
                    phases.append(
                        (
                            f"libgate {name}",
                            "circulation",
                            rate,
                            f"checkout+checkin, paced at {rate:,.0f}/s",
                        )
                    )
                phases.append((f"libgate {name}", "read", 0.0, "17 + 23, saturated"))
                if args.pin_seconds:
                    phases.append(
                        (
                            f"libgate {name}",
                            "circulation-pin",
                            0.0,
                            "checkout with PIN (AD) + checkin, saturated",
                        )
                    )
                for label, mode, rate, what in phases:
                    seconds = args.pin_seconds if mode == "circulation-pin" else args.seconds
                    phase = Phase(mode, port, seconds, args.warmup, rate)
                    kinds = READ_ONLY if mode == "read" else CIRCULATION
                    spies: list[subprocess.Popen[bytes]] = []
                    name_of = f"{name}-{mode}-{rate:.0f}"
                    figures = run_phase(
                        label,
                        phase,
                        terminals,
                        args.clients,
                        server.pid,
                        kinds,
                        postgres=name == "PostgreSQL",
                        quiet_wait=args.quiet_wait,
                        on_start=partial(profile, args.profile, server.pid, name_of, phase, spies),
                    )
                    for spy in spies:
                        spy.wait(timeout=60)
                    table.append(row(figures, what))
                    detail.append(figures)
                    print(table[-1], flush=True)
            finally:
                stop(server)
            print(f"{name}: {open_loans(url)} copies left on loan (expected 0)", flush=True)
        bare_port = free_port()
        bare_log = OUT / f"sip2-{run_id}" / "bare.log"
        bare_log.parent.mkdir(parents=True, exist_ok=True)
        bare = start(
            [sys.executable, __file__, "--bare-server", str(bare_port)], bare_log, bare_port
        )
        try:
            phase = Phase("read", bare_port, args.seconds, args.warmup, check=False)
            terminals = [
                Terminal(
                    f"sc{n:03d}",
                    f"SBP{n:03d}",
                    tuple(f"SB{n:03d}{k:02d}" for k in range(args.items)),
                )
                for n in range(args.connections)
            ]
            figures = run_phase(
                "bare Twisted (ceiling)",
                phase,
                terminals,
                args.clients,
                bare.pid,
                READ_ONLY,
                quiet_wait=args.quiet_wait,
            )
            table.append(row(figures, "17 + 23, fixed answer"))
            detail.append(figures)
            print(table[-1], flush=True)
        finally:
            stop(bare)
    finally:
        if admin is not None:
            for _, _, engine_schema in engines:
                if engine_schema:
                    admin.execute(f'DROP SCHEMA IF EXISTS "{engine_schema}" CASCADE')
            admin.close()
    print()
    print(
        "| server | load | per s | p50 ms | p99 ms | per kind p50, p99 ms | errors |"
        " server CPU % | PostgreSQL CPU % | clients CPU % | machine busy % |"
        " busy before % | server CPU µs per message | load average |"
    )
    print("|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for line in table:
        print(line)
    ceiling = detail[-1].per_second
    print()
    for figures in detail[:-1]:
        if list(figures.kinds) == list(READ_ONLY):
            print(
                f"{figures.label}: read-only at {figures.per_second / ceiling:.1%} of the bare"
                f" ceiling ({figures.per_second:,.0f} / {ceiling:,.0f} messages/s)"
            )
    for figures in detail:
        for example in figures.examples:
            print(f"{figures.label}: unexpected answer {example!r}")
    print(
        "\nper s: transactions (each 11 or 09 and its answer) or messages per second;"
        " p50/p99 over all of them; per kind in the order "
        f"{' / '.join(CIRCULATION)} or {' / '.join(READ_ONLY)}; server, PostgreSQL and"
        " clients CPU in % of one core; machine busy in % of all cores, during the phase"
        " and in the second before it (other people's load: figures are low when it is not"
        " near 0); server CPU µs per message: the server process's CPU time over the"
        " messages answered; load average: 1 minute, at the end of the phase"
    )


if __name__ == "__main__":
    main()
