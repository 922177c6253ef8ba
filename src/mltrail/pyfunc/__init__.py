"""`mltrail.pyfunc`: load any logged model as a generic `PyFuncModel` (MLflow's `mlflow.pyfunc`)."""

from __future__ import annotations

from mltrail.models.pyfunc import FLAVOR_NAME, PyFuncModel, load_model

__all__ = ["FLAVOR_NAME", "PyFuncModel", "load_model"]
