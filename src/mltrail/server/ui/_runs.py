"""The runs table: one page of runs as rows (the same rows for the HTML page and the JSON API).

A page is one `search_runs` call. Without a filter the table is nested: top-level runs are
paged, and each one's children come with it from a second search (one query for the page), so
an Optuna parent shows its trials folded under it. With a filter the table is flat: every
matching run, each child marked with its parent.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mltrail.entities import Run, ViewType
from mltrail.errors import InvalidParameterValue
from mltrail.server.ui._format import fmt_duration, fmt_number, fmt_time, source_name

PARENT_TAG = "mlflow.parentRunId"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_CHILDREN = 2000  # per page; a parent with more links to its filtered child list
DEFAULT_COLUMNS = 6  # per kind (metrics, params) when none are chosen
_KINDS = {"metrics": "metric", "params": "param", "tags": "tag"}
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Column:
    """A chosen column: `metrics.acc`, `params.lr`, `tags.team`."""

    kind: str  # metrics | params | tags
    key: str

    @property
    def spec(self) -> str:
        return f"{self.kind}.{self.key}"

    @property
    def order_key(self) -> str:
        """The column as search_runs' order_by wants it (backquoted when it needs to be)."""
        key = self.key if _PLAIN_KEY.match(self.key) else "`" + self.key.replace("`", "") + "`"
        return f"{self.kind}.{key}"

    def value(self, run: Run) -> str:
        if self.kind == "metrics":
            return fmt_number(run.data.metrics.get(self.key))
        if self.kind == "params":
            return run.data.params.get(self.key, "")
        return run.data.tags.get(self.key, "")


@dataclass
class Row:
    """One run as the table shows it (all strings already formatted)."""

    run_id: str
    name: str
    status: str
    start: str
    duration: str
    user: str
    source: str
    experiment_id: str
    parent_id: str
    cells: list[str]
    children: list[Row] = field(default_factory=list)
    has_models: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "name": self.name, "status": self.status, "start": self.start,
                "duration": self.duration, "user": self.user, "source": self.source,
                "experiment_id": self.experiment_id, "parent_id": self.parent_id, "cells": self.cells,
                "has_models": self.has_models, "children": [c.to_dict() for c in self.children]}


def parse_columns(spec: str | None) -> list[Column] | None:
    """`metrics.acc,params.lr` -> columns; None when nothing was chosen (pick defaults)."""
    if spec is None or not spec.strip():
        return None
    cols = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        kind, dot, key = item.partition(".")
        if not dot or kind not in _KINDS or not key:
            raise InvalidParameterValue(
                f"Invalid column {item!r}: expected metrics.KEY, params.KEY or tags.KEY.")
        cols.append(Column(kind, key))
    return cols


def default_columns(runs: list[Run]) -> list[Column]:
    """The most common metrics and params of these runs (a few of each)."""
    metrics: Counter[str] = Counter()
    params: Counter[str] = Counter()
    for r in runs:
        metrics.update(r.data.metrics.keys())
        params.update(r.data.params.keys())
    pick = [Column("metrics", k) for k, _ in sorted(metrics.items(), key=lambda kv: (-kv[1], kv[0]))[:DEFAULT_COLUMNS]]
    pick += [Column("params", k) for k, _ in sorted(params.items(), key=lambda kv: (-kv[1], kv[0]))[:DEFAULT_COLUMNS]]
    return pick


def available_keys(runs: list[Run]) -> dict[str, list[str]]:
    """Metric, param and (non-system) tag keys seen in these runs, for the column picker."""
    out: dict[str, set[str]] = {"metrics": set(), "params": set(), "tags": set()}
    for r in runs:
        out["metrics"].update(r.data.metrics)
        out["params"].update(r.data.params)
        out["tags"].update(k for k in r.data.tags if not k.startswith("mlflow."))
    return {k: sorted(v) for k, v in out.items()}


def to_row(run: Run, columns: list[Column]) -> Row:
    info, tags = run.info, run.data.tags
    return Row(run_id=info.run_id, name=info.run_name or info.run_id[:8], status=info.status,
               start=fmt_time(info.start_time), duration=fmt_duration(info.start_time, info.end_time),
               user=info.user_id, source=source_name(tags), experiment_id=info.experiment_id,
               parent_id=tags.get(PARENT_TAG, ""), cells=[c.value(run) for c in columns],
               has_models=bool(run.outputs.model_outputs))


def view_type(view: str | None) -> int:
    return {"deleted": ViewType.DELETED_ONLY, "all": ViewType.ALL}.get(view or "", ViewType.ACTIVE_ONLY)


def page_size(value: str | None) -> int:
    if not value:
        return DEFAULT_PAGE_SIZE
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_PAGE_SIZE:
        raise InvalidParameterValue(f"Invalid page size {value!r}: expected 1 to {MAX_PAGE_SIZE}.")
    return n


@dataclass
class RunsPage:
    rows: list[Row]
    runs: list[Run]
    columns: list[Column]
    token: str | None
    nested: bool


def runs_page(store: Any, experiment_id: str, filter_string: str, order_by: str | None,
              page_token: str | None, size: int, columns: list[Column] | None, view: str | None) -> RunsPage:
    """One page of the runs table (children folded under their parents when there is no filter)."""
    nested = not filter_string.strip()
    query = f"tags.`{PARENT_TAG}` IS NULL" if nested else filter_string
    order = [order_by] if order_by else None
    runs = store.search_runs([experiment_id], query, view_type(view), size, order, page_token)
    children: list[Run] = []
    if nested and runs:
        ids = ", ".join("'" + r.info.run_id.replace("'", "") + "'" for r in runs)
        children = list(store.search_runs([experiment_id], f"tags.`{PARENT_TAG}` IN ({ids})", view_type(view),
                                          MAX_CHILDREN, ["attributes.start_time ASC"], None))
    cols = columns if columns is not None else default_columns([*runs, *children])
    rows = [to_row(r, cols) for r in runs]
    by_parent: dict[str, list[Row]] = {}
    for c in children:
        by_parent.setdefault(c.data.tags[PARENT_TAG], []).append(to_row(c, cols))
    for row in rows:
        row.children = by_parent.get(row.run_id, [])
    return RunsPage(rows, [*runs, *children], cols, runs.token, nested)


def sort_link_state(order_by: str | None, col_order_key: str) -> str:
    """'asc' / 'desc' when the table is sorted by this key, else ''."""
    if not order_by:
        return ""
    key, _, direction = order_by.strip().rpartition(" ")
    if not key:
        key, direction = order_by.strip(), "ASC"
    if key.strip() != col_order_key:
        return ""
    return "desc" if direction.upper() == "DESC" else "asc"


def next_order(order_by: str | None, col_order_key: str) -> str:
    """The order_by a click on a column header asks for: descending first, then ascending."""
    state = sort_link_state(order_by, col_order_key)
    return f"{col_order_key} ASC" if state == "desc" else f"{col_order_key} DESC"
