"""The pyfunc loader of custom Python models (MLflow's `mlflow.pyfunc.model` and `mlflow.pyfunc.loaders.code_model`).

`mltrail.pyfunc.load_model` calls `_load_pyfunc` here for either loader module: a model from
code runs its file (`model_code_path`, kept at the model's root); a pickled instance is read only
with the pickle opt-in (see `mltrail.pyfunc.pickled`). Then `load_context` gets the artifacts'
local paths and the model config.
"""

from __future__ import annotations

import os
from typing import Any

from mltrail.models.mlmodel import Model
from mltrail.models.pyfunc import FLAVOR_NAME
from mltrail.pyfunc.artifacts import artifact_paths
from mltrail.pyfunc.code_model import MODEL_CODE_PATH, load_model_code
from mltrail.pyfunc.model import FunctionPythonModel, PythonModelContext, PythonModelWrapper
from mltrail.pyfunc.pickled import add_code_to_sys_path, load_python_model

__all__ = ["load_python_model_from_dir"]


def load_python_model_from_dir(path: str, meta: Model | None = None, model_config: dict[str, Any] | None = None,
                               allow_pickle: bool = False) -> tuple[Any, PythonModelContext]:
    """The user's model object (with `load_context` already called) and its context, from a model directory."""
    from mltrail._paths import resolve_under

    meta = meta if meta is not None else Model.load(path)
    conf = meta.flavors.get(FLAVOR_NAME) or {}
    code_path = conf.get(MODEL_CODE_PATH)
    if code_path:  # a model from code: the user asked to run it by loading it
        add_code_to_sys_path(path, conf)
        python_model = load_model_code(resolve_under(path, os.path.basename(str(code_path))))
    else:
        python_model = load_python_model(path, conf, allow_pickle)
    if not callable(getattr(python_model, "predict", None)) and callable(python_model):
        python_model = FunctionPythonModel(python_model)
    context = PythonModelContext(artifact_paths(path, conf), model_config)
    load_context = getattr(python_model, "load_context", None)
    if callable(load_context):
        load_context(context)
    return python_model, context


def _load_pyfunc(path: str, meta: Model | None = None, model_config: dict[str, Any] | None = None,
                 allow_pickle: bool = False) -> PythonModelWrapper:
    """The pyfunc implementation of the custom model saved at `path`."""
    python_model, context = load_python_model_from_dir(path, meta, model_config, allow_pickle)
    return PythonModelWrapper(python_model, context)
