"""`mltrail.keras`: the same functions as `mltrail.tensorflow` (MLflow's `mlflow.keras` alias).

Models logged through either module are identical (their pyfunc loader is `mltrail.tensorflow`).
"""

from __future__ import annotations

from typing import Any

from mltrail.tensorflow import (
    FLAVOR_NAME,
    get_default_conda_env,
    get_default_pip_requirements,
    load_model,
    log_model,
    save_model,
)
from mltrail.tensorflow.flavor import _load_pyfunc as _load_pyfunc

__all__ = [
    "FLAVOR_NAME", "MlflowCallback", "autolog", "get_default_conda_env", "get_default_pip_requirements",
    "load_model", "log_model", "save_model",
]


def __getattr__(name: str) -> Any:
    if name in ("autolog", "MlflowCallback", "MltrailCallback", "MlflowModelCheckpointCallback", "load_checkpoint",
                "AutologWarning"):
        import mltrail.tensorflow

        return getattr(mltrail.tensorflow, name)
    raise AttributeError(f"module 'mltrail.keras' has no attribute {name!r}")
