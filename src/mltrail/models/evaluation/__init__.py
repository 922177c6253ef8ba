"""Model evaluation, MLflow's `mlflow.models.evaluate`: metrics and plots for classifiers and regressors.

scikit-learn and matplotlib (the `evaluate` extra) load only when `evaluate` runs.
"""

from __future__ import annotations

from mltrail.models.evaluation.artifacts import (
    CsvEvaluationArtifact,
    EvaluationArtifact,
    ImageEvaluationArtifact,
    JsonEvaluationArtifact,
    NumpyEvaluationArtifact,
    TextEvaluationArtifact,
)
from mltrail.models.evaluation.evaluate import EVALUATOR_NAMES, evaluate
from mltrail.models.evaluation.metrics import EvaluationMetric, MetricValue, make_metric
from mltrail.models.evaluation.result import EvaluationResult
from mltrail.models.evaluation.validation import MetricThreshold


def list_evaluators() -> list[str]:
    """The names of the evaluators `evaluate(evaluators=...)` accepts."""
    return list(EVALUATOR_NAMES)


__all__ = [
    "CsvEvaluationArtifact", "EvaluationArtifact", "EvaluationMetric", "EvaluationResult", "ImageEvaluationArtifact",
    "JsonEvaluationArtifact", "MetricThreshold", "MetricValue", "NumpyEvaluationArtifact", "TextEvaluationArtifact", "evaluate",
    "list_evaluators", "make_metric",
]
