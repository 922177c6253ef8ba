"""mltrail: experiment tracking, model registry and model serving for TensorFlow/Keras.

A drop-in for MLflow: `import mltrail as mlflow` runs MLflow code unchanged. Importing it is
light (no TensorFlow, pandas, SQLAlchemy or web framework): heavy modules load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mltrail._model_fluent import (
    ActiveModel,
    clear_active_model,
    create_external_model,
    delete_logged_model_tag,
    finalize_logged_model,
    get_active_model_id,
    initialize_logged_model,
    last_logged_model,
    log_model_params,
    set_active_model,
    set_logged_model_tags,
)
from mltrail._registry_fluent import (
    get_registry_uri,
    register_model,
    search_model_versions,
    search_registered_models,
    set_model_version_tag,
    set_registry_uri,
)
from mltrail.client import Client, MlflowClient
from mltrail.errors import MlflowException, MltrailException
from mltrail.fluent import (
    ActiveRun,
    active_run,
    create_experiment,
    delete_experiment,
    delete_experiment_tag,
    delete_run,
    delete_tag,
    end_run,
    flush,
    flush_artifact_async_logging,
    flush_async_logging,
    get_artifact_uri,
    get_experiment,
    get_experiment_by_name,
    get_logged_model,
    get_parent_run,
    get_run,
    last_active_run,
    load_table,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_image,
    log_input,
    log_inputs,
    log_metric,
    log_metrics,
    log_outputs,
    log_param,
    log_params,
    log_stream,
    log_table,
    log_text,
    restore_experiment,
    restore_run,
    search_experiments,
    search_logged_models,
    search_runs,
    set_experiment,
    set_experiment_tag,
    set_experiment_tags,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)
from mltrail.system_metrics import (
    disable_system_metrics_logging,
    enable_system_metrics_logging,
    set_system_metrics_node_id,
    set_system_metrics_samples_before_logging,
    set_system_metrics_sampling_interval,
)
from mltrail.tracking_uri import get_tracking_uri, is_tracking_uri_set
from mltrail.version import __version__

if TYPE_CHECKING:
    from mltrail._images import Image

# Submodules loaded on first attribute access (`mltrail.tensorflow`, `mltrail.pyfunc`, ...).
_LAZY_SUBMODULES = {
    "tensorflow", "keras", "pyfunc", "models", "data", "artifacts", "entities", "types", "errors", "client",
    "tracking", "exceptions", "config", "environment_variables",
}


# Names defined in modules loaded on first use
_LAZY_NAMES = {"Image": "mltrail._images"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
        globals()[name] = value
        return value
    if name in _LAZY_SUBMODULES:
        module = importlib.import_module(f"mltrail.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'mltrail' has no attribute {name!r}")


def autolog(log_input_examples: bool = False, log_model_signatures: bool = True, log_models: bool = True,
            log_datasets: bool = True, log_traces: bool = True, disable: bool = False, exclusive: bool = False,
            disable_for_unsupported_versions: bool = False, silent: bool = False,
            extra_tags: dict[str, str] | None = None, exclude_flavors: list[str] | None = None) -> None:
    """Enable (or disable) autologging for every installed integration (today: Keras, for both the
    `tensorflow` and `keras` flavors), with MLflow's arguments; see `mltrail.tensorflow.autolog`."""
    settings = dict(locals())  # the arguments, as MLflow's autolog hands them on
    from mltrail.tensorflow.autolog import autolog_integrations

    autolog_integrations(settings)


def evaluate(*args: Any, **kwargs: Any) -> Any:
    """MLflow's `mlflow.evaluate`: see `mltrail.models.evaluation.evaluate` (loaded on first call)."""
    from mltrail.models.evaluation import evaluate as evaluate_model

    return evaluate_model(*args, **kwargs)


def validate_evaluation_results(validation_thresholds: dict[str, Any], candidate_result: Any,
                                baseline_result: Any = None) -> None:
    """MLflow's `mlflow.validate_evaluation_results`: see `mltrail.models.evaluation.validation` (loaded on first
    call)."""
    from mltrail.models.evaluation.validation import validate_evaluation_results as validate

    validate(validation_thresholds, candidate_result, baseline_result)


def doctor(mask_envs: bool = False) -> None:
    """Print what a bug report needs (versions, URIs, environment, store reachability), as `mltrail doctor`."""
    from mltrail._doctor import doctor as print_report  # loaded on first call: it brings click

    print_report(mask_envs)


__all__ = [
    "evaluate", "validate_evaluation_results",  # model evaluation
    "doctor",
    "ActiveRun", "Client", "MlflowClient", "MlflowException", "MltrailException", "__version__", "active_run",
    "autolog", "create_experiment", "delete_experiment", "delete_run", "delete_tag", "end_run", "flush",
    "get_artifact_uri", "get_experiment", "get_experiment_by_name", "get_logged_model", "get_parent_run",
    "get_run", "get_tracking_uri", "is_tracking_uri_set", "last_active_run", "log_artifact", "log_artifacts",
    "log_dict", "log_figure", "log_image", "log_input", "log_inputs", "log_metric", "log_metrics", "log_param",
    "log_params", "log_text", "search_experiments", "search_logged_models", "search_runs", "set_experiment",
    "set_experiment_tag", "set_experiment_tags", "set_tag", "set_tags", "set_tracking_uri", "start_run",
    # model registry
    "get_registry_uri", "register_model", "search_model_versions", "search_registered_models",
    "set_model_version_tag", "set_registry_uri",
    # the rest of MLflow's fluent surface
    "ActiveModel", "clear_active_model", "create_external_model", "delete_experiment_tag", "delete_logged_model_tag",
    "finalize_logged_model", "flush_artifact_async_logging", "flush_async_logging", "get_active_model_id",
    "initialize_logged_model", "last_logged_model", "log_model_params", "log_outputs", "log_stream",
    "restore_experiment", "restore_run", "set_active_model", "set_logged_model_tags",
    # artifacts and tables
    "Image", "load_table", "log_table",
    # system metrics
    "disable_system_metrics_logging", "enable_system_metrics_logging", "set_system_metrics_node_id",
    "set_system_metrics_samples_before_logging", "set_system_metrics_sampling_interval",
]
