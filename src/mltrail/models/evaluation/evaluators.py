"""The built-in classifier and regressor evaluators: predict, compute MLflow's metrics, log plots and tables."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mltrail.errors import InvalidParameterValue, MltrailException
from mltrail.models.evaluation import classifier_metrics as cm
from mltrail.models.evaluation import plots
from mltrail.models.evaluation.artifacts import (
    CsvEvaluationArtifact,
    EvaluationArtifact,
    ImageEvaluationArtifact,
)
from mltrail.models.evaluation.custom_artifacts import log_custom_artifacts
from mltrail.models.evaluation.eval_data import EvaluationData
from mltrail.models.evaluation.extra_metrics import MetricInputs, aggregates, evaluate_extra_metrics
from mltrail.models.evaluation.metrics import MetricValue
from mltrail.models.evaluation.outputs import classifier_predictions, regression_predictions
from mltrail.models.evaluation.result import EvaluationResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_logger = logging.getLogger(__name__)


@dataclass
class EvaluationJob:
    """One evaluator's inputs, and the metric values and artifacts it gathers."""

    run_id: str
    model_type: str
    data: EvaluationData
    predict: Callable[[Any], Any] | None
    predictions: str | None  # the model-output column to score, when the model returns several
    config: dict[str, Any]
    model_id: str | None
    extra_metrics: Sequence[Any]
    custom_artifacts: Sequence[Callable[..., Any]] | None
    workdir: str
    values: dict[str, MetricValue] = field(default_factory=dict)
    artifacts: dict[str, EvaluationArtifact] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        prefix = self.config.get("metric_prefix", "")
        return prefix if isinstance(prefix, str) else ""

    def raw_output(self) -> Any:
        """The model's output on the features, or the dataset's own predictions when there is no model."""
        if self.predict is None:
            return self.data.predictions
        _logger.info("Computing model predictions.")
        return self.predict(self.data.features_copy())

    def add_metrics(self, metrics: dict[str, Any]) -> None:
        self.values.update({k: MetricValue(aggregate_results={k: v}) for k, v in metrics.items()})

    def log_file(self, local_path: str) -> str:
        from mltrail import fluent

        fluent.log_artifact(local_path, run_id=self.run_id)
        return fluent.get_artifact_uri(os.path.basename(local_path))

    def log_figure(self, name: str, build: Callable[[], Figure]) -> None:
        """Log `build()` as `<prefix><name>.png`; a plot that fails is a warning, as in MLflow."""
        path = os.path.join(self.workdir, f"{self.prefix}{name}.png")
        try:
            with plots.plot_style():
                plots.save_png(build(), path)
        except Exception as e:  # a plot is a nicety: the metrics are already computed
            _logger.warning("Failed to log image artifact %r: %r", name, e)
            return
        artifact = ImageEvaluationArtifact(uri=self.log_file(path))
        artifact._load(path)
        self.artifacts[name] = artifact

    def log_table(self, name: str, df: pd.DataFrame) -> None:
        path = os.path.join(self.workdir, f"{name}.csv")
        df.to_csv(path, index=False)
        self.artifacts[name] = CsvEvaluationArtifact(uri=self.log_file(path), content=df)

    def finish(self, prediction: np.ndarray) -> EvaluationResult:
        """Extra metrics, custom artifacts, then log every metric; the result of this evaluator."""
        labels = self.data.labels
        eval_df = pd.DataFrame({"prediction": pd.Series(prediction).array})
        if labels is not None:
            eval_df["target"] = np.asarray(labels)
        inputs = MetricInputs(eval_df, self.data.features_copy(), self.config, self.predictions or
                              self.data.predictions_name, self.data.targets_name)
        evaluate_extra_metrics(self.extra_metrics, inputs, self.values)
        self.artifacts.update(log_custom_artifacts(self.custom_artifacts, eval_df, aggregates(self.values),
                                                   self.log_file))
        if self.prefix:
            self.values = {f"{self.prefix}{k}": MetricValue(v.scores, v.justifications,
                                                            {f"{self.prefix}{a}": x for a, x in
                                                             (v.aggregate_results or {}).items()})
                           for k, v in self.values.items()}
        metrics = {k: _plain(v) for k, v in aggregates(self.values).items()}
        self._log_metrics(metrics)
        self._log_eval_table(prediction)
        return EvaluationResult(metrics=metrics, artifacts=self.artifacts, run_id=self.run_id)

    def _log_metrics(self, metrics: dict[str, Any]) -> None:
        from mltrail.client import Client, now_ms
        from mltrail.entities import Metric

        stamp = now_ms()
        dataset = self.data.dataset
        Client().log_batch(self.run_id, metrics=[
            Metric(key, float(value), stamp, 0, self.model_id, dataset.name, dataset.digest, self.run_id)
            for key, value in metrics.items()])


    def _log_eval_table(self, prediction: np.ndarray) -> None:
        """MLflow's eval_results_table.json: inputs, targets, outputs and per-row scores, when a metric has them."""
        columns: dict[str, Any] = {}
        for name, value in self.values.items():
            if value.scores:
                columns[f"{name}/score"] = value.scores
            if value.justifications:
                columns[f"{name}/justification"] = value.justifications
        if not columns:
            return
        from mltrail import fluent
        from mltrail.client import Client
        from mltrail.models.evaluation.artifacts import JsonEvaluationArtifact

        data = self.data
        outputs = self.predictions or data.predictions_name or "outputs"
        table = data.features_copy().reset_index(drop=True)
        if data.labels is not None:
            table[data.targets_name or "target"] = np.asarray(data.labels)
        table[outputs] = pd.Series(prediction).array
        table = table.assign(**columns)
        file_name = f"{self.prefix}eval_results_table.json"
        Client().log_table(self.run_id, table, artifact_file=file_name)
        self.artifacts["eval_results_table"] = JsonEvaluationArtifact(uri=fluent.get_artifact_uri(file_name))


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers (ints stay ints)."""
    return value.item() if isinstance(value, np.generic) else value


def evaluate_classifier(job: EvaluationJob) -> EvaluationResult:
    """MLflow's classifier evaluation: metrics, curves, confusion matrix, per-class table."""
    if job.data.labels is None:
        raise InvalidParameterValue("The targets argument must be specified for classifier models.")
    y_true = np.asarray(job.data.labels)
    config = job.config
    label_list, pos_label, weights = config.get("label_list"), config.get("pos_label"), config.get("sample_weights")
    if pos_label is not None and label_list is not None and pos_label not in list(label_list):
        raise InvalidParameterValue(f"'pos_label' {pos_label} must exist in 'label_list' {list(label_list)}.")
    out = classifier_predictions(job.raw_output(), job.predictions, y_true, label_list)
    y_pred, y_proba = out.labels, out.probabilities
    if out.classes is not None:
        labels = out.classes
    elif label_list is not None:
        labels = np.sort(np.asarray(label_list))
    else:
        labels = np.unique(np.concatenate([y_true, y_pred]))
    if len(labels) < 2:
        raise MltrailException(
            "Evaluation dataset for classification must contain at least two unique labels, but only "
            f"{len(labels)} unique labels were found. Please provide a 'label_list' parameter in 'evaluator_config' "
            "with all possible classes, e.g., evaluator_config={'label_list': [0, 1]}.")
    if len(labels) == 2 and pos_label is not None and pos_label not in list(labels):
        raise InvalidParameterValue(
            f"'pos_label' {pos_label} must exist in the labels {list(labels)} (of the targets and predictions).")
    if len(labels) == 2:
        _binary(job, y_true, y_pred, y_proba, labels, pos_label, weights)
    else:
        _multiclass(job, y_true, y_pred, y_proba, labels, weights)
    return job.finish(y_pred)


