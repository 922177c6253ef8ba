"""`evaluate`: MLflow's classic model evaluation (classifier, regressor) logged to the active run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from mltrail.data import Dataset
from mltrail.errors import InvalidParameterValue
from mltrail.models.evaluation._deps import require_evaluate_extra
from mltrail.models.evaluation.eval_data import evaluation_data, to_mltrail_dataset
from mltrail.models.evaluation.model_input import resolve_model
from mltrail.models.evaluation.result import EvaluationResult

_logger = logging.getLogger(__name__)

MODEL_TYPES = ("classifier", "regressor")
# MLflow's other model types need its GenAI and text metrics, which mltrail does not have.
UNSUPPORTED_MODEL_TYPES = ("question-answering", "text-summarization", "text", "retriever", "databricks-agent")
EVALUATOR_NAMES = ("default", "classifier", "regressor")


def _check_arguments(data: Any, model: Any, model_type: str | None, targets: Any, predictions: str | None,
                     extra_metrics: Sequence[Any] | None, inference_params: dict[str, Any] | None) -> None:
    if inference_params is not None:
        raise InvalidParameterValue(
            "The inference_params argument can only be specified when the model is an MLflow Deployments endpoint "
            "URI like `endpoints:/my-chat`; mltrail has no deployment endpoints.")
    if data is None:
        raise InvalidParameterValue("The data argument cannot be None.")
    if model_type in UNSUPPORTED_MODEL_TYPES:
        raise InvalidParameterValue(
            f"model_type={model_type!r} is not supported by mltrail: expected one of {list(MODEL_TYPES)} (or None "
            "with extra_metrics).")
    if model_type is not None and model_type not in MODEL_TYPES:
        raise InvalidParameterValue(
            f"Invalid model_type {model_type!r}: expected one of {list(MODEL_TYPES)} or None.")
    if isinstance(data, Dataset):
        if targets is not None:
            raise InvalidParameterValue(
                "The top-level targets parameter should not be specified since a Dataset is used. Please only "
                "specify the targets column name in the Dataset. For example: "
                "`data = mltrail.data.from_pandas(df=X.assign(y=y), targets='y')`. Meanwhile, please specify "
                "`mltrail.evaluate(..., targets=None, ...)`.")
        if model is None and predictions is not None:
            raise InvalidParameterValue(
                "The top-level predictions parameter should not be specified since a Dataset is used. Please only "
                "specify the predictions column name in the Dataset. For example: "
                "`data = mltrail.data.from_pandas(df=X.assign(y=y), predictions='y')`. Meanwhile, please specify "
                "`mltrail.evaluate(..., predictions=None, ...)`.")
        if model is not None and getattr(data, "predictions", None) is not None:
            raise InvalidParameterValue(
                "The predictions parameter should not be specified in the Dataset since a model is specified. "
                "Please remove the predictions column from the Dataset.")
    if model_type in MODEL_TYPES:
        has_targets = getattr(data, "targets", None) is not None if isinstance(data, Dataset) else targets is not None
        if not has_targets:
            if isinstance(data, Dataset):
                raise InvalidParameterValue(
                    f"The targets column name must be specified in the provided Dataset for {model_type} models. For "
                    "example: `data = mltrail.data.from_pandas(df=X.assign(y=y), targets='y')`")
            raise InvalidParameterValue(f"The targets argument must be specified for {model_type} models.")
    elif not extra_metrics:
        raise InvalidParameterValue("The extra_metrics argument must be specified model_type is None.")
    import pandas as pd

    if isinstance(data, pd.DataFrame) and targets is not None and not isinstance(targets, str):
        raise InvalidParameterValue(
            "If data is a Pandas DataFrame or Spark DataFrame, `targets` argument must be the name of the column "
            f"which contains evaluation labels in the `data` dataframe. Received: {type(targets).__name__}.")


def _evaluator_config(evaluators: str | list[str] | None, config: dict[str, Any] | None,
                      model_type: str | None) -> dict[str, Any]:
    """The flat config of the built-in evaluator that runs (MLflow accepts it nested by evaluator name too)."""
    names = [evaluators] if isinstance(evaluators, str) else list(evaluators or [])
    unknown = [n for n in names if n not in EVALUATOR_NAMES]
    if unknown:
        raise InvalidParameterValue(
            f"Unknown evaluators {unknown}: mltrail has the built-in evaluators {list(EVALUATOR_NAMES)}.")
    config = dict(config or {})
    for name in (model_type, "default"):
        if name is not None and isinstance(config.get(name), dict):
            return dict(config[name])
    return config


def evaluate(model: str | Callable[..., Any] | Any = None, data: Any = None, *, model_type: str | None = None,
             targets: Any = None, predictions: str | None = None, dataset_path: str | None = None,
             feature_names: list[str] | None = None, evaluators: str | list[str] | None = None,
             evaluator_config: dict[str, Any] | None = None, extra_metrics: Sequence[Any] | None = None,
             custom_artifacts: Sequence[Callable[..., Any]] | None = None, env_manager: str = "local",
             model_config: dict[str, Any] | None = None, inference_params: dict[str, Any] | None = None,
             model_id: str | None = None, _called_from_genai_evaluate: bool = False) -> EvaluationResult:
    """Evaluate a model (or a static dataset of predictions) and log metrics and plots to the active run.

    Starts a run when none is active, and ends it afterwards, as MLflow does.

    Args:
        model: a model URI, a `PyFuncModel`, a function taking a DataFrame, or None with `predictions=`.
        data: a numpy array or list (with `targets=` an array), a pandas DataFrame (with `targets=` a
            column name), or a `mltrail.data` PandasDataset/NumpyDataset that names its targets.
        model_type: "classifier" or "regressor"; None computes only `extra_metrics`.
        predictions: the model-output column to score, or the data's column of predictions (model=None).
        evaluator_config: MLflow's options: label_list, pos_label, average, sample_weights, metric_prefix,
            col_mapping, max_classes_for_multiclass_roc_pr, calibration_*.
        extra_metrics: `make_metric(...)` metrics computed after the built-in ones.
        custom_artifacts: functions `(eval_df, builtin_metrics, artifacts_dir) -> {name: artifact}`.
        model_id: the logged model the metrics belong to (by default the one a models:/ URI names).
        dataset_path, env_manager ("local" only), _called_from_genai_evaluate: accepted as MLflow does;
            the dataset's own source records where the data came from.

    Returns:
        EvaluationResult with `.metrics` and `.artifacts`.
    """
    config = _evaluator_config(evaluators, evaluator_config, model_type)
    mapping = config.get("col_mapping", {}) or {}
    if isinstance(targets, str):
        targets = mapping.get(targets, targets)
    if isinstance(predictions, str):
        predictions = mapping.get(predictions, predictions)
    _check_arguments(data, model, model_type, targets, predictions, extra_metrics, inference_params)
    require_evaluate_extra()
    resolved = resolve_model(model, env_manager, model_config)
    if model_id is not None and resolved.model_id is not None and model_id != resolved.model_id:
        raise InvalidParameterValue(
            f"The specified value of the 'model_id' parameter '{model_id}' contradicts the model_id "
            f"'{resolved.model_id}' associated with the model. Please ensure they match or omit the 'model_id' "
            "parameter.")
    model_id = model_id or resolved.model_id
    dataset = to_mltrail_dataset(data, targets, predictions if resolved.predict is None else None)
    eval_data = evaluation_data(dataset, feature_names)
    if resolved.predict is None and eval_data.predictions is None:
        raise InvalidParameterValue(
            "Either a model or set of predictions must be specified in order to use the default evaluator. Either "
            "specify the `model` parameter, the `predictions` parameter, an MLflow dataset containing the "
            "`predictions` column name (via the `data` parameter), or a different evaluator (via the `evaluators` "
            "parameter).")
    from mltrail import fluent
    from mltrail.models.evaluation.evaluators import run_evaluator

    def run_in(run: Any) -> EvaluationResult:
        prefix = config.get("metric_prefix")
        # MLflow tags the evaluation dataset's context with the metric prefix, and leaves it untagged otherwise.
        fluent.log_input(dataset, context=prefix if isinstance(prefix, str) and prefix else None)
        return run_evaluator({
            "run_id": run.info.run_id, "model_type": model_type or "default", "data": eval_data,
            "predict": resolved.predict, "predictions": predictions if resolved.predict is not None else None,
            "config": config, "model_id": model_id, "extra_metrics": list(extra_metrics or []),
            "custom_artifacts": custom_artifacts,
        })

    active = fluent.active_run()
    if active is not None:
        return run_in(active)
    with fluent.start_run() as run:  # ended (FAILED on an error) when evaluation returns, as in MLflow
        return run_in(run)
