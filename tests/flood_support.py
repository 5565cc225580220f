"""Floods for the attack tests: sockets from the attacker addresses (127.0.0.2 and 127.0.0.3;
the clients under test use 127.0.0.1) kept open against a listener, silent or repeating a
payload, and the p99 the tests bound."""

from __future__ import annotations

import selectors
import socket
import threading
import time

ATTACKERS = ("127.0.0.2", "127.0.0.3")


class Flood(threading.Thread):
    """`per_source` sockets from each of `sources`, kept open (reopened 50 ms after the server
    closes one). Each sends `payload` on connect and again after every answer (counted in
    `answers` as CR-terminated SIP2 messages); with no payload the sockets stay silent."""

    def __init__(
        self,
        port: int,
        per_source: int,
        payload: bytes | None,
        sources: tuple[str, ...] = ATTACKERS,
    ) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.sources = sources
        self.per_source = per_source
        self.payload = payload
        self.stop = threading.Event()
        self.answers = 0
        self.opened = 0
        self.open_now = 0
        self.selector = selectors.DefaultSelector()

    def _open(self, source: str) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        sock.bind((source, 0))
        sock.connect_ex(("127.0.0.1", self.port))
        self.opened += 1
        self.open_now += 1
        self.selector.register(sock, selectors.EVENT_WRITE, [source, False])

    def _close(self, sock: socket.socket, source: str, reopen: list[tuple[float, str]]) -> None:
        self.selector.unregister(sock)
        sock.close()
        self.open_now -= 1
        reopen.append((time.monotonic() + 0.05, source))

    def run(self) -> None:
        reopen: list[tuple[float, str]] = []
        for source in self.sources:
            for _ in range(self.per_source):
                self._open(source)
        while not self.stop.is_set():
            now = time.monotonic()
            due = [entry for entry in reopen if entry[0] <= now]
            for entry in due:
                reopen.remove(entry)
                self._open(entry[1])
            for key, events in self.selector.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                source, connected = key.data
                try:
                    if events & selectors.EVENT_WRITE and not connected:
                        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                            self._close(sock, source, reopen)
                            continue
                        key.data[1] = True
                        self.selector.modify(sock, selectors.EVENT_READ, key.data)
                        if self.payload is not None:
                            sock.send(self.payload)
                    elif events & selectors.EVENT_READ:
                        data = sock.recv(4096)
                        if not data:
                            self._close(sock, source, reopen)
                            continue
                        self.answers += data.count(b"\r")
                        if self.payload is not None:
                            sock.send(self.payload)
                except OSError:
                    self._close(sock, source, reopen)
        for key in list(self.selector.get_map().values()):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            sock.close()
        self.selector.close()


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
