"""Model signatures: what a model takes and returns, and inferring them from example data.

`ModelSignature` is written into the MLmodel file as MLflow does: `inputs`, `outputs` and `params`
each a JSON string (or null). `infer_signature` builds one from numpy arrays, dicts of arrays,
pandas DataFrames/Series, lists, scalars and TensorFlow tensors.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from mltrail.errors import InvalidParameterValue
from mltrail.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema, TensorSpec

__all__ = ["ModelSignature", "infer_signature"]


class ModelSignature:
    """The input schema, the output schema and the inference parameters of a model."""

    def __init__(self, inputs: Schema | None = None, outputs: Schema | None = None,
                 params: ParamSchema | None = None) -> None:
        for what, value, cls in (("inputs", inputs, Schema), ("outputs", outputs, Schema),
                                 ("params", params, ParamSchema)):
            if value is not None and not isinstance(value, cls):
                raise InvalidParameterValue(
                    f"ModelSignature {what} must be a {cls.__name__} or None; received {type(value).__name__}.")
        if inputs is None and outputs is None and params is None:
            raise InvalidParameterValue("A ModelSignature needs at least one of inputs, outputs or params.")
        self.inputs = inputs
        self.outputs = outputs
        self.params = params

    def to_dict(self) -> dict[str, str | None]:
        """MLflow's MLmodel encoding: each part a JSON string, or None when absent."""
        return {
            "inputs": self.inputs.to_json() if self.inputs is not None else None,
            "outputs": self.outputs.to_json() if self.outputs is not None else None,
            "params": self.params.to_json() if self.params is not None else None,
        }

    @classmethod
    def from_dict(cls, signature_dict: dict[str, Any]) -> ModelSignature:
        """Read MLflow's encoding (JSON strings, or already-decoded lists)."""
        if not isinstance(signature_dict, dict):
            raise InvalidParameterValue(
                f"Invalid signature {signature_dict!r}: expected a dict with 'inputs', 'outputs' and 'params'.")
        inputs = signature_dict.get("inputs")
        outputs = signature_dict.get("outputs")
        params = signature_dict.get("params")
        return cls(Schema.from_json(inputs) if inputs else None,
                   Schema.from_json(outputs) if outputs else None,
                   ParamSchema.from_json(params) if params else None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelSignature) and (self.inputs, self.outputs, self.params) == (
            other.inputs, other.outputs, other.params)

    def __hash__(self) -> int:
        return hash((self.inputs, self.outputs, self.params))

    def __repr__(self) -> str:
        return f"inputs:\n  {self.inputs!r}\noutputs:\n  {self.outputs!r}\nparams:\n  {self.params!r}\n"


def _is_tensor_like(x: Any) -> bool:
    """A TensorFlow (or other framework) tensor that can become a numpy array."""
    module = type(x).__module__ or ""
    return hasattr(x, "numpy") and callable(x.numpy) and module.split(".")[0] in ("tensorflow", "keras", "tf_keras")


def to_numpy(x: Any) -> Any:
    """Tensors (TensorFlow, Keras) become numpy arrays; anything else is returned unchanged."""
    if _is_tensor_like(x):
        return x.numpy()
    return x


def is_dataframe(x: Any) -> bool:
    return type(x).__name__ == "DataFrame" and (type(x).__module__ or "").startswith("pandas")


def is_series(x: Any) -> bool:
    return type(x).__name__ == "Series" and (type(x).__module__ or "").startswith("pandas")


def _datatype_of_numpy(dtype: Any, what: str) -> DataType:
    """The column type for a numpy/pandas dtype; object columns are looked at by the caller."""
    kind = getattr(dtype, "kind", None)
    if kind == "b":
        return DataType.boolean
    if kind == "i":
        return DataType.integer if dtype.itemsize <= 4 else DataType.long
    if kind == "u":
        return DataType.integer if dtype.itemsize <= 2 else DataType.long
    if kind == "f":
        return DataType.float if dtype.itemsize <= 4 else DataType.double
    if kind == "U":
        return DataType.string
    if kind == "S":
        return DataType.binary
    if kind == "M":
        return DataType.datetime
    if str(dtype) in ("string", "str"):
        return DataType.string
    if str(dtype) == "boolean":
        return DataType.boolean
    if str(dtype).startswith(("Int", "UInt")):
        return DataType.long
    if str(dtype).startswith("Float"):
        return DataType.double
    raise InvalidParameterValue(f"Cannot infer a column type for {what} of dtype {dtype}.")


def _datatype_of_value(v: Any, what: str) -> DataType:
    if isinstance(v, bool):
        return DataType.boolean
    if isinstance(v, int):
        return DataType.long
    if isinstance(v, float):
        return DataType.double
    if isinstance(v, str):
        return DataType.string
    if isinstance(v, bytes | bytearray):
        return DataType.binary
    if isinstance(v, _dt.date | _dt.datetime):
        return DataType.datetime
    dtype = getattr(v, "dtype", None)
    if dtype is not None and getattr(v, "ndim", 0) == 0:
        return _datatype_of_numpy(dtype, what)
    raise InvalidParameterValue(
        f"Cannot infer a type for {what} = {v!r} ({type(v).__name__}): expected a bool, int, float, str, bytes "
        "or datetime.")


