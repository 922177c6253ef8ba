"""`mltrail.tensorflow`: save, log and load TensorFlow/Keras models (MLflow's `mlflow.tensorflow`).

`save_model`, `log_model` and `load_model` handle the 'keras' (default), 'h5' and 'tf'
(SavedModel) formats; see `mltrail.tensorflow.flavor`. MLflow 3's `keras` flavor is
`mltrail.keras`. `autolog` and `MlflowCallback` load on first use. Importing this module does
not import TensorFlow.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from mltrail.tensorflow.flavor import (
    FLAVOR_NAME,
    get_default_conda_env,
    get_default_pip_requirements,
    get_global_custom_objects,
    load_model,
    log_model,
    save_model,
)
from mltrail.tensorflow.flavor import _load_pyfunc as _load_pyfunc  # the loader mltrail.pyfunc calls

__all__ = [
    "FLAVOR_NAME", "MlflowCallback", "autolog", "get_default_conda_env", "get_default_pip_requirements",
    "get_global_custom_objects", "load_model", "log_model", "save_model",
]

# name -> submodule that defines it (the autologging work; imported only when used)
_LAZY = {"MlflowCallback": "callback", "MltrailCallback": "callback", "MlflowModelCheckpointCallback": "callback",
         "load_checkpoint": "callback", "AutologWarning": "callback", "MLflowCallback": "callback"}
# MLflow's older spellings -> the name the submodule defines
_ALIASES = {"MLflowCallback": "MlflowCallback"}


def autolog(*args: Any, **kwargs: Any) -> Any:
    """Log every Keras `fit` automatically; the arguments are those of `mltrail.tensorflow.autolog.autolog`."""
    return importlib.import_module("mltrail.tensorflow.autolog").autolog(*args, **kwargs)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'mltrail.tensorflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mltrail.tensorflow.{module_name}"), _ALIASES.get(name, name))
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """Keeps `mltrail.tensorflow.autolog` the function when the submodule of that name is imported.

    Importing `mltrail.tensorflow.autolog` makes Python set the package attribute `autolog` to the
    submodule, which would break `mltrail.tensorflow.autolog()` (MLflow's API) for the whole process.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "autolog" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