def _binary(job: EvaluationJob, y_true: np.ndarray, y_pred: np.ndarray, y_proba: np.ndarray | None,
            labels: np.ndarray, pos_label: Any, weights: Any) -> None:
    # Probability columns follow the sorted labels; the positive label goes last for the confusion counts.
    pos_index = int(np.where(labels == pos_label)[0][0]) if pos_label is not None else 1
    pos_label = labels[pos_index] if pos_label is None else pos_label
    ordered = np.append(np.delete(labels, np.where(labels == pos_label)), pos_label)
    _logger.info("The evaluation dataset is inferred as binary dataset, positive label is %s, negative label is %s.",
                 ordered[1], ordered[0])
    job.add_metrics(cm.binary_metrics(y_true, y_pred, ordered, pos_label, y_proba, weights))
    if y_proba is not None:
        roc = cm.classifier_curve("roc", y_true, y_proba, ordered, pos_label, weights, True, pos_index)
        pr = cm.classifier_curve("pr", y_true, y_proba, ordered, pos_label, weights, True, pos_index)
        job.add_metrics({"roc_auc": roc.auc, "precision_recall_auc": pr.auc})
        job.log_figure("roc_curve_plot", lambda: plots.curve_figure(roc, binary=True))
        job.log_figure("precision_recall_curve_plot", lambda: plots.curve_figure(pr, binary=True))
        job.log_figure("lift_curve_plot", lambda: plots.lift_curve_figure(y_true, y_proba, pos_label))
        job.log_figure("calibration_curve_plot", lambda: plots.calibration_figure(
            y_true, y_proba, labels, pos_index, pos_label, _calibration_config(job.config)))
    matrix = cm.normalized_confusion_matrix(y_true, y_pred, ordered, weights)
    job.log_figure("confusion_matrix", lambda: plots.confusion_matrix_figure(matrix, ordered))


