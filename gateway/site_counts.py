"""Connection counts every worker sees: the site's figure for the caps of gateway/admission.py.

The supervisor makes one board in shared memory (an anonymous MAP_SHARED mapping) before it
forks, so every worker maps the same pages. Each worker writes only its own region: open
connections and those not let in yet, in all and per address (a small open-addressing table
keyed by a 64-bit hash of the address unit). A decision reads the sum over every region. A
worker that dies leaves its region behind; the supervisor clears it when it reaps the worker,
so a crash cannot leave phantom connections counted against the site.

One lock for the whole board: a POSIX record lock (`fcntl.lockf`) on an unlinked temporary
file, which the kernel releases if its holder dies, so a worker killed inside the critical
section cannot wedge the others. Decisions run on each worker's reactor thread only, one at a
time per process. Cost: two system calls and a few dozen memory reads per connection event.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

HEADER = struct.Struct("<qqq")  # active, pending, slots holding a key
SLOT = struct.Struct("<Qii")  # key hash (0: empty), connections, pending
EMPTY = 0


def _hash(unit: str) -> int:
    value = int.from_bytes(hashlib.blake2b(unit.encode(), digest_size=8).digest(), "little")
    return value or 1  # 0 marks an empty slot


MAX_KINDS = 4  # sets of caps: SIP2, SRU, Z39.50, and one to spare
KIND_NAME = 64  # bytes of a kind's name in the registry


class SiteCounts:
    """Up to MAX_KINDS sets of caps x `workers` regions of at least `slots` address slots.
    A set of caps is registered by name the first time a worker counts with it (every worker
    builds the same listeners, so the names agree)."""

    def __init__(self, workers: int, slots: int) -> None:
        self.workers = workers
        self.slots = 1 << max(4, (slots - 1).bit_length())  # a power of two
        self.region_size = HEADER.size + self.slots * SLOT.size
        self.registry_size = MAX_KINDS * KIND_NAME
        self.memory = mmap.mmap(-1, self.registry_size + self.region_size * MAX_KINDS * workers)
        self.kinds: dict[str, int] = {}
        handle, path = tempfile.mkstemp(prefix="libgate-counts-")
        os.unlink(path)
        self.lock_fd = handle
        self.worker = 0  # this process's region (1-based); 0 in the supervisor

    # --- the lock and the layout -----------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        fcntl.lockf(self.lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(self.lock_fd, fcntl.LOCK_UN)

    def kind(self, name: str) -> str:
        """Register a set of caps by name (once per site; call with the lock held)."""
        if name in self.kinds:
            return name
        encoded = name.encode()[: KIND_NAME - 1].ljust(KIND_NAME, b"\0")
        for number in range(MAX_KINDS):
            entry = self.memory[number * KIND_NAME : (number + 1) * KIND_NAME]
            if entry == encoded or entry == bytes(KIND_NAME):
                self.memory[number * KIND_NAME : (number + 1) * KIND_NAME] = encoded
                self.kinds[name] = number
                return name
        raise RuntimeError("more sets of connection caps than the site board holds")

    def _region(self, kind: str, worker: int) -> int:
        number = self.kinds[kind]
        return self.registry_size + (number * self.workers + worker - 1) * self.region_size

    def _find(self, base: int, key: int) -> tuple[int, bool]:
        """(slot offset, found) for `key` in the region at `base`: its slot, else the first
        empty one on its probe path (linear probing; slots empty only when cleared)."""
        start = key & (self.slots - 1)
        for step in range(self.slots):
            offset = base + HEADER.size + ((start + step) & (self.slots - 1)) * SLOT.size
            held, _, _ = SLOT.unpack_from(self.memory, offset)
            if held == key:
                return offset, True
            if held == EMPTY:
                return offset, False
        raise RuntimeError("site connection table full")  # sized for every connection

    # --- reading the site's figures ----------------------------------------------------------

    def totals(self, kind: str, unit: str) -> tuple[int, int, int, int]:
        """(open, pending, open from `unit`, pending from `unit`) over every worker."""
        key = _hash(unit)
        active = pending = here = pending_here = 0
        for worker in range(1, self.workers + 1):
            base = self._region(kind, worker)
            a, p, _ = HEADER.unpack_from(self.memory, base)
            active, pending = active + a, pending + p
            offset, found = self._find(base, key)
            if found:
                _, connections, waiting = SLOT.unpack_from(self.memory, offset)
                here, pending_here = here + connections, pending_here + waiting
        return active, pending, here, pending_here

    # --- this worker's changes ---------------------------------------------------------------

    def change(self, kind: str, unit: str, connections: int, pending: int) -> None:
        """Add to this worker's counts: in all and for `unit`."""
        base = self._region(kind, self.worker)
        active, waiting, used = HEADER.unpack_from(self.memory, base)
        key = _hash(unit)
        offset, found = self._find(base, key)
        if found:
            _, here, pending_here = SLOT.unpack_from(self.memory, offset)
        else:
            here = pending_here = 0
            used += 1
        here, pending_here = max(0, here + connections), max(0, pending_here + pending)
        # A slot whose counts reach 0 keeps its key (a tombstone): emptying it would cut the
        # probe path of keys stored after it. `_compact` rebuilds the table when half is used.
        SLOT.pack_into(self.memory, offset, key, here, pending_here)
        HEADER.pack_into(self.memory, base, active + connections, waiting + pending, used)
        if used > self.slots // 2:
            self._compact(base)

    def _compact(self, base: int) -> None:
        live = []
        for slot in range(self.slots):
            offset = base + HEADER.size + slot * SLOT.size
            held, here, waiting = SLOT.unpack_from(self.memory, offset)
            if held != EMPTY and (here or waiting):
                live.append((held, here, waiting))
            SLOT.pack_into(self.memory, offset, EMPTY, 0, 0)
        for held, here, waiting in live:
            offset, _ = self._find(base, held)
            SLOT.pack_into(self.memory, offset, held, here, waiting)
        active, pending, _ = HEADER.unpack_from(self.memory, base)
        HEADER.pack_into(self.memory, base, active, pending, len(live))

    def clear(self, worker: int) -> None:
        """Forget a dead worker's connections (the supervisor, when it reaps it)."""
        with self.locked():
            for number in range(MAX_KINDS):
                base = self.registry_size + (number * self.workers + worker - 1) * self.region_size
                self.memory[base : base + self.region_size] = bytes(self.region_size)
