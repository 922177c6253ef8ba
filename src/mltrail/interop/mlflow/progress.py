"""A one-line progress counter per import phase (runs, metric points, artifacts), written to stderr."""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO


class Progress(Protocol):
    """What the importer reports to: a phase starts with its expected total, advances, and ends."""

    def start(self, phase: str, total: int | None) -> None: ...

    def advance(self, n: int) -> None: ...

    def finish(self) -> None: ...


class LineProgress:
    """`metric points: 1,200,000/10,000,000 (12%)` rewritten in place at most every `interval` seconds."""

    def __init__(self, stream: TextIO | None = None, interval: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.phase = ""
        self.total: int | None = None
        self.done = 0
        self._shown_at = 0.0

    def start(self, phase: str, total: int | None) -> None:
        self.phase, self.total, self.done, self._shown_at = phase, total, 0, 0.0
        self._show()

    def advance(self, n: int) -> None:
        self.done += n
        if time.monotonic() - self._shown_at >= self.interval:
            self._show()

    def finish(self) -> None:
        self._show()
        self.stream.write("\n")
        self.stream.flush()

    def _show(self) -> None:
        self._shown_at = time.monotonic()
        line = f"{self.phase}: {self.done:,}"
        if self.total:
            line += f"/{self.total:,} ({100 * self.done // self.total}%)"
        self.stream.write("\r" + line)
        self.stream.flush()


class NoProgress:
    """Reports nothing (for callers that show their own)."""

    def start(self, phase: str, total: int | None) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def finish(self) -> None:
        pass
