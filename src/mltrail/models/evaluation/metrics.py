"""Metric values and user-defined metrics: MLflow's `MetricValue`, `EvaluationMetric` and `make_metric`."""

from __future__ import annotations

import keyword
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import FunctionType
from typing import Any

import numpy as np

from mltrail.errors import InvalidParameterValue

_logger = logging.getLogger(__name__)

# Parameter names an eval_fn receives by role rather than by column: a metric named so cannot be
# used as an input of another metric.
SPECIAL_PARAMETERS = ("predictions", "targets", "metrics")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def standard_aggregations(scores: list[float]) -> dict[str, float]:
    """The aggregates MLflow derives from per-row scores: mean, variance and 90th percentile."""
    return {"mean": float(np.mean(scores)), "variance": float(np.var(scores)),
            "p90": float(np.percentile(scores, 90))}


@dataclass
class MetricValue:
    """The value of a metric: per-row `scores` and `justifications`, and named `aggregate_results`."""

    scores: list[Any] | None = None
    justifications: list[str] | None = None
    aggregate_results: dict[str, float] | None = None

    def __post_init__(self) -> None:
        if (self.aggregate_results is None and isinstance(self.scores, (list, tuple))
                and all(is_number(s) for s in self.scores)):
            self.aggregate_results = standard_aggregations(list(self.scores))


class EvaluationMetric:
    """A metric computed by `eval_fn` during `evaluate` (build one with `make_metric`)."""

    def __init__(self, eval_fn: Callable[..., Any], name: str, greater_is_better: bool,
                 long_name: str | None = None, version: str | None = None, metric_details: str | None = None,
                 metric_metadata: dict[str, Any] | None = None,
                 genai_metric_args: dict[str, Any] | None = None) -> None:
        self.eval_fn = eval_fn
        self.name = name
        self.greater_is_better = greater_is_better
        self.long_name = long_name or name
        self.version = version
        self.metric_details = metric_details
        self.metric_metadata = metric_metadata
        self.genai_metric_args = genai_metric_args

    def __call__(self, **kwargs: Any) -> Any:
        return self.eval_fn(**kwargs)

    def __str__(self) -> str:
        parts = [f"name={self.name}, greater_is_better={self.greater_is_better}", f"long_name={self.long_name}"]
        for label, value in (("version", self.version), ("metric_details", self.metric_details),
                             ("metric_metadata", self.metric_metadata)):
            if value:
                parts.append(f"{label}={value}")
        return "EvaluationMetric(" + ", ".join(parts) + ")"


def make_metric(*, eval_fn: Callable[..., Any], greater_is_better: bool, name: str | None = None,
                long_name: str | None = None, version: str | None = None, metric_details: str | None = None,
                metric_metadata: dict[str, Any] | None = None,
                genai_metric_args: dict[str, Any] | None = None) -> EvaluationMetric:
    """An `EvaluationMetric` for `evaluate(..., extra_metrics=[...])`.

    Args:
        eval_fn: `fn(predictions, targets, metrics, ...)` returning a number or a `MetricValue`; the
            older form `fn(eval_df, builtin_metrics)` is accepted too.
        greater_is_better: whether a larger value is better.
        name: the metric's name; by default `eval_fn.__name__` (required for a lambda).
    """
    if name is None:
        if isinstance(eval_fn, FunctionType) and eval_fn.__name__ == "<lambda>":
            raise InvalidParameterValue("`name` must be specified if `eval_fn` is a lambda function.")
        fn_name = getattr(eval_fn, "__name__", None)
        if not isinstance(fn_name, str):
            raise InvalidParameterValue(
                "`name` must be specified if `eval_fn` does not have a `__name__` attribute.")
        name = fn_name
    if "/" in name:
        raise InvalidParameterValue(
            f"Invalid metric name '{name}'. Metric names cannot include forward slashes ('/').")
    if not name.isidentifier() or keyword.iskeyword(name) or name in SPECIAL_PARAMETERS:
        # Other metrics receive this one as a keyword argument named after it, which then cannot work.
        _logger.warning("The metric name %r cannot be used as an input of another metric: it is not a plain "
                        "Python identifier, or it is a keyword or one of %s.", name, ", ".join(SPECIAL_PARAMETERS))
    return EvaluationMetric(eval_fn=eval_fn, name=name, greater_is_better=greater_is_better, long_name=long_name,
                            version=version, metric_details=metric_details, metric_metadata=metric_metadata,
                            genai_metric_args=genai_metric_args)
