"""`mltrail.types`: the schema classes of model signatures (MLflow's `mlflow.types`).

The classes live in `mltrail.types.schema`, where MLflow code imports them from too.
"""

from __future__ import annotations

from mltrail.types.schema import ColSpec, DataType, ParamSchema, ParamSpec, Schema, TensorSpec, dtype_name

__all__ = ["ColSpec", "DataType", "ParamSchema", "ParamSpec", "Schema", "TensorSpec", "dtype_name"]
