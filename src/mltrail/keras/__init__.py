"""`mltrail.keras`: MLflow 3's `keras` flavor for Keras 3 models (MLflow's `mlflow.keras`).

`save_model`, `log_model` and `load_model` write and read the `keras` flavor as MLflow 3 lays it
out (see `mltrail.keras.save`); `load_model` and `mltrail.pyfunc` also read models saved with the
`tensorflow` flavor. `autolog` and the callbacks are the Keras autologging shared with
`mltrail.tensorflow`, loaded on first use: importing this module does not import TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mltrail.keras.load import _load_pyfunc as _load_pyfunc  # the loader mltrail.pyfunc calls
from mltrail.keras.load import load_model
from mltrail.keras.save import (
    FLAVOR_NAME,
    get_default_conda_env,
    get_default_pip_requirements,
    log_model,
    save_model,
)

if TYPE_CHECKING:  # what type checkers see; at run time `__getattr__` below hands these out
    from mltrail.tensorflow import AutologWarning as AutologWarning
    from mltrail.tensorflow import MlflowModelCheckpointCallback as MlflowModelCheckpointCallback
    from mltrail.tensorflow import MltrailCallback as MltrailCallback
    from mltrail.tensorflow import load_checkpoint as load_checkpoint
    from mltrail.tensorflow.callback import KerasMlflowCallback as MlflowCallback

    MLflowCallback = MlflowCallback

__all__ = [
    "FLAVOR_NAME", "MLflowCallback", "MlflowCallback", "autolog", "get_default_conda_env",
    "get_default_pip_requirements", "load_model", "log_model", "save_model",
]

# name -> (module, name) of the shared Keras autologging. MLflow's keras flavor has its own callback
# (`optimizer_*` params, metrics linked to a logged model); `MLflowCallback` is MLflow's older spelling.
_SHARED = {"MlflowCallback": ("mltrail.tensorflow.callback", "KerasMlflowCallback"),
           "MLflowCallback": ("mltrail.tensorflow.callback", "KerasMlflowCallback"),
           "MltrailCallback": ("mltrail.tensorflow", "MltrailCallback"),
           "MlflowModelCheckpointCallback": ("mltrail.tensorflow", "MlflowModelCheckpointCallback"),
           "load_checkpoint": ("mltrail.tensorflow", "load_checkpoint"),
           "AutologWarning": ("mltrail.tensorflow", "AutologWarning")}


def autolog(*args: Any, **kwargs: Any) -> Any:
    """`mlflow.keras.autolog`: log every Keras `fit`, as MLflow's keras flavor does (the arguments of
    `mltrail.tensorflow.autolog.keras_autolog`: `optimizer_*` params, the `keras` flavor's model)."""
    return importlib.import_module("mltrail.tensorflow.autolog").keras_autolog(*args, **kwargs)


def __getattr__(name: str) -> Any:
    source = _SHARED.get(name)
    if source is None:
        raise AttributeError(f"module 'mltrail.keras' has no attribute {name!r}")
    module_name, attribute = source
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SHARED})
