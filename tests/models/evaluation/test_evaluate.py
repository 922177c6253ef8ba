"""mltrail.evaluate as MLflow's documented examples use it (`import mltrail as mlflow`): classifier and
regressor metrics checked against scikit-learn, artifacts in the run's store, metrics and inputs on the run."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk

import mltrail as mlflow
from mltrail.errors import InvalidParameterValue, MltrailException
from mltrail.models.evaluation import (
    CsvEvaluationArtifact,
    EvaluationResult,
    ImageEvaluationArtifact,
    JsonEvaluationArtifact,
    MetricValue,
)

# The metric names MLflow 3.17.2's evaluate logs (read from its runs on the same kinds of data).
BINARY_KEYS = {"true_negatives", "false_positives", "false_negatives", "true_positives", "example_count",
               "accuracy_score", "recall_score", "precision_score", "f1_score"}
PROBABILITY_KEYS = {"log_loss", "roc_auc", "precision_recall_auc"}
MULTICLASS_KEYS = {"example_count", "accuracy_score", "recall_score", "precision_score", "f1_score", "log_loss",
                   "roc_auc"}
REGRESSOR_KEYS = {"example_count", "mean_absolute_error", "mean_squared_error", "root_mean_squared_error",
                  "sum_on_target", "mean_on_target", "r2_score", "max_error", "mean_absolute_percentage_error"}
PER_CLASS_COLUMNS = ["positive_class", "true_negatives", "false_positives", "false_negatives", "true_positives",
                     "example_count", "accuracy_score", "recall_score", "precision_score", "f1_score", "roc_auc",
                     "precision_recall_auc"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    y = (x[:, 0] + 0.4 * rng.normal(size=80) > 0).astype(int)
    df = pd.DataFrame(x, columns=["a", "b", "c"]).assign(label=y)
    return df, y


def _sigmoid_model(df: pd.DataFrame) -> np.ndarray:
    """P(label=1), as a Keras classifier with a sigmoid output returns it."""
    return 1.0 / (1.0 + np.exp(-2.0 * df["a"].to_numpy()))


def _artifact_files(run_id: str) -> list[str]:
    return sorted(f.path for f in mlflow.MlflowClient().list_artifacts(run_id))


def test_binary_classifier_from_a_function_matches_sklearn(tracking, binary):
    df, y = binary
    y_pred = (df["a"] > 0).astype(int).to_numpy()

    result = mlflow.evaluate(lambda inp: (inp["a"] > 0).astype(int), df, targets="label", model_type="classifier")

    assert set(result.metrics) == BINARY_KEYS
    tn, fp, fn, tp = sk.confusion_matrix(y, y_pred).ravel()
    assert (result.metrics["true_negatives"], result.metrics["false_positives"],
            result.metrics["false_negatives"], result.metrics["true_positives"]) == (tn, fp, fn, tp)
    assert result.metrics["example_count"] == len(y)
    assert result.metrics["accuracy_score"] == pytest.approx(sk.accuracy_score(y, y_pred))
    assert result.metrics["precision_score"] == pytest.approx(sk.precision_score(y, y_pred))
    assert result.metrics["recall_score"] == pytest.approx(sk.recall_score(y, y_pred))
    assert result.metrics["f1_score"] == pytest.approx(sk.f1_score(y, y_pred))
    # No run was active: evaluate started one and ended it, as MLflow does.
    assert mlflow.active_run() is None
    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics == pytest.approx(result.metrics)
    assert _artifact_files(result.run_id) == ["confusion_matrix.png"]
    assert isinstance(result.artifacts["confusion_matrix"], ImageEvaluationArtifact)
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.tags == [] and dataset_input.dataset.name == "dataset"
    assert "mlflow_colspec" in dataset_input.dataset.schema


def test_sigmoid_probabilities_give_auc_log_loss_and_curves(tracking, binary):
    df, y = binary
    p = _sigmoid_model(df)
    with mlflow.start_run() as run:
        result = mlflow.evaluate(_sigmoid_model, df, targets="label", model_type="classifier")
    assert result.run_id == run.info.run_id
    assert set(result.metrics) == BINARY_KEYS | PROBABILITY_KEYS
    assert result.metrics["accuracy_score"] == pytest.approx(sk.accuracy_score(y, (p >= 0.5).astype(int)))
    assert result.metrics["log_loss"] == pytest.approx(sk.log_loss(y, np.column_stack([1 - p, p])))
    assert result.metrics["roc_auc"] == pytest.approx(sk.roc_auc_score(y, p))
    assert result.metrics["precision_recall_auc"] == pytest.approx(sk.average_precision_score(y, p))
    names = ["calibration_curve_plot", "confusion_matrix", "lift_curve_plot", "precision_recall_curve_plot",
             "roc_curve_plot"]
    assert sorted(result.artifacts) == names
    assert _artifact_files(run.info.run_id) == [f"{n}.png" for n in names]
    roc = result.artifacts["roc_curve_plot"]
    assert roc.uri.endswith("/roc_curve_plot.png")
    with open(roc.uri, "rb") as f:
        assert f.read(8) == PNG
    assert roc.content.size[0] > 100  # a PIL image
    fresh = ImageEvaluationArtifact(uri=roc.uri)  # no content yet: downloaded from the run's artifacts
    assert fresh.content.size == roc.content.size


def test_multiclass_softmax_probabilities_and_per_class_table(tracking):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(90, 2))
    y = np.digitize(x[:, 0] + 0.3 * rng.normal(size=90), [-0.5, 0.5])
    logits = np.stack([-3 * x[:, 0] - 1, np.zeros(90), 3 * x[:, 0] - 1], axis=1)
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    result = mlflow.evaluate(lambda inp: proba, x, targets=y, model_type="classifier")

    y_pred = proba.argmax(axis=1)
    assert set(result.metrics) == MULTICLASS_KEYS
    assert result.metrics["f1_score"] == pytest.approx(sk.f1_score(y, y_pred, average="weighted"))
    assert result.metrics["recall_score"] == pytest.approx(sk.recall_score(y, y_pred, average="weighted"))
    assert result.metrics["log_loss"] == pytest.approx(sk.log_loss(y, proba))
    assert result.metrics["roc_auc"] == pytest.approx(sk.roc_auc_score(y, proba, multi_class="ovr",
                                                                       average="weighted"))
    assert sorted(result.artifacts) == ["calibration_curve_plot", "confusion_matrix", "per_class_metrics",
                                        "precision_recall_curve_plot", "roc_curve_plot"]
    table = result.artifacts["per_class_metrics"]
    assert isinstance(table, CsvEvaluationArtifact)
    assert list(table.content.columns) == PER_CLASS_COLUMNS
    stored = pd.read_csv(mlflow.MlflowClient().download_artifacts(result.run_id, "per_class_metrics.csv"))
    assert list(stored["positive_class"]) == [0, 1, 2]
    assert list(stored["true_positives"]) == [int(np.sum((y == c) & (y_pred == c))) for c in range(3)]
    assert stored["roc_auc"].tolist() == pytest.approx([sk.roc_auc_score(y == c, proba[:, c]) for c in range(3)])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")  # label 3 never occurs
def test_macro_average_and_label_list_from_evaluator_config(tracking):
    y = np.array([0, 1, 2, 2, 1, 0, 2, 2])
    y_pred = np.array([0, 2, 2, 2, 1, 0, 1, 2])
    result = mlflow.evaluate(lambda inp: y_pred, np.arange(8.0).reshape(-1, 1), targets=y, model_type="classifier",
                             evaluator_config={"average": "macro", "label_list": [0, 1, 2, 3]})
    assert result.metrics["precision_score"] == pytest.approx(
        sk.precision_score(y, y_pred, average="macro", zero_division=0))
    assert set(result.metrics) == MULTICLASS_KEYS - {"log_loss", "roc_auc"}


def test_regressor_on_numpy_data_in_the_active_run(tracking):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 3))
    y = x @ np.array([1.0, 2.0, -1.0]) + 3.0
    seen = []

    def model(inp: pd.DataFrame) -> np.ndarray:
        seen.append(list(inp.columns))
        return inp.to_numpy() @ np.array([1.0, 2.0, -1.0]) + 2.9 + 0.05 * np.sin(inp["feature_1"].to_numpy())

    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(model, x, targets=y, model_type="regressor")
        assert mlflow.active_run().info.run_id == run.info.run_id  # the user's run stays open
    y_pred = model(pd.DataFrame(x, columns=["feature_1", "feature_2", "feature_3"]))
    assert seen[0] == ["feature_1", "feature_2", "feature_3"]  # numpy features reach the model named as MLflow names them
    assert set(result.metrics) == REGRESSOR_KEYS
    expected = {"mean_absolute_error": sk.mean_absolute_error(y, y_pred),
                "mean_squared_error": sk.mean_squared_error(y, y_pred),
                "root_mean_squared_error": sk.root_mean_squared_error(y, y_pred),
                "r2_score": sk.r2_score(y, y_pred), "max_error": sk.max_error(y, y_pred),
                "mean_absolute_percentage_error": sk.mean_absolute_percentage_error(y, y_pred),
                "sum_on_target": y.sum(), "mean_on_target": y.mean(), "example_count": 50}
    assert result.metrics == pytest.approx(expected)
    assert result.artifacts == {}
    logged = mlflow.get_run(run.info.run_id)
    assert logged.data.metrics == pytest.approx(expected)
    assert json.loads(logged.inputs.dataset_inputs[0].dataset.profile)["features_shape"] == [50, 3]


def test_static_dataset_of_predictions(tracking, binary):
    df, y = binary
    static = df.assign(pred=(df["a"] > 0.2).astype(int))
    result = mlflow.evaluate(data=static, predictions="pred", targets="label", model_type="classifier")
    assert result.metrics["accuracy_score"] == pytest.approx(sk.accuracy_score(y, static["pred"]))

    dataset = mlflow.data.from_pandas(static, targets="label", predictions="pred", name="holdout")
    again = mlflow.evaluate(data=dataset, model_type="classifier")
    assert again.metrics == pytest.approx(result.metrics)
    assert mlflow.get_run(again.run_id).inputs.dataset_inputs[0].dataset.name == "holdout"


def test_extra_metrics_custom_artifacts_and_metric_prefix(tracking, binary):
    df, y = binary

    def false_rate(predictions, targets, metrics):
        return metrics["false_positives"].aggregate_results["false_positives"] / len(targets)

    def legacy(eval_df, builtin_metrics):
        return float((eval_df["prediction"] == eval_df["target"]).mean()) + 0 * builtin_metrics["example_count"]

    def per_row(predictions, targets):
        return MetricValue(scores=[float(p == t) for p, t in zip(predictions, targets, strict=True)])

    def report(eval_df, builtin_metrics, artifacts_dir):
        return {"errors": eval_df[eval_df["prediction"] != eval_df["target"]],
                "summary": {"count": builtin_metrics["example_count"]}}  # before the prefix, as in MLflow

    result = mlflow.evaluate(
        lambda inp: (inp["a"] > 0).astype(int), df, targets="label", model_type="classifier",
        extra_metrics=[mlflow.models.make_metric(eval_fn=false_rate, greater_is_better=False),
                       mlflow.models.make_metric(eval_fn=legacy, greater_is_better=True, name="agreement"),
                       mlflow.models.make_metric(eval_fn=per_row, greater_is_better=True)],
        custom_artifacts=[report], evaluator_config={"metric_prefix": "val_"})

    y_pred = (df["a"] > 0).astype(int).to_numpy()
    accuracy = sk.accuracy_score(y, y_pred)
    assert result.metrics["val_false_rate"] == pytest.approx(np.sum((y_pred == 1) & (y == 0)) / len(y))
    assert result.metrics["val_agreement"] == pytest.approx(accuracy)
    # MLflow prefixes the aggregation names too: per_row's mean is logged as "val_per_row/val_mean".
    assert result.metrics["val_per_row/val_mean"] == pytest.approx(accuracy)
    assert {"val_per_row/val_variance", "val_per_row/val_p90", "val_accuracy_score"} <= set(result.metrics)
    assert isinstance(result.artifacts["errors"], CsvEvaluationArtifact)
    assert len(result.artifacts["errors"].content) == int(np.sum(y_pred != y))
    assert isinstance(result.artifacts["summary"], JsonEvaluationArtifact)
    assert result.artifacts["summary"].content == {"count": len(y)}
    assert _artifact_files(result.run_id) == ["errors.csv", "summary.json", "val_confusion_matrix.png",
                                              "val_eval_results_table.json"]
    # Per-row scores go to MLflow's eval table, read back with load_table.
    table = mlflow.load_table("val_eval_results_table.json", run_ids=[result.run_id])
    assert list(table.columns) == ["a", "b", "c", "label", "outputs", "val_per_row/score"]
    assert table["val_per_row/score"].tolist() == [float(p == t) for p, t in zip(y_pred, y, strict=True)]
    assert isinstance(result.artifacts["eval_results_table"], JsonEvaluationArtifact)
    assert sorted(result.tables) == ["eval_results_table"]  # summary.json is JSON but not a table
    (dataset_input,) = mlflow.get_run(result.run_id).inputs.dataset_inputs
    assert [(t.key, t.value) for t in dataset_input.tags] == [("mlflow.data.context", "val_")]


def test_pos_label_chooses_the_positive_class(tracking):
    y = np.array(["no", "yes", "yes", "no", "yes", "no"])
    y_pred = np.array(["no", "yes", "no", "no", "yes", "yes"])
    result = mlflow.evaluate(lambda inp: y_pred, np.zeros((6, 1)), targets=y, model_type="classifier",
                             evaluator_config={"pos_label": "no"})
    assert result.metrics["precision_score"] == pytest.approx(sk.precision_score(y, y_pred, pos_label="no"))
    assert result.metrics["true_positives"] == 2  # "no" predicted "no"
    with pytest.raises(InvalidParameterValue, match="'pos_label' maybe must exist in the labels"):
        mlflow.evaluate(lambda inp: y_pred, np.zeros((6, 1)), targets=y, model_type="classifier",
                        evaluator_config={"pos_label": "maybe"})


def test_model_type_none_computes_only_extra_metrics(tracking):
    def mean_prediction(predictions):
        return float(np.mean(predictions))

    result = mlflow.evaluate(lambda inp: inp["x"] * 2, pd.DataFrame({"x": [1.0, 2.0, 3.0]}),
                             extra_metrics=[mlflow.models.make_metric(eval_fn=mean_prediction,
                                                                      greater_is_better=True)])
    assert result.metrics == {"mean_prediction": pytest.approx(4.0)}


def test_result_saves_and_loads(tracking, binary, tmp_path):
    df, _ = binary
    result = mlflow.evaluate(_sigmoid_model, df, targets="label", model_type="classifier")
    result.save(str(tmp_path / "saved"))
    loaded = EvaluationResult.load(str(tmp_path / "saved"))
    assert loaded.metrics == pytest.approx(result.metrics)
    assert sorted(loaded.artifacts) == sorted(result.artifacts)
    assert loaded.artifacts["roc_curve_plot"].content.size == result.artifacts["roc_curve_plot"].content.size


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"data": None, "model_type": "classifier"}, "The data argument cannot be None."),
    ({"model_type": "classifier"}, "The targets argument must be specified for classifier models."),
    ({"targets": "label"}, "The extra_metrics argument must be specified model_type is None."),
    ({"targets": "label", "model_type": "text"}, "is not supported by mltrail"),
    ({"targets": "label", "model_type": "classifier", "env_manager": "conda"}, "env_manager='conda' is not supported"),
    ({"targets": "label", "model_type": "classifier", "env_manager": "pip"}, "Invalid value for `env_manager`: pip"),
    ({"targets": np.zeros(3), "model_type": "classifier"}, "`targets` argument must be the name of the column"),
    ({"targets": "label", "model_type": "classifier", "evaluators": "shap"}, "Unknown evaluators ['shap']"),
])
def test_bad_arguments_are_refused_in_mlflows_words(tracking, binary, kwargs, message):
    df, _ = binary
    args = {"model": lambda inp: inp["a"] > 0, "data": df, **kwargs}
    with pytest.raises(InvalidParameterValue) as e:
        mlflow.evaluate(**args)
    assert message in e.value.message
    assert mlflow.active_run() is None


def test_model_argument_and_static_predictions_are_checked(tracking, binary):
    df, _ = binary
    with pytest.raises(InvalidParameterValue, match="The model argument must be a string URI"):
        mlflow.evaluate(42, df, targets="label", model_type="classifier")
    with pytest.raises(InvalidParameterValue, match="Either a model or set of predictions must be specified"):
        mlflow.evaluate(data=df, targets="label", model_type="classifier")
    dataset = mlflow.data.from_pandas(df, targets="label")
    with pytest.raises(InvalidParameterValue, match="The top-level targets parameter should not be specified"):
        mlflow.evaluate(_sigmoid_model, dataset, targets="label", model_type="classifier")
    with pytest.raises(MltrailException, match="must contain at least two unique labels"):
        mlflow.evaluate(lambda inp: np.ones(len(inp)), df.assign(label=1), targets="label", model_type="classifier")
    with pytest.raises(InvalidParameterValue, match="returned 2 predictions for 80 rows"):
        mlflow.evaluate(lambda inp: [0, 1], df, targets="label", model_type="classifier")


def test_missing_extra_names_the_pip_command(tracking, binary, monkeypatch):
    df, _ = binary
    monkeypatch.setitem(sys.modules, "sklearn", None)  # what an environment without scikit-learn imports
    with pytest.raises(ImportError, match=r"needs scikit-learn, which is not installed: run pip install "
                                          r"'mltrail\[evaluate\]'"):
        mlflow.evaluate(_sigmoid_model, df, targets="label", model_type="classifier")


def test_names_are_exported_where_mlflow_has_them_and_load_lazily():
    from mltrail.models import evaluation

    assert mlflow.models.evaluate is evaluation.evaluate
    assert mlflow.models.EvaluationResult is EvaluationResult
    assert mlflow.models.EvaluationArtifact is evaluation.EvaluationArtifact
    assert mlflow.models.make_metric is evaluation.make_metric
    assert "evaluate" in mlflow.__all__ and "evaluate" in mlflow.models.__all__
    code = ("import sys, mltrail, mltrail.models; mltrail.models.EvaluationResult; "
            "print(sorted(m for m in ('sklearn', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
