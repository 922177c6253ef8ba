"""A `Readable` constraint as a SQL condition, so a search filters before it pages.

Direct grants become `IN` / `NOT IN` lists. Role patterns are fnmatch-style (`*`, `?`, `[seq]`),
which SQL's LIKE cannot express in full, so with patterns the candidate ids are read (one
indexed column scan) and matched in Python, and the condition lists the readable ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, false, select, true

from mltrail.store.readable import Readable


def _values(ids: Iterable[str], numeric: bool) -> list[Any]:
    if not numeric:
        return sorted(ids)
    return sorted(int(i) for i in ids if i.isdigit())  # an id that is no number names no experiment


def readable_condition(conn: Connection, readable: Readable, col: Any, numeric: bool = False) -> Any:
    """A condition keeping the rows whose `col` (an experiment id when `numeric`, else a name) the
    caller may read."""
    if readable.needs_candidates():
        candidates = [str(v) for v in conn.execute(select(col).distinct()).scalars()]
        allowed = _values(readable.keep(candidates), numeric)
        return col.in_(allowed) if allowed else false()
    if readable.default:
        refused = _values(readable.refused, numeric)
        return col.not_in(refused) if refused else true()
    granted = _values(readable.granted, numeric)
    return col.in_(granted) if granted else false()
