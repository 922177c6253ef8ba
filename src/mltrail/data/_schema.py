"""Dataset schemas in MLflow's JSON form, built directly (no dependency on `mltrail.types`).

Tensor datasets: `{"mlflow_tensorspec": {"features": "<json list>", "targets": "<json list>" | null}}`,
each list holding `{"type": "tensor", "tensor-spec": {"dtype": ..., "shape": [...]}}` (with a
"name" when the data is a dict). Tables: `{"mlflow_colspec": [{"type": ..., "name": ..., "required": ...}]}`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from mltrail.errors import InvalidParameterValue


def dtype_name(dtype: Any) -> str:
    """MLflow's tensor-spec dtype string for a numpy dtype ('float64', 'int32', 'str', 'bytes', 'object')."""
    dt = np.dtype(dtype)
    # Fixed-width strings carry their width in the name ('<U5'); a schema names the kind only.
    if dt.kind == "U":
        return "str"
    if dt.kind == "S":
        return "bytes"
    return dt.name


def tensor_spec(dtype: Any, shape: Sequence[int | None], name: str | None = None) -> dict[str, Any]:
    """One tensor-spec entry; unknown dimensions (None) become -1."""
    spec: dict[str, Any] = {"type": "tensor",
                            "tensor-spec": {"dtype": dtype_name(dtype),
                                            "shape": [-1 if d is None else int(d) for d in shape]}}
    return {"name": name, **spec} if name is not None else spec


def _batch_shape(array: np.ndarray) -> list[int | None]:
    """The array's shape with its first (row) dimension made variable, as MLflow infers it."""
    shape: list[int | None] = list(array.shape)
    if shape:
        shape[0] = None
    return shape


def infer_tensor_specs(data: Any) -> list[dict[str, Any]]:
    """Tensor specs of an ndarray (one unnamed spec) or a dict of ndarrays (one named spec each)."""
    if isinstance(data, dict):
        return [tensor_spec(np.asarray(v).dtype, _batch_shape(np.asarray(v)), name=str(k)) for k, v in data.items()]
    array = np.asarray(data)
    return [tensor_spec(array.dtype, _batch_shape(array))]


def tensor_dataset_schema(features: list[dict[str, Any]],
                          targets: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """MLflow's TensorDatasetSchema dict: each side a JSON string of its spec list."""
    return {"mlflow_tensorspec": {"features": json.dumps(features),
                                  "targets": json.dumps(targets) if targets is not None else None}}


def _numpy_col_type(dtype: np.dtype) -> str:
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return "boolean"
    if kind == "i":
        return "integer" if size <= 4 else "long"
    if kind == "u":
        # An unsigned value needs the next wider signed type.
        if size < 4:
            return "integer"
        if size < 8:
            return "long"
        return "double"
    if kind == "f":
        return "float" if size <= 4 else "double"
    if kind == "U":
        return "string"
    if kind == "S":
        return "binary"
    if kind == "M":
        return "datetime"
    raise InvalidParameterValue(f"Unsupported column dtype {dtype!r}: expected a number, bool, string, bytes "
                                "or datetime.")


_INFERRED_OBJECT_TYPES = {"string": "string", "bytes": "binary", "boolean": "boolean", "integer": "long",
                          "floating": "double", "mixed-integer-float": "double", "datetime64": "datetime",
                          "datetime": "datetime"}


def column_type(col: Any) -> str:
    """MLflow's ColSpec type name for a pandas Series."""
    import pandas as pd

    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return column_type(pd.Series(dtype.categories))
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "datetime"
    numpy_dtype = getattr(dtype, "numpy_dtype", None)  # nullable extension types (Int64, boolean, Float32)
    if numpy_dtype is not None and not isinstance(dtype, np.dtype):
        return _numpy_col_type(np.dtype(numpy_dtype))
    if dtype.kind == "O":
        inferred = pd.api.types.infer_dtype(col, skipna=True)
        if inferred in _INFERRED_OBJECT_TYPES:
            return _INFERRED_OBJECT_TYPES[inferred]
        raise InvalidParameterValue(f"Cannot infer a column type for {col.name!r}: its values are {inferred!r}; "
                                    "expected strings, bytes, numbers, bools or datetimes.")
    return _numpy_col_type(np.dtype(dtype))


def infer_colspec_schema(df: Any) -> dict[str, Any]:
    """MLflow's ColSpec schema of a DataFrame: a column is required when it holds no missing value."""
    cols = [{"type": column_type(df[name]), "name": str(name), "required": not bool(df[name].isna().any())}
            for name in df.columns]
    return {"mlflow_colspec": cols}
