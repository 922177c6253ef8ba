"""MLflow's `mlflow.models.model` module: `Model`, `ModelInfo`, `get_model_info` and `MLMODEL_FILE_NAME`."""

from __future__ import annotations

from mltrail.models.mlmodel import MLMODEL_FILE_NAME, Model, ModelInfo, get_model_info

__all__ = ["MLMODEL_FILE_NAME", "Model", "ModelInfo", "get_model_info"]
