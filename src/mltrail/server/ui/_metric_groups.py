"""Run-page chart layout: metrics grouped by their first `/` segment, validation drawn with train."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

VALIDATION_PREFIXES = ("val_", "validation_")


@dataclass
class ChartSpec:
    """One chart: its main metric and the validation metrics drawn on it as extra lines."""

    key: str
    validation: list[str] = field(default_factory=list)


@dataclass
class MetricGroup:
    """Charts whose metric keys share a first `/` segment ("" for keys without one)."""

    name: str
    charts: list[ChartSpec] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(1 + len(c.validation) for c in self.charts)


def train_key(key: str) -> str | None:
    """The metric `key` validates (`val_loss` -> `loss`, `batch/val_acc` -> `batch/acc`), if it is one."""
    head, sep, leaf = key.rpartition("/")
    for prefix in VALIDATION_PREFIXES:
        if leaf.startswith(prefix) and len(leaf) > len(prefix):
            return head + sep + leaf[len(prefix):]
    return None


def group_of(key: str) -> str:
    """The group a metric's chart goes in: its first `/` segment (`batch/loss` -> `batch`), "" for none."""
    return key.split("/", 1)[0] if "/" in key else ""


def placement(key: str, shown: Iterable[str]) -> dict[str, Any]:
    """Where a metric that appears while a page is open goes, as `group_metrics` would have put it.

    `{"group": its section, "validates": the metric whose chart it joins as a validation line, or
    None, "validated_by": the shown metrics that validate it (their charts become its chart)}`.
    The page decides: only a chart whose own metric is `validates` takes the line (`val_val_loss`
    stays apart when `val_loss` is itself a line on `loss`'s chart, as on the rendered page).
    """
    return {"group": group_of(key), "validates": train_key(key),
            "validated_by": sorted(k for k in shown if train_key(k) == key)}


def group_metrics(keys: list[str]) -> list[MetricGroup]:
    """Ungrouped charts first, then one group per first segment in alphabetical order.

    A validation metric whose train metric was logged too joins that metric's chart instead of
    having its own, so train and validation of one metric are read against each other.
    """
    present = set(keys)
    charts: dict[str, ChartSpec] = {}
    for key in sorted(present):
        if train_key(key) not in present:
            charts[key] = ChartSpec(key)
    for key in sorted(present):
        base = train_key(key)
        if base in charts:
            charts[base].validation.append(key)
        elif base in present:  # `val_val_loss`: its train metric is itself drawn on another chart
            charts[key] = ChartSpec(key)
    groups: dict[str, MetricGroup] = {}
    for key, spec in sorted(charts.items()):
        name = group_of(key)
        groups.setdefault(name, MetricGroup(name)).charts.append(spec)
    return sorted(groups.values(), key=lambda g: (g.name != "", g.name))
