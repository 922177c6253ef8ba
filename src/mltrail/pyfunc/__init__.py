"""`mltrail.pyfunc`: load any logged model as a generic `PyFuncModel`, and custom Python models (MLflow's `mlflow.pyfunc`).

Custom models: subclass `PythonModel` (or write a model file calling `mltrail.models.set_model`)
and save it with `save_model` / `log_model`; `load_model` gives it back as a `PyFuncModel`.
"""

from __future__ import annotations

from mltrail.models.pyfunc import FLAVOR_NAME, MAIN, PyFuncModel, load_model
from mltrail.pyfunc.dependencies import get_model_dependencies
from mltrail.pyfunc.model import PythonModel, PythonModelContext
from mltrail.pyfunc.save import (
    CODE,
    DATA,
    ENV,
    PY_VERSION,
    TASK,
    EnvType,
    add_to_model,
    get_default_conda_env,
    get_default_pip_requirements,
    log_model,
    save_model,
)
from mltrail.pyfunc.spark import spark_udf


def load_pyfunc(model_uri: str, suppress_warnings: bool = False) -> PyFuncModel:
    """Deprecated name of `load_model` (kept, as in MLflow, for old code)."""
    import warnings

    warnings.warn("mltrail.pyfunc.load_pyfunc is deprecated; use mltrail.pyfunc.load_model.", FutureWarning,
                  stacklevel=2)
    return load_model(model_uri, suppress_warnings=suppress_warnings)


__all__ = ["CODE", "DATA", "ENV", "FLAVOR_NAME", "MAIN", "PY_VERSION", "TASK", "EnvType", "PyFuncModel", "PythonModel",
           "PythonModelContext", "add_to_model", "get_default_conda_env", "get_default_pip_requirements",
           "get_model_dependencies", "load_model", "load_pyfunc", "log_model", "save_model", "spark_udf"]
