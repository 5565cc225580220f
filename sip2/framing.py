"""Cutting a TCP byte stream into SIP2 frames, sans I/O.

A frame ends at CR. A following LF (Cen-Tec kiosks and Koha-style clients send CRLF), NULs
and blanks before a frame are skipped. A frame longer than the cap is not SIP2: it is reported
once as `OVERSIZE` and its bytes are dropped up to the next CR, so a flood costs bounded memory.
"""

from __future__ import annotations

OVERSIZE = b""  # the marker `feed` yields for a frame over the cap (real frames are never empty)
_LEADING_JUNK = b"\n\x00 \t"


class Framer:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._skipping = False  # inside an oversize frame, waiting for its CR

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held (for slowloris accounting)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        frames: list[bytes] = []
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r")
            if end < 0:
                if len(self._buffer) > self.max_bytes:
                    if not self._skipping:
                        frames.append(OVERSIZE)
                    self._skipping = True
                    self._buffer.clear()
                return frames
            frame = bytes(self._buffer[:end]).lstrip(_LEADING_JUNK)
            del self._buffer[: end + 1]
            if self._skipping:
                self._skipping = False  # the CR that ends the oversize frame
                continue
            if len(frame) > self.max_bytes:
                frames.append(OVERSIZE)
            elif frame:
                frames.append(frame)
