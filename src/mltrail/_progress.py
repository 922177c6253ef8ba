"""A transfer progress bar on stderr for large artifact uploads and downloads (no tqdm needed).

Shown for transfers of at least `MIN_BYTES` when stderr is a terminal, or whenever
`MLTRAIL_PROGRESS=true` (`false` hides it everywhere); redrawn at most `MAX_REDRAWS_PER_S`
times a second, so a fast transfer spends no time drawing. Thread-safe: parallel parts share one bar.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from types import TracebackType
from typing import TextIO

MIN_BYTES = 4 * 1024 * 1024
MAX_REDRAWS_PER_S = 5
_MB = 1024 * 1024


def progress_wanted(total: int, stream: TextIO | None = None) -> bool:
    """Whether a transfer of `total` bytes shows a bar (see the module's docstring)."""
    setting = os.environ.get("MLTRAIL_PROGRESS", "").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if total < MIN_BYTES:
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    out = stream or sys.stderr
    return bool(getattr(out, "isatty", lambda: False)())


class ProgressBar:
    """`with ProgressBar(total, "Uploading model.keras") as bar: bar.update(n)` for each chunk moved."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.total = max(total, 0)
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = progress_wanted(total, self.stream) if enabled is None else enabled
        self.done = 0
        self.redraws = 0
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last_draw = 0.0

    def update(self, n: int) -> None:
        """Count `n` more bytes moved; redraw when the last redraw is old enough."""
        with self._lock:
            self.done += n
            now = time.monotonic()
            if self.enabled and now - self._last_draw >= 1.0 / MAX_REDRAWS_PER_S:
                self._draw(now, end="")

    def _draw(self, now: float, end: str) -> None:
        self._last_draw = now
        self.redraws += 1
        elapsed = max(now - self._started, 1e-6)
        pct = 100.0 * self.done / self.total if self.total else 100.0
        rate = self.done / elapsed / _MB
        self.stream.write(f"\r{self.label}: {pct:5.1f}% {self.done / _MB:.1f}/{self.total / _MB:.1f} MiB "
                          f"{rate:.1f} MiB/s{end}")
        self.stream.flush()

    def close(self) -> None:
        """Draw the final state and end the line."""
        with self._lock:
            if self.enabled:
                self._draw(time.monotonic(), end="\n")

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
