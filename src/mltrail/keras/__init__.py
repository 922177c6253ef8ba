"""`mltrail.keras`: the same functions as `mltrail.tensorflow` (MLflow's `mlflow.keras` alias).

Models logged through either module are identical (their pyfunc loader is `mltrail.tensorflow`).
Every name here is `mltrail.tensorflow`'s own object, looked up there on first use, so the names
are listed once (in `mltrail.tensorflow`) and autolog and the callbacks load TensorFlow only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mltrail.tensorflow as _tensorflow

if TYPE_CHECKING:  # what type checkers see; at run time `__getattr__` below hands the names out
    from mltrail.tensorflow import *  # noqa: F403

__all__ = list(_tensorflow.__all__)
# besides __all__: MLflow's other callback names, and the loader protocol's function
_ALSO = ("MltrailCallback", "MlflowModelCheckpointCallback", "load_checkpoint", "AutologWarning", "_load_pyfunc")


def __getattr__(name: str) -> Any:
    if name in __all__ or name in _ALSO:
        value = getattr(_tensorflow, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mltrail.keras' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
