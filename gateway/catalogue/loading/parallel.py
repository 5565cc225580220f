"""Preparing records (parse, decode, map, encode) in worker processes.

Preparing is pure CPU work on bytes and needs no database, so it scales across cores; storing
stays in the loading process, in order, one batch per transaction. At most `2 × workers`
batches are in flight or waiting to be yielded, so memory stays flat however large the file.

Each worker has its own pipe and the loader waits on the pipes and the process sentinels
together. We do not use `ProcessPoolExecutor`: when one of its workers is killed mid-read,
its shared call queue's feeder thread can block forever on a pipe nobody reads (CPython
gh-94777, gh-107219), and a loader that hangs is worse than one that is slow. Here a dead
worker is noticed by its sentinel, its batch is prepared in the loading process, and the
load goes on.

Ctrl-C in a terminal sends SIGINT to every process of the foreground group, the workers
included. Workers ignore it: the loading process decides how the load ends (it finishes the
batch in hand and closes the workers, see `Loader.request_stop`), and a worker never prints a
traceback of its own.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from gateway.catalogue.loading.prepare import PhaseClock, Prepared, Rejection, prepare_or_reject
from gateway.catalogue.loading.report import PhaseTimes
from gateway.config import DEFAULT_ON_SHELF_STATUS
from marc.holdings import HoldingsProfile
from marc.iso2709 import Chunk

Preparation = Prepared | Rejection  # a prepared record, or why it was rejected
PREPARE_BATCH = 256
STOP_GRACE_SECONDS = 5.0
log = logging.getLogger("libgate.loader")


@dataclass(frozen=True)
class PrepareSettings:
    """How every record of a load is prepared (sent to each worker process)."""

    fmt: str
    encoding: str
    profile: HoldingsProfile
    on_shelf_status: str  # for copies without a status word ([circulation] on_shelf_status)
    # Every configured profile: a record where `profile` finds no copy but one of these does
    # gets a warning that suggests it.
    other_profiles: tuple[HoldingsProfile, ...] = ()


def prepare_one(
    chunk: Chunk,
    fmt: str,
    encoding: str,
    profile: HoldingsProfile,
    on_shelf_status: str = DEFAULT_ON_SHELF_STATUS,
    clock: PhaseClock | None = None,
    other_profiles: tuple[HoldingsProfile, ...] = (),
) -> Preparation:
    try:
        return prepare_or_reject(
            chunk, fmt, encoding, profile, on_shelf_status, clock, other_profiles
        )
    except Exception:  # a bug of ours must not lose the record: reject it, in plain words
        log.debug("record %d could not be prepared", chunk.number, exc_info=True)
        return Rejection(
            "libgate could not read this record because of a fault in libgate itself;"
            " please report it with the record (written by --rejects)"
        )


def _prepare_batch(
    chunks: list[Chunk], settings: PrepareSettings, clock: PhaseClock | None = None
) -> list[Preparation]:
    return [
        prepare_one(
            chunk,
            settings.fmt,
            settings.encoding,
            settings.profile,
            settings.on_shelf_status,
            clock,
            settings.other_profiles,
        )
        for chunk in chunks
    ]


# What crosses a worker's pipe: a batch as plain tuples (number, offset, bytes, terminated),
# and back the outcomes with the batch's parse and map seconds.
WireChunk = tuple[int, int, bytes, bool]
Answer = tuple[list[Preparation], float, float]


def _to_wire(batch: list[Chunk]) -> list[WireChunk]:
    return [(c.number, c.offset, c.data, c.terminated) for c in batch]


def _worker_main(conn: Connection, settings: PrepareSettings, loader_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the loading process handles Ctrl-C
    threading.Thread(target=_exit_with_loader, args=(loader_pid,), daemon=True).start()
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            return  # the loader closed our pipe: nothing more to do
        if batch is None:
            return
        clock = PhaseClock()
        results = _prepare_batch([Chunk(*wire) for wire in batch], settings, clock)
        conn.send((results, clock.parse, clock.map))


def _exit_with_loader(loader_pid: int) -> None:
    """A loader killed with -9 cannot tell its workers to stop; they notice and exit."""
    while True:
        time.sleep(0.5)
        try:
            os.kill(loader_pid, 0)
        except ProcessLookupError:
            os._exit(1)


def default_workers() -> int:
    """One worker per core beyond the first; 0 (in-process) on a single core."""
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    return 0 if cores < 2 else cores


def _batches(chunks: Iterable[Chunk]) -> Iterator[list[Chunk]]:
    batch: list[Chunk] = []
    for chunk in chunks:
        batch.append(chunk)
        if len(batch) >= PREPARE_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    busy_with: int | None = None  # sequence number of the batch it is preparing


class _WorkerPool:
    """Workers each preparing one batch at a time; results come back keyed by batch number."""

    def __init__(self, size: int, settings: PrepareSettings, times: PhaseTimes) -> None:
        self.settings = settings
        self.times = times
        context = multiprocessing.get_context("forkserver")
        self.workers: list[_Worker] = []
        for _ in range(size):
            ours, theirs = context.Pipe(duplex=True)
            process = context.Process(
                target=_worker_main,
                args=(theirs, settings, os.getpid()),
                daemon=True,
                name="libgate-prepare",
            )
            process.start()
            theirs.close()  # only the worker holds its end: its death closes the pipe
            self.workers.append(_Worker(process, ours))
        self.batches: dict[int, list[Chunk]] = {}

    def idle(self) -> _Worker | None:
        return next((w for w in self.workers if w.busy_with is None), None)

    @property
    def busy(self) -> int:
        return sum(1 for w in self.workers if w.busy_with is not None)

    def submit(
        self, worker: _Worker, number: int, batch: list[Chunk]
    ) -> dict[int, list[Preparation]]:
        """Hand a batch to a worker; if it is already dead, prepare the batch here instead."""
        self.batches[number] = batch
        worker.busy_with = number
        try:
            worker.conn.send(_to_wire(batch))
        except OSError:
            return self._lost(worker)
        return {}

    def collect(self) -> dict[int, list[Preparation]]:
        """Wait until at least one busy worker answers or dies; what is ready, by batch number."""
        busy = [w for w in self.workers if w.busy_with is not None]
        started = time.perf_counter()
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
        self.times.wait += time.perf_counter() - started
        done: dict[int, list[Preparation]] = {}
        for worker in busy:
            if worker.conn in ready:
                try:
                    answer: Answer = worker.conn.recv()
                except (EOFError, OSError):
                    done |= self._lost(worker)
                    continue
                assert worker.busy_with is not None
                results, parse_seconds, map_seconds = answer
                self.times.parse += parse_seconds
                self.times.map += map_seconds
                done[worker.busy_with] = results
                del self.batches[worker.busy_with]
                worker.busy_with = None
            elif worker.process.sentinel in ready:
                done |= self._lost(worker)
        return done

    def _lost(self, worker: _Worker) -> dict[int, list[Preparation]]:
        """A worker died (killed, out of memory): nothing is lost, its batch is prepared here."""
        log.warning("a record-preparing worker died; its batch is prepared in the loader")
        self.workers.remove(worker)
        worker.conn.close()
        worker.process.join(timeout=STOP_GRACE_SECONDS)
        if worker.busy_with is None:
            return {}
        batch = self.batches.pop(worker.busy_with)
        return {worker.busy_with: _prepare_here(batch, self.settings, self.times)}

    def close(self) -> None:
        """Idle workers are told to stop; a worker still busy (the load was stopped) is
        preparing a batch nobody will read, and could block sending it: it is killed."""
        for worker in self.workers:
            if worker.busy_with is not None:
                worker.process.kill()
                continue
            with contextlib.suppress(OSError):  # a dead worker needs no goodbye
                worker.conn.send(None)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for worker in self.workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self.workers.clear()


def _prepare_here(
    batch: list[Chunk], settings: PrepareSettings, times: PhaseTimes
) -> list[Preparation]:
    clock = PhaseClock()
    results = _prepare_batch(batch, settings, clock)
    times.parse += clock.parse
    times.map += clock.map
    return results


def prepare_all(
    chunks: Iterable[Chunk],
    fmt: str,
    encoding: str,
    profile: HoldingsProfile,
    workers: int,
    on_shelf_status: str = DEFAULT_ON_SHELF_STATUS,
    times: PhaseTimes | None = None,
    other_profiles: tuple[HoldingsProfile, ...] = (),
) -> Generator[tuple[Chunk, Preparation], None, None]:
    """Each chunk with its outcome, in file order; a copy without a status word gets
    `on_shelf_status` (the loader passes the configured one). Parse, map and waiting
    seconds are added to `times`."""
    settings = PrepareSettings(fmt, encoding, profile, on_shelf_status, other_profiles)
    times = times if times is not None else PhaseTimes()
    if workers <= 0:
        clock = PhaseClock()
        try:
            for chunk in chunks:
                yield (
                    chunk,
                    prepare_one(
                        chunk, fmt, encoding, profile, on_shelf_status, clock, other_profiles
                    ),
                )
        finally:
            times.parse += clock.parse
            times.map += clock.map
        return
    pool = _WorkerPool(workers, settings, times)
    batches = enumerate(_batches(chunks))
    submitted: dict[int, list[Chunk]] = {}
    finished: dict[int, list[Preparation]] = {}
    next_number = 0  # the batch to yield next
    exhausted = False
    try:
        while True:
            # Keep every worker busy, but never run more than 2 × workers ahead of the
            # batch we are waiting to yield (a slow batch must not let results pile up).
            while not exhausted and len(submitted) < 2 * workers:
                if pool.workers:
                    worker = pool.idle()
                    if worker is None:
                        break
                else:
                    worker = None  # every worker died: prepare the rest here
                item = next(batches, None)
                if item is None:
                    exhausted = True
                    break
                number, batch = item
                submitted[number] = batch
                if worker is None:
                    finished[number] = _prepare_here(batch, settings, times)
                else:
                    finished |= pool.submit(worker, number, batch)
            while next_number in finished:
                yield from zip(submitted.pop(next_number), finished.pop(next_number), strict=True)
                next_number += 1
            if exhausted and not submitted:
                return
            if pool.busy:
                finished |= pool.collect()
    finally:
        pool.close()
