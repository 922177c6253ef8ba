"""mltrail.validate_evaluation_results and MetricThreshold, as MLflow 3.17.2's model validation: thresholds,
absolute and relative changes over a baseline, MLflow's failure messages (one line per failing metric)."""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
import pytest

import mltrail as mlflow
from mltrail.errors import MltrailException
from mltrail.models import MetricThreshold
from mltrail.models.evaluation import EvaluationResult
from mltrail.models.evaluation.validation import MetricThresholdClassException, ModelValidationFailedException


def _result(**metrics: float) -> EvaluationResult:
    return EvaluationResult(metrics=metrics, artifacts={}, run_id="r")


def _failure(thresholds, candidate, baseline=None) -> list[str]:
    with pytest.raises(ModelValidationFailedException) as e:
        mlflow.validate_evaluation_results(thresholds, candidate, baseline)
    assert e.value.error_code == "BAD_REQUEST"
    return str(e.value).split(os.linesep)


def test_exports_match_mlflow():
    import mltrail.models
    import mltrail.models.evaluation

    assert mltrail.models.MetricThreshold is mltrail.models.evaluation.MetricThreshold is MetricThreshold
    assert "validate_evaluation_results" in mlflow.__all__ and "MetricThreshold" in mltrail.models.__all__


def test_value_threshold_both_directions():
    acc = {"accuracy_score": MetricThreshold(threshold=0.8, greater_is_better=True)}
    mlflow.validate_evaluation_results(acc, _result(accuracy_score=0.8))  # >= passes at equality
    assert _failure(acc, _result(accuracy_score=0.75)) == [
        "Metric accuracy_score value threshold check failed: candidate model accuracy_score = 0.75, "
        "accuracy_score threshold = 0.8."]
    mse = {"mse": MetricThreshold(threshold=1.0, greater_is_better=False)}
    mlflow.validate_evaluation_results(mse, _result(mse=1.0))
    assert _failure(mse, _result(mse=1.5))[0].startswith("Metric mse value threshold check failed")


def test_absolute_and_relative_change_against_the_baseline():
    thresholds = {"accuracy_score": MetricThreshold(min_absolute_change=0.05, min_relative_change=0.1,
                                                    greater_is_better=True)}
    baseline = _result(accuracy_score=0.6)
    mlflow.validate_evaluation_results(thresholds, _result(accuracy_score=0.7), baseline)  # +0.1 and +16.7%
    lines = _failure(thresholds, _result(accuracy_score=0.62), baseline)
    assert lines == [
        "Metric accuracy_score minimum absolute change check failed: candidate model accuracy_score = 0.62, "
        "baseline model accuracy_score = 0.6, accuracy_score minimum absolute change threshold = 0.05. "
        "Metric accuracy_score minimum relative change check failed: candidate model accuracy_score = 0.62, "
        "baseline model accuracy_score = 0.6, accuracy_score minimum relative change threshold = 0.1."]
    # lower is better: the candidate must go down by the change
    loss = {"log_loss": MetricThreshold(min_absolute_change=0.1, greater_is_better=False)}
    mlflow.validate_evaluation_results(loss, _result(log_loss=0.4), _result(log_loss=0.5))
    assert "minimum absolute change check failed" in _failure(loss, _result(log_loss=0.45), _result(log_loss=0.5))[0]


def test_relative_change_uses_the_baselines_magnitude():
    # an R2 below 0: going from -0.5 to -0.4 is a 20% improvement, not a worsening
    r2 = {"r2_score": MetricThreshold(min_relative_change=0.15, greater_is_better=True)}
    mlflow.validate_evaluation_results(r2, _result(r2_score=-0.4), _result(r2_score=-0.5))
    assert _failure(r2, _result(r2_score=-0.45), _result(r2_score=-0.5))[0].startswith(
        "Metric r2_score minimum relative change check failed")


def test_zero_baseline_falls_back_to_strictly_better(caplog):
    thresholds = {"m": MetricThreshold(min_relative_change=0.5, greater_is_better=True)}
    with caplog.at_level(logging.WARNING, logger="mltrail.models.evaluation.validation"):
        mlflow.validate_evaluation_results(thresholds, _result(m=0.001), _result(m=0.0))
    assert "Cannot perform relative model comparison for metric m as baseline metric value is 0" in caplog.text
    assert _failure(thresholds, _result(m=0.0), _result(m=0.0))[0].startswith(
        "Metric m minimum relative change check failed")


