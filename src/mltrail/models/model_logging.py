"""The flavor-independent part of a flavor's `log_model`: what `Model.log` does, given the flavor's `save_model`.

The logic lives with `Model` (`mltrail.models.mlmodel.log_with_saver`), because `Model.log` is
MLflow's public entry to it; flavors call `log_model` here with their own `save_model`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mltrail.models.mlmodel import ModelInfo, log_with_saver, resolve_name

__all__ = ["log_model", "resolve_name"]


def log_model(save: Callable[..., None], *, name: str | None, **kwargs: Any) -> ModelInfo:
    """Save a model with `save(path=..., mlflow_model=..., **save_kwargs)` into a new LoggedModel.

    Keywords are `log_with_saver`'s: `artifact_path`, `registered_model_name`, `await_registration_for`,
    `metadata`, `params`, `tags`, `model_type`, `step`, `model_id`, `run_id`, then the flavor's own.
    """
    return log_with_saver(save, name=name, **kwargs)
