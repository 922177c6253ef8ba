"""`mltrail.tensorflow`: save, log and load TensorFlow/Keras models (MLflow's `mlflow.tensorflow`).

`save_model`, `log_model` and `load_model` handle the 'keras' (default), 'h5' and 'tf'
(SavedModel) formats; see `mltrail.tensorflow.flavor`. `autolog` and `MlflowCallback` load on
first use. Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

from mltrail.tensorflow.flavor import (
    FLAVOR_NAME,
    get_default_conda_env,
    get_default_pip_requirements,
    load_model,
    log_model,
    save_model,
)
from mltrail.tensorflow.flavor import _load_pyfunc as _load_pyfunc  # the loader mltrail.pyfunc calls

__all__ = [
    "FLAVOR_NAME", "MlflowCallback", "autolog", "get_default_conda_env", "get_default_pip_requirements",
    "load_model", "log_model", "save_model",
]

# name -> submodule that defines it (written by the autologging work; imported only when used)
_LAZY = {"autolog": "autolog", "MlflowCallback": "callback", "MltrailCallback": "callback"}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'mltrail.tensorflow' has no attribute {name!r}")
    module = importlib.import_module(f"mltrail.tensorflow.{module_name}")
    value = getattr(module, name)
    globals()[name] = value
    return value