def _multiclass(job: EvaluationJob, y_true: np.ndarray, y_pred: np.ndarray, y_proba: np.ndarray | None,
                labels: np.ndarray, weights: Any) -> None:
    _logger.info("The evaluation dataset is inferred as multiclass dataset, number of classes is inferred as %d. If "
                 "this is incorrect, please specify the `label_list` parameter in `evaluator_config`.", len(labels))
    average = job.config.get("average", "weighted")
    job.add_metrics(cm.multiclass_metrics(y_true, y_pred, labels, average, y_proba, weights))
    table = cm.per_class_metrics(y_true, y_pred, labels, weights)
    if y_proba is not None:
        job.log_figure("calibration_curve_plot", lambda: plots.calibration_figure(
            y_true, y_proba, labels, 1, None, _calibration_config(job.config)))
        limit = job.config.get("max_classes_for_multiclass_roc_pr", 10)
        if len(labels) <= limit:
            roc = cm.classifier_curve("roc", y_true, y_proba, labels, None, weights, False)
            job.log_figure("roc_curve_plot", lambda: plots.curve_figure(roc, binary=False))
            table["roc_auc"] = roc.auc
            pr = cm.classifier_curve("pr", y_true, y_proba, labels, None, weights, False)
            job.log_figure("precision_recall_curve_plot", lambda: plots.curve_figure(pr, binary=False))
            table["precision_recall_auc"] = pr.auc
        else:
            _logger.warning("The classifier num_classes > %d, skip logging ROC curve and Precision-Recall curve. "
                            "You can add evaluator config 'max_classes_for_multiclass_roc_pr' to increase the "
                            "threshold.", limit)
    job.log_table("per_class_metrics", table)
    matrix = cm.normalized_confusion_matrix(y_true, y_pred, labels, weights)
    job.log_figure("confusion_matrix", lambda: plots.confusion_matrix_figure(matrix, labels))


def _calibration_config(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k.startswith("calibration_")}


def evaluate_regressor(job: EvaluationJob) -> EvaluationResult:
    """MLflow's regressor metrics, from scikit-learn."""
    from sklearn import metrics as sk

    if job.data.labels is None:
        raise InvalidParameterValue("The targets argument must be specified for regressor models.")
    y = np.asarray(job.data.labels)
    y_pred = regression_predictions(job.raw_output(), job.predictions, len(y))
    weights = job.config.get("sample_weights")
    # Python's sum, not numpy's pairwise one, so the last digit matches MLflow's value.
    total = float((y * np.asarray(weights)).sum()) if weights is not None else float(sum(y))
    job.add_metrics({
        "example_count": len(y),
        "mean_absolute_error": sk.mean_absolute_error(y, y_pred, sample_weight=weights),
        "mean_squared_error": sk.mean_squared_error(y, y_pred, sample_weight=weights),
        "root_mean_squared_error": sk.root_mean_squared_error(y, y_pred, sample_weight=weights),
        "sum_on_target": total,
        "mean_on_target": total / len(y),
        "r2_score": sk.r2_score(y, y_pred, sample_weight=weights),
        "max_error": sk.max_error(y, y_pred),
        "mean_absolute_percentage_error": sk.mean_absolute_percentage_error(y, y_pred, sample_weight=weights),
    })
    return job.finish(y_pred)


def evaluate_default(job: EvaluationJob) -> EvaluationResult:
    """model_type=None: only the extra metrics (and custom artifacts) on the model's single output column."""
    from mltrail.models.evaluation.outputs import output_column

    prediction = np.asarray(output_column(job.raw_output(), job.predictions))
    return job.finish(prediction)


EVALUATORS: dict[str, Callable[[EvaluationJob], EvaluationResult]] = {
    "classifier": evaluate_classifier,
    "regressor": evaluate_regressor,
}


def run_evaluator(job_args: dict[str, Any]) -> EvaluationResult:
    """Run the evaluator for `job_args["model_type"]` in a scratch directory under MLflow's plot style."""
    with tempfile.TemporaryDirectory(prefix="mltrail-eval-") as workdir:
        job = EvaluationJob(workdir=workdir, **job_args)
        evaluator = EVALUATORS.get(job.model_type, evaluate_default)
        return evaluator(job)
