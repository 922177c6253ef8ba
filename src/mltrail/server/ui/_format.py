"""Formatting for pages and JSON rows: times, durations, numbers, sizes (the Jinja filters)."""

from __future__ import annotations

import math
import time
from typing import Any


def fmt_time(ms: int | None) -> str:
    """Milliseconds since the epoch as local `YYYY-MM-DD HH:MM:SS` (empty for None)."""
    if not ms:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def fmt_duration(start: int | None, end: int | None) -> str:
    """`end - start` as `850 ms`, `12.3 s`, `4 min 05 s` or `2 h 03 min` (empty when unknown)."""
    if not start or not end or end < start:
        return ""
    ms = end - start
    if ms < 1000:
        return f"{ms} ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def fmt_number(value: Any) -> str:
    """A metric value with 6 significant digits; NaN and infinities spelled out."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return f"{value:.6g}"
    return str(value)


def fmt_size(n: int | None) -> str:
    """A byte count as `512 B`, `1.5 KiB`, `3.2 MiB`."""
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover


def short(text: Any, n: int = 80) -> str:
    """`text` cut to `n` characters with an ellipsis."""
    s = "" if text is None else str(text)
    return s if len(s) <= n else s[: n - 1] + "\u2026"


def source_name(tags: dict[str, str]) -> str:
    """The run's source as a short label: the script's file name, or the notebook's."""
    src = tags.get("mlflow.source.name", "")
    return src.replace("\\", "/").rsplit("/", 1)[-1]


FILTERS = {"time": fmt_time, "number": fmt_number, "size": fmt_size, "short": short}
