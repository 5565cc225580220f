"""The peers of bench/union_bench.py: the catalogues (overlapping parts of one generated CNMARC
corpus, and the real BNU records) served by `zebrasrv` and `libgate serve`, the relay that
delays what servers send (its own process: `python bench/union_peers.py --relay SPEC EVENTS`),
a target that never answers, and the union targets' config over them all."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import load_bench  # noqa: E402
import sru_bench  # noqa: E402

OUT = ROOT / "bench" / "out"
LIBGATE = [sys.executable, "-m", "gateway.cli"]
BNU = ROOT / "fixtures" / "marc" / "real" / "cnmarc" / "bnu_cnmarc_10_utf8.iso"
ZEBRAS = 6  # zebrasrv processes, one catalogue each
LIBGATES = 2  # `libgate serve` processes
DATABASES = 3  # catalogue databases in each libgate
TARGET_TIMEOUT = 10.0  # seconds, every answering target
SILENT_TIMEOUT = 1.5  # seconds, the target that never answers
UNION_TIMEOUT = 30.0  # seconds, the whole search


# --- the catalogues ----------------------------------------------------------------------------


def frames(path: Path) -> list[bytes]:
    from marc.iso2709 import frame_records

    with path.open("rb") as stream:
        return [chunk.data.rstrip(b"\x1d") + b"\x1d" for chunk in frame_records(stream)]


def catalogue_parts(records: int) -> tuple[list[list[bytes]], list[bytes]]:
    """12 windows of `records` records on the circular corpus of 2 x `records`, each starting
    a twelfth further on (so each record is in 6); the BNU records in Zebras 0, 2 and 4 and in
    each libgate's d0. Copy barcodes (995$f, 3100...) carry the catalogue's number (31nn...),
    as two libraries' barcodes differ (one libgate refuses a barcode twice across its
    databases)."""
    corpus = frames(load_bench.generated_file(2 * records))
    real = frames(BNU)
    count = ZEBRAS + LIBGATES * DATABASES
    with_real = {0, 2, 4, *(ZEBRAS + n * DATABASES for n in range(LIBGATES))}
    parts = []
    for number in range(count):
        start = number * len(corpus) // count
        window = [
            corpus[(start + i) % len(corpus)].replace(b"\x1ff3100", b"\x1ff31%02d" % number)
            for i in range(records)
        ]
        parts.append(window + (real if number in with_real else []))
    return parts, corpus


def zebra_catalogue(directory: Path, part: list[bytes]) -> Path:
    """A Zebra index of `part` (load_bench's UNIMARC rules, ICU words), made once."""
    config = directory / "zebra.cfg"
    if (directory / "indexed").exists():
        return config
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    config = load_bench.zebra_config(directory, icu=True)
    data = directory / "records.iso"
    data.write_bytes(b"".join(part))
    for command in (["init"], ["update", str(data)], ["commit"]):
        subprocess.run(
            ["zebraidx", "-c", str(config), "-l", "index.log", *command],
            cwd=directory,
            check=True,
        )
    (directory / "indexed").write_text("ok\n")
    return config


def libgate_config(directory: Path, z3950_port: int = 0, sru_port: int = 0) -> Path:
    config = directory / "libgate.toml"
    databases = "".join(f'[[databases]]\nname = "d{n}"\n' for n in range(DATABASES))
    z3950 = f'"tcp:{z3950_port}:interface=127.0.0.1"' if z3950_port else ""
    sru = f'"tcp:{sru_port}:interface=127.0.0.1"' if sru_port else ""
    config.write_text(
        f'[storage]\nurl = "sqlite:///{directory / "library.db"}"\n'
        '[service]\nworkers = 1\nlog_level = "warning"\n'
        f"[z3950]\nlisten = [{z3950}]\n[sru]\nlisten = [{sru}]\n[sip2]\nlisten = []\n"
        "[notices]\nenabled = false\n[holds]\nprocess_every_seconds = 86400\n" + databases,
        encoding="utf-8",
    )
    return config


def libgate_catalogues(directory: Path, parts: list[list[bytes]]) -> None:
    """One libgate store holding `parts` as databases d0, d1, ... (the BNU records with
    their own holdings profile), loaded once."""
    if (directory / "loaded").exists():
        return
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    config = libgate_config(directory)
    real = frames(BNU)
    commands = [["init"]]
    for number, part in enumerate(parts):
        generated = [r for r in part if r not in real]
        path = directory / f"d{number}.iso"
        path.write_bytes(b"".join(generated))
        commands.append(["load", "--database", f"d{number}", str(path)])
        if len(generated) < len(part):
            commands.append(["load", "--database", f"d{number}", "--profile", "bnu", str(BNU)])
    for command in commands:
        subprocess.run(
            [*LIBGATE, "--config", str(config), *command],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    (directory / "loaded").write_text("ok\n")


# --- the peers ---------------------------------------------------------------------------------


@dataclass
class Servers:
    zebra: list[int]  # Z39.50 port of each Zebra
    z3950: list[int]  # Z39.50 port of each libgate
    sru: list[int]  # SRU port of each libgate
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def start_servers(home: Path, records: int) -> Servers:
    parts, _ = catalogue_parts(records)
    servers = Servers([], [], [])
    try:
        for number in range(ZEBRAS):
            directory = home / f"zebra-{number}"
            config = zebra_catalogue(directory, parts[number])
            port = sru_bench.free_port()
            servers.processes.append(
                subprocess.Popen(
                    [
                        "zebrasrv",
                        "-c",
                        str(config),
                        "-l",
                        "server.log",
                        "-v",
                        "none",
                        f"tcp:127.0.0.1:{port}",
                    ],
                    cwd=directory,
                )
            )
            servers.zebra.append(port)
        for number in range(LIBGATES):
            directory = home / f"libgate-{number}"
            first = ZEBRAS + number * DATABASES
            libgate_catalogues(directory, parts[first : first + DATABASES])
            z3950, sru = sru_bench.free_port(), sru_bench.free_port()
            config = libgate_config(directory, z3950, sru)
            servers.processes.append(
                subprocess.Popen(
                    [*LIBGATE, "--config", str(config), "serve"],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                )
            )
            servers.z3950.append(z3950)
            servers.sru.append(sru)
        for port in [*servers.zebra, *servers.z3950, *servers.sru]:
            sru_bench.wait_for(port)
    except BaseException:
        servers.stop()
        raise
    return servers


Log = Callable[[int, str], None]  # (connection, kind)


async def _relay(upstream: int | None, latency: float, log: Log) -> asyncio.Server:
    """A listener that relays to `upstream` and holds every chunk the server sends back by
    `latency` seconds (in order; the client's bytes go on at once). Without an upstream: a
    target that accepts and never says a word. Each chunk is logged (`log(connection, kind)`):
    c from the client, s from the server, d delivered to the client."""
    loop = asyncio.get_running_loop()
    connections = iter(range(1 << 62))

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(1 << 16):
                pass
        except OSError:
            pass  # the client gave up (its timeout) and reset the connection
        writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert upstream is not None
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            writer.close()
            return
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        connection = next(connections)

        async def to_server() -> None:
            while data := await reader.read(1 << 16):
                log(connection, "c")
                server_writer.write(data)
                await server_writer.drain()
            server_writer.close()

        async def from_server() -> None:
            while True:
                data = await server_reader.read(1 << 16)
                if data:
                    log(connection, "s")
                held.put_nowait((loop.time() + latency, data))
                if not data:
                    return

        async def to_client() -> None:
            while True:
                due, data = await held.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not data:
                    writer.close()
                    return
                writer.write(data)
                log(connection, "d")
                await writer.drain()

        tasks = [asyncio.ensure_future(t()) for t in (to_server, from_server, to_client)]
        try:
            await asyncio.gather(*tasks)
        except (OSError, ConnectionError):
            pass
        finally:
            for task in tasks:
                task.cancel()
            writer.close()
            server_writer.close()

    return await asyncio.start_server(relay if upstream else silent, "127.0.0.1", 0)


def relay_main(spec: str, events: str) -> None:
    """The relay process: one listener per (upstream port or null, latency ms) in `spec`;
    prints their ports as a JSON list, then relays until terminated, writing each chunk's
    moment to `events` as `index connection kind seconds` (CLOCK_MONOTONIC, as the bench's
    perf_counter) for `relay_timeline`."""
    written = open(events, "w", encoding="ascii", buffering=1)  # noqa: SIM115 (the process's)

    def logger(index: int) -> Log:
        def log(connection: int, kind: str) -> None:
            written.write(f"{index} {connection} {kind} {time.perf_counter():.6f}\n")

        return log

    async def run() -> None:
        listeners = [
            await _relay(upstream, ms / 1000, logger(index))
            for index, (upstream, ms) in enumerate(json.loads(spec))
        ]
        ports = [listener.sockets[0].getsockname()[1] for listener in listeners]
        print(json.dumps(ports), flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


def start_relays(
    spec: list[tuple[int | None, int]], events: Path
) -> tuple[list[int], subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--relay", json.dumps(spec), str(events)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait()
        raise SystemExit("the relay process did not start")
    return json.loads(line), process


# --- the targets -------------------------------------------------------------------------------

# (server kind, server number, database, protocol, latency ms): 29 answering targets over 12
# catalogues (z: Zebra n; l: libgate n, database d), in an order that keeps a prefix varied
# (`--targets N` takes the first N - 1, then the silent one). The 1000 ms targets are SRU (one
# exchange: 1 s); a Z39.50 target takes four delayed exchanges (Init, Search, Present, Close).
LAYOUT: tuple[tuple[str, int, int, str, int], ...] = (
    ("z", 0, 0, "z3950", 0),
    ("l", 0, 0, "z3950", 0),
    ("l", 1, 0, "sru", 0),
    ("z", 1, 0, "z3950", 50),
    ("l", 0, 2, "sru", 1000),
    ("z", 2, 0, "z3950", 200),
    ("l", 1, 1, "z3950", 200),
    ("l", 0, 1, "sru", 50),
    ("z", 3, 0, "z3950", 0),
    ("l", 1, 2, "sru", 1000),
    ("z", 4, 0, "z3950", 0),
    ("l", 0, 1, "z3950", 0),
    ("l", 1, 1, "sru", 200),
    ("z", 5, 0, "z3950", 0),
    ("z", 0, 0, "z3950", 50),  # Zebra 0 again, under another name, slowed
    ("l", 0, 2, "z3950", 50),
    ("l", 0, 0, "sru", 0),
    ("z", 1, 0, "z3950", 0),
    ("l", 1, 0, "z3950", 0),
    ("z", 3, 0, "z3950", 200),  # Zebra 3 again, slowed
    ("l", 1, 2, "sru", 50),
    ("z", 2, 0, "z3950", 0),
    ("l", 1, 2, "z3950", 0),
    ("l", 0, 1, "sru", 0),  # libgate 0's d1 over SRU again, under another name
    ("z", 4, 0, "z3950", 0),  # Zebra 4 again
    ("l", 0, 0, "z3950", 200),  # libgate 0's d0 over Z39.50 again, slowed
    ("z", 5, 0, "z3950", 50),  # Zebra 5 again, slowed
    ("l", 1, 0, "z3950", 50),
    ("l", 0, 2, "sru", 0),
)
SILENT = "silent"


@dataclass(frozen=True)
class Planned:
    name: str
    server: str  # what answers: "zebra 0", "libgate 1 d2"
    protocol: str
    latency_ms: int
    upstream: int  # the server's port (the relay's upstream)


def plan(count: int, servers: Servers) -> list[Planned]:
    """The answering targets: the layout's first `count - 1`, repeated when more are asked."""
    planned = []
    for number in range(count - 1):
        kind, server, database, protocol, latency = LAYOUT[number % len(LAYOUT)]
        if kind == "z":
            where, port = f"zebra {server}", servers.zebra[server]
        elif protocol == "z3950":
            where, port = f"libgate {server} d{database}", servers.z3950[server]
        else:
            where, port = f"libgate {server} d{database}", servers.sru[server]
        name = f"t{number + 1:02d} {where} {protocol} {latency}ms"
        planned.append(Planned(name, where, protocol, latency, port))
    return planned


def union_config(
    home: Path, planned: list[Planned], ports: list[int | None], silent_port: int
) -> Path:
    """The searching side's config (for the CLI and for this process): one [[union.targets]]
    per planned target, at its relay's port when it is slowed, and the silent one."""
    lines = [
        f'[storage]\nurl = "sqlite:///{home / "client.db"}"\n',
        f"[union]\ntimeout = {UNION_TIMEOUT}\n",
    ]
    for target, relay in zip(planned, ports, strict=True):
        port = relay or target.upstream
        database = target.server.split()[-1] if target.server.startswith("libgate") else "Default"
        agency = "ISIL:CN-" + "".join(target.server.split()).upper()  # ZEBRA0, LIBGATE0D2
        if target.protocol == "z3950":
            url = f"z3950:127.0.0.1:{port}/{database}"
        else:
            url = f"http://127.0.0.1:{port}/{database}"
        lines.append(
            f'[[union.targets]]\nname = "{target.name}"\nurl = "{url}"\n'
            f'timeout = {TARGET_TIMEOUT}\nagency_id = "{agency}"\n'
        )
    lines.append(
        f'[[union.targets]]\nname = "{SILENT}"\nurl = "z3950:127.0.0.1:{silent_port}/Default"\n'
        f"timeout = {SILENT_TIMEOUT}\n"
    )
    config = home / "client.toml"
    config.write_text("\n".join(lines), encoding="utf-8")
    return config


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "--relay":
        raise SystemExit("usage: union_peers.py --relay SPEC EVENTS (union_bench.py starts it)")
    relay_main(sys.argv[2], sys.argv[3])
