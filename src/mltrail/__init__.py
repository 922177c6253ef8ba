"""mltrail: experiment tracking, model registry and model serving for TensorFlow/Keras.

A drop-in for MLflow: `import mltrail as mlflow` runs MLflow code unchanged. Importing it is
light (no TensorFlow, pandas, SQLAlchemy or web framework): heavy modules load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

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
    delete_run,
    delete_tag,
    end_run,
    flush,
    get_artifact_uri,
    get_experiment,
    get_experiment_by_name,
    get_logged_model,
    get_parent_run,
    get_run,
    last_active_run,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_image,
    log_input,
    log_inputs,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
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
from mltrail.tracking_uri import get_tracking_uri, is_tracking_uri_set
from mltrail.version import __version__

# Submodules loaded on first attribute access (`mltrail.tensorflow`, `mltrail.pyfunc`, ...).
_LAZY_SUBMODULES = {
    "tensorflow", "keras", "pyfunc", "models", "data", "artifacts", "entities", "types", "errors", "client",
    "tracking", "exceptions",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        target = {"exceptions": "errors", "tracking": "client"}.get(name, name)
        module = importlib.import_module(f"mltrail.{target}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'mltrail' has no attribute {name!r}")


def autolog(**kwargs: Any) -> None:
    """Enable autologging for every installed integration (today: TensorFlow/Keras)."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is not None or importlib.util.find_spec("keras") is not None:
        from mltrail.tensorflow import autolog as tf_autolog

        tf_autolog(**kwargs)


__all__ = [
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
]