def test_missing_metrics_and_several_failures_one_line_each():
    thresholds = {
        "absent": MetricThreshold(threshold=1, greater_is_better=True),
        "acc": MetricThreshold(threshold=0.9, min_absolute_change=0.01, greater_is_better=True),
        "ok": MetricThreshold(threshold=0.1, greater_is_better=True),
    }
    lines = _failure(thresholds, _result(acc=0.5, ok=0.5), _result(ok=0.2))
    assert lines == [
        "Metric validation failed: metric absent was missing from the evaluation result of the candidate model.",
        "Metric acc value threshold check failed: candidate model acc = 0.5, acc threshold = 0.9. Model comparison "
        "failed: metric acc was missing from the evaluation result of the baseline model."]
    # no baseline at all: a change threshold cannot be checked (even a zero relative change)
    zero = {"acc": MetricThreshold(min_relative_change=0.0, greater_is_better=True)}
    assert _failure(zero, _result(acc=0.5)) == [
        "Model comparison failed: metric acc was missing from the evaluation result of the baseline model."]


def test_nan_metric_fails_its_checks():
    thresholds = {"acc": MetricThreshold(threshold=0.5, min_absolute_change=0.1, greater_is_better=True)}
    lines = _failure(thresholds, _result(acc=float("nan")), _result(acc=0.2))
    assert "value threshold check failed" in lines[0] and "minimum absolute change check failed" in lines[0]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"threshold": "0.8", "greater_is_better": True}, "`threshold` parameter must be a number."),
    ({"threshold": True, "greater_is_better": True}, "`threshold` parameter must be a number."),
    ({"min_absolute_change": -1, "greater_is_better": True},
     "`min_absolute_change` parameter must be a positive number."),
    ({"min_relative_change": 1, "greater_is_better": True},
     "`min_relative_change` parameter must be a floating point number."),
    ({"min_relative_change": 1.5, "greater_is_better": True},
     "`min_relative_change` parameter must be between 0 and 1."),
    ({"threshold": 0.8}, "`greater_is_better` parameter must be defined."),
    ({"threshold": 0.8, "greater_is_better": 1}, "`greater_is_better` parameter must be a boolean."),
    ({"greater_is_better": True}, "no threshold was specified."),
])
def test_invalid_thresholds_are_refused_with_mlflows_words(kwargs, message):
    with pytest.raises(MetricThresholdClassException) as e:
        MetricThreshold(**kwargs)
    assert str(e.value).startswith("Could not instantiate MetricThreshold class: " + message)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_threshold_str_and_properties():
    t = MetricThreshold(threshold=0.8, min_absolute_change=0.05, min_relative_change=0.05, greater_is_better=False)
    assert str(t) == ("Threshold: 0.8. Minimum Absolute Change: 0.05. Minimum Relative Change: 0.05. "
                      "Lower value is better.")
    assert (t.threshold, t.min_absolute_change, t.min_relative_change, t.greater_is_better) == (0.8, 0.05, 0.05, False)


@pytest.mark.parametrize("thresholds", [
    [("acc", MetricThreshold(threshold=0.5, greater_is_better=True))],
    {1: MetricThreshold(threshold=0.5, greater_is_better=True)},
    {"acc": 0.5},
])
def test_thresholds_argument_must_map_names_to_metric_thresholds(thresholds):
    with pytest.raises(MltrailException, match="The validation thresholds argument must be a dictionary that maps "
                                               "strings to MetricThreshold objects") as e:
        mlflow.validate_evaluation_results(thresholds, _result(acc=1.0))
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_real_evaluation_results_candidate_against_baseline(tracking):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 2))
    y = (x[:, 0] > 0).astype(int)
    df = pd.DataFrame(x, columns=["a", "b"]).assign(label=y)

    def good(frame: pd.DataFrame) -> np.ndarray:
        return (frame["a"] > 0).astype(int).to_numpy()

    def coin(frame: pd.DataFrame) -> np.ndarray:
        return (frame["b"] > 0).astype(int).to_numpy()

    with mlflow.start_run():
        candidate = mlflow.evaluate(good, df, targets="label", model_type="classifier")
    with mlflow.start_run():
        baseline = mlflow.evaluate(coin, df, targets="label", model_type="classifier")
    thresholds = {"accuracy_score": MetricThreshold(threshold=0.9, min_absolute_change=0.1, greater_is_better=True)}
    mlflow.validate_evaluation_results(thresholds, candidate, baseline)
    lines = _failure(thresholds, baseline, candidate)  # the worse model as the candidate fails both checks
    assert lines[0].startswith(f"Metric accuracy_score value threshold check failed: candidate model accuracy_score "
                               f"= {baseline.metrics['accuracy_score']}")
    assert "minimum absolute change check failed" in lines[0]
