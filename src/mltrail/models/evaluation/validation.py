"""Model validation, MLflow's `validate_evaluation_results`: a candidate's metrics against thresholds and a baseline.

Only the metrics dicts of the results are read: nothing here loads pandas or scikit-learn.
"""

from __future__ import annotations

import logging
import operator
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mltrail.errors import BAD_REQUEST, INVALID_PARAMETER_VALUE, MltrailException

if TYPE_CHECKING:
    from mltrail.models.evaluation.result import EvaluationResult

_logger = logging.getLogger(__name__)

# A baseline of 0 has no relative change: the candidate must then only beat it by this much.
_ZERO_BASELINE_STEP = 1e-10


class MetricThresholdClassException(MltrailException):
    """An invalid `MetricThreshold` argument (MLflow's `MetricThresholdClassException`)."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__("Could not instantiate MetricThreshold class: " + message, INVALID_PARAMETER_VALUE,
                         **kwargs)


class ModelValidationFailedException(MltrailException):
    """The candidate's metrics failed at least one threshold; the message lists every failure, one per line."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, BAD_REQUEST, **kwargs)


def _is_number(value: object) -> bool:
    # exactly int or float, as MLflow checks: bools and numpy scalars are refused
    return type(value) in (int, float)


class MetricThreshold:
    """Thresholds one metric must meet: an absolute value, and/or a change over the baseline model's value.

    Args:
        threshold: the value to reach: candidate >= threshold when greater is better, else <= threshold.
        min_absolute_change: a positive number: candidate >= baseline + change (greater is better),
            else candidate <= baseline - change.
        min_relative_change: a float in [0, 1]: the change over the baseline as a fraction of
            |baseline| must be at least this. A baseline of 0 only requires the candidate to be better.
        greater_is_better: required: whether a higher value of the metric is better.
    """

    def __init__(self, threshold: float | None = None, min_absolute_change: float | None = None,
                 min_relative_change: float | None = None, greater_is_better: bool | None = None) -> None:
        if threshold is not None and not _is_number(threshold):
            raise MetricThresholdClassException(
                f"`threshold` parameter must be a number. Received: {threshold!r} ({type(threshold).__name__}).")
        if min_absolute_change is not None and (not _is_number(min_absolute_change) or min_absolute_change <= 0):
            raise MetricThresholdClassException(
                f"`min_absolute_change` parameter must be a positive number. Received: {min_absolute_change!r}.")
        if min_relative_change is not None:
            if not isinstance(min_relative_change, float):
                raise MetricThresholdClassException(
                    "`min_relative_change` parameter must be a floating point number. Received: "
                    f"{min_relative_change!r} ({type(min_relative_change).__name__}).")
            if not 0 <= min_relative_change <= 1:
                raise MetricThresholdClassException(
                    f"`min_relative_change` parameter must be between 0 and 1. Received: {min_relative_change!r}.")
        if greater_is_better is None:
            raise MetricThresholdClassException("`greater_is_better` parameter must be defined.")
        if not isinstance(greater_is_better, bool):
            raise MetricThresholdClassException(
                f"`greater_is_better` parameter must be a boolean. Received: {greater_is_better!r}.")
        if threshold is None and min_absolute_change is None and min_relative_change is None:
            raise MetricThresholdClassException(
                "no threshold was specified. Expected at least one of threshold, min_absolute_change and "
                "min_relative_change.")
        self._threshold = threshold
        self._min_absolute_change = min_absolute_change
        self._min_relative_change = min_relative_change
        self._greater_is_better = greater_is_better

    @property
    def threshold(self) -> float | None:
        """The value the metric must reach."""
        return self._threshold

    @property
    def min_absolute_change(self) -> float | None:
        """The least absolute improvement over the baseline model."""
        return self._min_absolute_change

    @property
    def min_relative_change(self) -> float | None:
        """The least improvement over the baseline model, as a fraction of |baseline|."""
        return self._min_relative_change

    @property
    def greater_is_better(self) -> bool:
        """Whether a higher value of the metric is better."""
        return self._greater_is_better

    def __str__(self) -> str:
        parts = []
        if self._threshold is not None:
            parts.append(f"Threshold: {self._threshold}.")
        if self._min_absolute_change is not None:
            parts.append(f"Minimum Absolute Change: {self._min_absolute_change}.")
        if self._min_relative_change is not None:
            parts.append(f"Minimum Relative Change: {self._min_relative_change}.")
        parts.append("Greater value is better." if self._greater_is_better else "Lower value is better.")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (f"MetricThreshold(threshold={self._threshold!r}, min_absolute_change={self._min_absolute_change!r}, "
                f"min_relative_change={self._min_relative_change!r}, greater_is_better={self._greater_is_better!r})")


