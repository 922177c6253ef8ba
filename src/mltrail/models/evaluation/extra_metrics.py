"""`extra_metrics`: user metrics computed after the built-in ones, each fed what its parameters name."""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mltrail.errors import InvalidParameterValue, MltrailException
from mltrail.models.evaluation.metrics import EvaluationMetric, MetricValue, is_number

_logger = logging.getLogger(__name__)


@dataclass
class MetricInputs:
    """What an eval_fn may ask for: predictions and targets, input columns, config values, other metrics."""

    eval_df: pd.DataFrame  # "prediction" and, when labels exist, "target"
    input_df: pd.DataFrame
    config: dict[str, Any]
    predictions_name: str | None
    targets_name: str | None


def aggregates(values: dict[str, MetricValue]) -> dict[str, Any]:
    """Scalar metrics by name: `name` for a metric's own aggregate, `name/aggregation` for the others."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        for agg_name, agg_value in (value.aggregate_results or {}).items():
            if agg_value is None:
                continue
            out[name if agg_name == name.split("/")[0] else f"{name}/{agg_name}"] = agg_value
    return out


class _Missing:
    pass


MISSING = _Missing()


def _arguments(metric: EvaluationMetric, inputs: MetricInputs, values: dict[str, MetricValue],
               pending: set[str]) -> tuple[list[Any], list[str]]:
    """The arguments for `metric.eval_fn`, and the names of parameters nothing provides."""
    params = inspect.signature(metric.eval_fn).parameters
    names = list(params)
    eval_df = inputs.eval_df.copy()
    if len(names) == 2 and names[0] != "predictions" and names[1] != "targets":
        # The older form: eval_fn(eval_df, builtin_metrics).
        return [eval_df, copy.deepcopy(aggregates(values))], []
    mapping = inputs.config.get("col_mapping", {}) or {}
    args: list[Any] = []
    missing: list[str] = []
    for name, param in params.items():
        column = mapping.get(name, name)
        found: Any = MISSING
        if column in ("predictions", inputs.predictions_name):
            found = eval_df["prediction"]
        elif column in ("targets", inputs.targets_name):
            if "target" in eval_df:
                found = eval_df["target"]
        elif column == "metrics":
            found = copy.deepcopy(values)
        elif not isinstance(column, str):
            found = column  # col_mapping gave the values themselves
        elif column in inputs.input_df.columns:
            found = inputs.input_df[column]
        elif column in inputs.config:
            found = inputs.config[column]
        elif column in values:
            found = values[column]
        elif column in pending:
            return [], [name]  # another metric will provide it: try again after that one
        if found is MISSING:
            if param.default is inspect.Parameter.empty:
                missing.append(name)
                continue
            found = param.default
        args.append(found)
    return args, missing


def _checked(metric: EvaluationMetric, index: int, result: Any) -> MetricValue | None:
    """The eval_fn's result as a MetricValue; a malformed one is skipped with a warning, as MLflow does."""
    header = f"Did not log metric '{metric.name}' at index {index} in the `extra_metrics` parameter because it"
    if result is None:
        _logger.warning("%s returned None.", header)
        return None
    if is_number(result):
        return MetricValue(aggregate_results={metric.name: result})
    if not isinstance(result, MetricValue):
        _logger.warning("%s did not return a MetricValue.", header)
        return None
    if result.scores is not None and not isinstance(result.scores, list):
        _logger.warning("%s must return MetricValue with scores as a list.", header)
        return None
    if result.aggregate_results is not None and not (
            isinstance(result.aggregate_results, dict)
            and all(isinstance(k, str) and (v is None or is_number(v)) for k, v in result.aggregate_results.items())):
        _logger.warning("%s must return MetricValue with aggregate_results with str keys and numeric values.", header)
        return None
    return result


def evaluate_extra_metrics(metrics: Sequence[Any], inputs: MetricInputs, values: dict[str, MetricValue]) -> None:
    """Compute `metrics` into `values`, each after the metrics it names as parameters."""
    bad = [m for m in metrics if not isinstance(m, EvaluationMetric)]
    if bad:
        listing = "\n".join(f"- Metric '{m}' has type '{type(m).__name__}'" for m in bad)
        raise MltrailException(
            f"In the 'extra_metrics' parameter, the following metrics have the wrong type:\n{listing}\n"
            "Please ensure that all extra metrics are instances of mltrail.models.EvaluationMetric.")
    remaining = list(enumerate(metrics))
    while remaining:
        pending = {m.name for _, m in remaining}
        progressed, failures, later = False, [], []
        for index, metric in remaining:
            args, missing = _arguments(metric, inputs, values, pending - {metric.name})
            if missing:
                later.append((index, metric))
                failures.append(f"Metric '{metric.name}' requires the following: {missing}")
                continue
            value = _checked(metric, index, metric.eval_fn(*args))
            if value is not None:
                values[f"{metric.name}/{metric.version}" if metric.version else metric.name] = value
            pending.discard(metric.name)
            progressed = True
        if not progressed:
            raise InvalidParameterValue(
                "Error: Metric calculation failed for the following metrics:\n" + "\n".join(failures)
                + f"\n\nBelow are the existing column names for the input/output data:\nInput Columns: "
                f"{list(map(str, inputs.input_df.columns))}\nTo resolve this issue, you may need to specify any "
                "required parameters, or map them to an existing column with "
                "evaluator_config={'col_mapping': {<missing column name>: <existing column name>}}.")
        remaining = later
