"""Tables read from artifact bytes for the UI: pandas' split JSON (what log_table writes) and CSV.

Both give a header and the first rows as Python values; the run page's Tables section and the
artifact preview turn them into escaped HTML (template) or text nodes (artifacts.js).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

MAX_ROWS = 100


@dataclass
class TableData:
    """A table's header and first rows; `total` counts its rows (None when only its beginning was read)."""

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    total: int | None = None


def is_split_json(doc: Any) -> bool:
    """Whether a parsed JSON document is a table in pandas' split orientation."""
    if not isinstance(doc, dict) or not set(doc) <= {"columns", "data", "index"}:
        return False
    return isinstance(doc.get("columns"), list) and isinstance(doc.get("data"), list)


def split_json(doc: Any, max_rows: int = MAX_ROWS) -> TableData:
    """The table of a parsed split-JSON document ({"columns": [...], "data": [[...], ...]})."""
    if not is_split_json(doc):
        raise ValueError(
            'Not a table in pandas\' split JSON: expected {"columns": [...], "data": [[...], ...]}.')
    rows = [r if isinstance(r, list) else [r] for r in doc["data"][:max_rows]]
    return TableData([str(c) for c in doc["columns"]], rows, len(doc["data"]))


def csv_table(data: bytes, complete: bool, max_rows: int = MAX_ROWS) -> TableData:
    """The table of CSV bytes; `complete` false means the bytes are a file's beginning (last line dropped)."""
    text = data.decode("utf-8", errors="replace")
    if not complete:
        text = text[: text.rfind("\n") + 1]
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise ValueError("An empty CSV file." if complete else
                         "No complete line at the beginning of this CSV file.")
    rows: list[list[Any]] = []
    total = 0
    for row in reader:
        total += 1
        if len(rows) < max_rows:
            rows.append(list(row))
    return TableData(header, rows, total if complete else None)


def cell_text(value: Any, limit: int = 300) -> str:
    """A cell as text: strings as they are, other values as JSON, cut to `limit` characters."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