@dataclass
class _MetricCheck:
    """The outcome of one metric's checks, and the message MLflow writes for it."""

    name: str
    threshold: MetricThreshold
    candidate: Any = None
    baseline: Any = None
    missing_candidate: bool = False
    missing_baseline: bool = False
    threshold_failed: bool = False
    absolute_failed: bool = False
    relative_failed: bool = False

    def passed(self) -> bool:
        return not (self.missing_candidate or self.missing_baseline or self.threshold_failed
                    or self.absolute_failed or self.relative_failed)

    def message(self) -> str:
        n = self.name
        if self.missing_candidate:
            return f"Metric validation failed: metric {n} was missing from the evaluation result of the candidate model."
        lines = []
        if self.threshold_failed:
            lines.append(f"Metric {n} value threshold check failed: candidate model {n} = {self.candidate}, "
                         f"{n} threshold = {self.threshold.threshold}.")
        if self.missing_baseline:
            lines.append(f"Model comparison failed: metric {n} was missing from the evaluation result of the "
                         "baseline model.")
            return " ".join(lines)
        compared = f"candidate model {n} = {self.candidate}, baseline model {n} = {self.baseline}"
        if self.absolute_failed:
            lines.append(f"Metric {n} minimum absolute change check failed: {compared}, {n} minimum absolute change "
                         f"threshold = {self.threshold.min_absolute_change}.")
        if self.relative_failed:
            lines.append(f"Metric {n} minimum relative change check failed: {compared}, {n} minimum relative change "
                         f"threshold = {self.threshold.min_relative_change}.")
        return " ".join(lines)


def _check_metric(name: str, threshold: MetricThreshold, candidate_metrics: Mapping[str, Any],
                  baseline_metrics: Mapping[str, Any]) -> _MetricCheck:
    check = _MetricCheck(name, threshold, candidate_metrics.get(name), baseline_metrics.get(name))
    if name not in candidate_metrics:
        check.missing_candidate = True
        return check
    better = threshold.greater_is_better
    # a comparison with NaN is False, so a NaN metric fails every check it meets
    at_least: Callable[[Any, Any], bool] = operator.ge if better else operator.le
    step: Callable[[Any, Any], Any] = operator.add if better else operator.sub
    candidate = check.candidate
    if threshold.threshold is not None:
        check.threshold_failed = not at_least(candidate, threshold.threshold)
    comparing = threshold.min_absolute_change is not None or threshold.min_relative_change is not None
    if not comparing:
        return check
    if name not in baseline_metrics:
        check.missing_baseline = True
        return check
    baseline = check.baseline
    if threshold.min_absolute_change is not None:
        check.absolute_failed = not at_least(candidate, step(baseline, threshold.min_absolute_change))
    if threshold.min_relative_change is not None:
        if baseline == 0:
            _logger.warning(
                "Cannot perform relative model comparison for metric %s as baseline metric value is 0. Falling back "
                "to simple comparison: verifying that candidate metric value is better than the baseline metric "
                "value.", name)
            check.relative_failed = not at_least(candidate, step(baseline, _ZERO_BASELINE_STEP))
        else:
            # the change in the better direction, over |baseline| so that a negative baseline keeps the sign right
            change = (candidate - baseline) if better else (baseline - candidate)
            check.relative_failed = not change / abs(baseline) >= threshold.min_relative_change
    return check


def _validate(validation_thresholds: Mapping[str, MetricThreshold], candidate_metrics: Mapping[str, Any],
              baseline_metrics: Mapping[str, Any]) -> None:
    checks = [_check_metric(name, threshold, candidate_metrics, baseline_metrics)
              for name, threshold in validation_thresholds.items()]
    failures = [c.message() for c in checks if not c.passed()]
    if failures:
        raise ModelValidationFailedException(os.linesep.join(failures))


def validate_evaluation_results(validation_thresholds: dict[str, MetricThreshold],
                                candidate_result: EvaluationResult,
                                baseline_result: EvaluationResult | None = None) -> None:
    """Check a candidate model's evaluation metrics against thresholds and, optionally, a baseline model's.

    Args:
        validation_thresholds: metric name -> `MetricThreshold`.
        candidate_result: what `mltrail.evaluate` returned for the candidate model.
        baseline_result: what it returned for the baseline model; needed by `min_absolute_change`
            and `min_relative_change`.

    Raises:
        MltrailException: `validation_thresholds` is not a dict of names to `MetricThreshold`s
            (INVALID_PARAMETER_VALUE).
        ModelValidationFailedException: a check failed; the message has one line per failing metric.
    """
    if type(validation_thresholds) is not dict or not all(
            type(k) is str and isinstance(v, MetricThreshold) for k, v in validation_thresholds.items()):
        raise MltrailException(
            "The validation thresholds argument must be a dictionary that maps strings to MetricThreshold objects. "
            f"Received: {validation_thresholds!r}.", INVALID_PARAMETER_VALUE)
    _logger.info("Validating candidate model metrics against baseline")
    _validate(validation_thresholds, candidate_result.metrics,
              baseline_result.metrics if baseline_result is not None else {})
    _logger.info("Model validation passed!")


__all__ = ["MetricThreshold", "MetricThresholdClassException", "ModelValidationFailedException",
           "validate_evaluation_results"]
