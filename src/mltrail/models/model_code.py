"""`set_model`: what a models-from-code file calls to name the model it defines (MLflow's `mlflow.models.set_model`).

The file is run by `pyfunc.save_model(python_model="model.py")` and again by `pyfunc.load_model`;
each run ends with `set_model(obj)`, and the caller takes the object back with `take_model()`.
"""

from __future__ import annotations

import threading
from typing import Any

from mltrail.errors import InvalidParameterValue

__all__ = ["set_model", "take_model"]

_lock = threading.Lock()
_model: list[Any] = []  # what the last set_model call named (empty: none since the last take_model)


def set_model(model: Any) -> None:
    """Name the model a models-from-code file defines: a `PythonModel` (anything with `predict`) or a callable.

    Raises:
        InvalidParameterValue: `model` is a string (a path), or neither has a `predict` method nor is callable.
    """
    if isinstance(model, str) or not (callable(getattr(model, "predict", None)) or callable(model)):
        raise InvalidParameterValue(
            "Model should either be an instance of PythonModel (an object with a predict method) or a callable "
            f"taking the model input; received {type(model).__name__} {model!r:.80}. (mltrail has no LangChain "
            "or LlamaIndex flavor.)")
    with _lock:
        _model[:] = [model]


def take_model() -> Any:
    """The model the last `set_model` call named, cleared so that the next file starts afresh; None if none."""
    with _lock:
        return _model.pop() if _model else None
