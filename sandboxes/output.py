"""Bounded capture of a command's output: the head and the tail, never the whole thing.

A build log can be gigabytes; the agent needs its start (what ran) and its end (what
failed). Memory stays bounded however much a command prints.
"""

from __future__ import annotations

import re


def cut_marker(cut: int) -> str:
    return f"\n[... {cut} bytes cut ...]\n"


class BoundedOutput:
    """Keeps the first ``limit // 2`` and the last ``limit - limit // 2`` bytes fed to it.

    ``reserve`` bytes more are kept at the end for a trailer the caller takes out with
    :meth:`take_last` (the exec wrapper's end line), so that the trailer costs none of
    the command's own output.
    """

    def __init__(self, limit: int, *, reserve: int = 0) -> None:
        if limit < 2:
            raise ValueError("limit must be at least 2 bytes")
        self._head_limit = limit // 2
        self._tail_limit = limit - self._head_limit + reserve
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data:
            self._tail += data
            excess = len(self._tail) - self._tail_limit
            if excess > 0:
                del self._tail[:excess]

    @property
    def cut(self) -> int:
        """How many bytes were dropped from the middle."""
        return self.total - len(self._head) - len(self._tail)

    def take_last(self, pattern: re.Pattern[bytes]) -> re.Match[bytes] | None:
        """Find the last match of ``pattern`` in the kept tail, remove it and return it.

        The exec wrapper reports its status on the last line of stderr; taking it out
        here keeps it out of what the caller sees and out of the byte counts.
        """
        if self.cut:
            region = self._tail
        else:
            self._head += self._tail
            self._tail.clear()
            region = self._head
        matches = list(pattern.finditer(bytes(region)))
        if not matches:
            return None
        match = matches[-1]
        del region[match.start() : match.end()]
        self.total -= match.end() - match.start()
        if not self.cut and len(self._head) > self._head_limit:
            self._tail[:0] = self._head[self._head_limit :]
            del self._head[self._head_limit :]
        return match

    def head(self) -> bytes:
        """The first bytes fed, up to half the limit."""
        return bytes(self._head)

    def data(self) -> bytes:
        """Every byte fed, when nothing was cut; check :attr:`cut` first."""
        if self.cut:
            raise ValueError(f"{self.cut} bytes were cut; the whole output is not available")
        return bytes(self._head) + bytes(self._tail)

    def text(self) -> str:
        """The kept bytes as text, with a marker saying how much was cut, if anything."""
        if not self.cut:
            return self.data().decode("utf-8", errors="replace")
        return (
            self._head.decode("utf-8", errors="replace")
            + cut_marker(self.cut)
            + self._tail.decode("utf-8", errors="replace")
        )