def _colspec_of_series(series: Any, name: str | None) -> ColSpec:
    what = f"column {name!r}" if name is not None else "the series"
    dtype = series.dtype
    if getattr(dtype, "kind", None) == "O" or str(dtype) == "object":
        values = [v for v in series.tolist() if v is not None]
        if not values:
            raise InvalidParameterValue(f"Cannot infer a type for {what}: it holds only missing values.")
        types = {_datatype_of_value(v, what) for v in values}
        if len(types) > 1:
            raise InvalidParameterValue(
                f"Cannot infer one type for {what}: it mixes {sorted(t.name for t in types)}.")
        col_type = types.pop()
    else:
        col_type = _datatype_of_numpy(dtype, what)
    required = not bool(series.isna().any())
    return ColSpec(col_type, name, required)


def _tensor_spec(arr: Any, name: str | None, what: str) -> TensorSpec:
    import numpy as np

    arr = np.asarray(arr)
    if arr.dtype.kind == "O":
        flat = [v for v in arr.ravel().tolist() if v is not None]
        if flat and all(isinstance(v, str) for v in flat):
            arr = arr.astype(str)
        elif flat and all(isinstance(v, bytes) for v in flat):
            arr = arr.astype(bytes)
        else:
            raise InvalidParameterValue(
                f"Cannot infer a tensor spec for {what}: it holds Python objects of types "
                f"{sorted({type(v).__name__ for v in flat})} (ragged or mixed data?); expected numbers or strings.")
    shape = (-1, *arr.shape[1:]) if arr.ndim > 0 else ()
    return TensorSpec(arr.dtype, shape, name)


def _is_array_like(x: Any) -> bool:
    import numpy as np

    return isinstance(x, np.ndarray | list | tuple) or _is_tensor_like(x) or is_series(x)


def infer_schema(data: Any) -> Schema:
    """The Schema that describes `data` (see the module doc for the accepted kinds)."""
    import numpy as np

    data = to_numpy(data)
    if is_dataframe(data):
        if len(data.columns) == 0:
            raise InvalidParameterValue("Cannot infer a schema from a DataFrame with no columns.")
        return Schema([_colspec_of_series(data[c], str(c)) for c in data.columns])
    if is_series(data):
        return Schema([_colspec_of_series(data, None if data.name is None else str(data.name))])
    if isinstance(data, dict):
        if not data:
            raise InvalidParameterValue("Cannot infer a schema from an empty dict.")
        if all(_is_array_like(v) for v in data.values()):
            return Schema([_tensor_spec(to_numpy(v), str(k), f"input {k!r}") for k, v in data.items()])
        return Schema([ColSpec(_datatype_of_value(v, f"key {k!r}"), str(k)) for k, v in data.items()])
    if isinstance(data, np.ndarray):
        return Schema([_tensor_spec(data, None, "the array")])
    if isinstance(data, list | tuple):
        if not data:
            raise InvalidParameterValue("Cannot infer a schema from an empty list.")
        if all(isinstance(v, dict) for v in data):
            import pandas as pd

            return infer_schema(pd.DataFrame(list(data)))
        if all(isinstance(v, str) for v in data):
            return Schema([ColSpec(DataType.string)])
        if all(isinstance(v, np.ndarray) or _is_tensor_like(v) for v in data) and len(data) > 1:
            # a list of separate arrays (a multi-output model's result), not rows of one array
            return Schema([_tensor_spec(to_numpy(v), None, f"element {i}") for i, v in enumerate(data)])
        return Schema([_tensor_spec(np.asarray([to_numpy(v) for v in data]), None, "the list")])
    if isinstance(data, bool | int | float | str | bytes | _dt.datetime) or (
            getattr(data, "ndim", None) == 0 and getattr(data, "dtype", None) is not None):
        return Schema([ColSpec(_datatype_of_value(data, "the value"))])
    if hasattr(data, "__array__"):
        return Schema([_tensor_spec(np.asarray(data), None, "the array")])
    raise InvalidParameterValue(
        f"Cannot infer a schema from {type(data).__name__}: expected a numpy array, a dict of arrays, a pandas "
        "DataFrame or Series, a list, a scalar or a TensorFlow tensor.")


def infer_param_schema(params: dict[str, Any]) -> ParamSchema:
    """A ParamSchema whose defaults are the given values."""
    if not isinstance(params, dict):
        raise InvalidParameterValue(f"params must be a dict of name -> default value; received {type(params).__name__}.")
    specs = []
    for name, value in params.items():
        if hasattr(value, "tolist") and not isinstance(value, str | bytes):
            value = value.tolist()
        if isinstance(value, list | tuple):
            if not value:
                raise InvalidParameterValue(f"Cannot infer a type for parameter {name!r} from an empty list.")
            types = {_datatype_of_value(v, f"parameter {name!r}") for v in value}
            if types == {DataType.long, DataType.double}:
                types = {DataType.double}
            if len(types) != 1:
                raise InvalidParameterValue(
                    f"Cannot infer one type for parameter {name!r}: it mixes {sorted(t.name for t in types)}.")
            specs.append(ParamSpec(name, types.pop(), list(value), (-1,)))
        else:
            specs.append(ParamSpec(name, _datatype_of_value(value, f"parameter {name!r}"), value))
    return ParamSchema(specs)


def infer_signature(model_input: Any = None, model_output: Any = None,
                    params: dict[str, Any] | None = None) -> ModelSignature:
    """Infer a ModelSignature from example inputs, outputs and inference parameters.

    Args:
        model_input: an example input (numpy array, dict of arrays, DataFrame, list, tensor...).
        model_output: the model's output for that input (same kinds), or None.
        params: inference parameters and their default values, or None.

    Returns:
        A ModelSignature; arrays get a -1 first (batch) dimension.
    """
    inputs = infer_schema(model_input) if model_input is not None else None
    outputs = infer_schema(model_output) if model_output is not None else None
    param_schema = infer_param_schema(params) if params else None
    return ModelSignature(inputs, outputs, param_schema)
