"""The `model` argument of `evaluate`: a model URI, a PyFuncModel or a function, resolved to a predict call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mltrail.errors import InvalidParameterValue
from mltrail.models.pyfunc import PyFuncModel, load_model
from mltrail.uri_forms import is_models_uri

ENV_MANAGERS = ("local", "conda", "virtualenv", "uv")


@dataclass
class ResolvedModel:
    """How to predict (None for a static dataset), and the logged model's id when the model has one."""

    predict: Callable[[Any], Any] | None
    model_id: str | None


def resolve_model(model: Any, env_manager: str, model_config: dict[str, Any] | None) -> ResolvedModel:
    """Load a URI, unwrap a PyFuncModel, accept a callable; refuse anything else in MLflow's words."""
    if env_manager not in ENV_MANAGERS:
        raise InvalidParameterValue(
            f"Invalid value for `env_manager`: {env_manager}. Must be one of {list(ENV_MANAGERS)}")
    if env_manager != "local":
        raise InvalidParameterValue(
            f"env_manager={env_manager!r} is not supported: mltrail evaluates a model in the current Python "
            "environment only (env_manager='local').")
    if model is None:
        return ResolvedModel(None, None)
    if isinstance(model, str):
        loaded = load_model(model, model_config=model_config)
        # MLflow ties the evaluation to a logged model only when it is named by a models:/ URI.
        return ResolvedModel(loaded.predict, loaded.model_id if is_models_uri(model) else None)
    if isinstance(model, PyFuncModel):
        if model_config:
            raise InvalidParameterValue(
                "Indicating ``model_config`` when passing a `PyFuncModel`` object as model argument is not "
                "allowed. If you need to change the model configuration for the evaluation model, use "
                "``mltrail.pyfunc.load_model(model_uri, model_config=<value>)`` and indicate the desired "
                "configuration there.")
        return ResolvedModel(model.predict, model.model_id)
    if callable(model):
        return ResolvedModel(model, None)
    raise InvalidParameterValue(
        "The model argument must be a string URI referring to an MLflow model, an MLflow Deployments endpoint "
        "URI, an instance of `mlflow.pyfunc.PyFuncModel`, a function, or None. Received: "
        f"{type(model).__name__}.")
