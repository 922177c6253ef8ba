"""Turn what a caller passes to `predict` into what the model takes, enforcing its signature.

Accepted inputs: numpy arrays, lists, dicts of arrays (inputs by name), pandas DataFrames and
Series, TensorFlow tensors. A tensor schema yields an array (one input) or a dict of arrays (named
inputs); a column schema yields a DataFrame with the schema's columns in order. Casts that keep
every value (int32 -> int64, int -> float when exact, float64 -> float32 for a float32 spec) are
applied; anything else is refused with a message naming what was expected and what was received.
"""

from __future__ import annotations

import warnings
from typing import Any

from mltrail.errors import InvalidParameterValue, MltrailWarning
from mltrail.models.signature import is_dataframe, is_series, to_numpy
from mltrail.types import ColSpec, DataType, ParamSchema, Schema, TensorSpec, dtype_name


def _label(name: str | int | None) -> str:
    if name is None:
        return ""
    if isinstance(name, int):
        return f" for input {name}"
    return f" for input {name!r}"


def _shape_str(shape: tuple[int, ...]) -> str:
    return str(tuple(int(d) for d in shape))


def check_shape(actual: tuple[int, ...], expected: tuple[int, ...], name: str | int | None) -> None:
    """Refuse `actual` unless it has the expected rank and every fixed (not -1) dimension matches."""
    if len(actual) != len(expected) or any(e not in (-1, a) for a, e in zip(actual, expected, strict=False)):
        raise InvalidParameterValue(
            f"Shape of input {_shape_str(actual)} does not match expected shape {_shape_str(expected)}{_label(name)}.")


def _lossless(arr: Any, cast: Any) -> bool:
    import numpy as np

    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.array_equal(cast.astype(arr.dtype), arr))


def cast_array(arr: Any, expected: Any, name: str | int | None) -> Any:
    """`arr` as dtype `expected` when the cast keeps the values, else an InvalidParameterValue."""
    import numpy as np

    actual = arr.dtype
    if actual == expected:
        return arr
    ek, ak = expected.kind, actual.kind
    if ek in "US":
        if ak in "US" or (ak == "O" and all(isinstance(v, str | bytes) for v in arr.ravel().tolist())):
            return arr.astype(str if ek == "U" else bytes)
    elif ek == "O":
        return arr.astype(object)
    elif ak == "O":
        try:
            converted = np.asarray(arr.tolist(), dtype=expected)
        except (TypeError, ValueError):
            converted = None
        if converted is not None and converted.shape == arr.shape:
            return converted
    elif np.can_cast(actual, expected, "safe"):
        return arr.astype(expected)
    elif ak == "f" and ek == "f":
        # float64 data for a float32 model is the common case (numpy's default); Keras casts the same way
        return arr.astype(expected)
    elif ak in "iub" and ek == "f":
        cast = arr.astype(expected)
        if _lossless(arr, cast):
            return cast
    elif ak in "iu" and ek in "iu":
        info = np.iinfo(expected)
        if arr.size == 0 or (int(arr.min()) >= info.min and int(arr.max()) <= info.max):
            return arr.astype(expected)
    raise InvalidParameterValue(
        f"dtype of input {dtype_name(actual)} does not match expected dtype {dtype_name(expected)}{_label(name)}: "
        "converting would lose information (an unsafe cast).")


def enforce_tensor(value: Any, spec: TensorSpec, name: str | int | None = None) -> Any:
    """One input checked against one TensorSpec: shape first, then dtype (with safe casts)."""
    import numpy as np

    arr = np.asarray(to_numpy(value))
    if arr.dtype.kind == "O" and arr.ndim >= 1 and spec.type.kind not in "OUS":
        raise InvalidParameterValue(
            f"Input{_label(name)} is not a regular numeric array (ragged lists or mixed types?): expected dtype "
            f"{dtype_name(spec.type)} with shape {_shape_str(spec.shape)}.")
    check_shape(arr.shape, spec.shape, name if name is not None else spec.name)
    return cast_array(arr, spec.type, name if name is not None else spec.name)


def _column_values(series: Any) -> Any:
    """A DataFrame column as an array; a column whose cells are arrays/lists becomes a stacked array."""
    import numpy as np

    if series.dtype == object and len(series) and all(isinstance(v, np.ndarray | list | tuple) for v in series):
        return np.stack([np.asarray(v) for v in series])
    return series.to_numpy()


def _reshape_to(arr: Any, spec: TensorSpec) -> Any:
    """Fit flat DataFrame rows to a tensor spec of shape (-1, d1, d2, ...) when the sizes allow it."""
    import numpy as np

    shape = spec.shape
    if arr.shape == shape or len(shape) < 1 or any(d == -1 for d in shape[1:]):
        return arr
    per_row = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    if arr.ndim >= 1 and arr.size == arr.shape[0] * per_row and arr.shape[1:] != shape[1:]:
        return arr.reshape((arr.shape[0], *shape[1:]))
    return arr


def _dataframe_to_tensors(df: Any, schema: Schema) -> Any:
    specs = schema.inputs
    if not schema.has_input_names() or (len(specs) == 1 and specs[0].name not in df.columns):
        if len(specs) != 1:
            raise InvalidParameterValue(
                f"The model expects {len(specs)} tensor inputs; a DataFrame can feed several only when its columns "
                f"are named after them ({schema.input_names()}). Received columns {list(df.columns)}.")
        values = _column_values(df.iloc[:, 0]) if len(df.columns) == 1 else df.to_numpy()
        return _reshape_to(values, specs[0])  # type: ignore[arg-type]
    out = {}
    for spec in specs:
        if spec.name not in df.columns:
            continue  # reported as missing by the caller
        out[spec.name] = _reshape_to(_column_values(df[spec.name]), spec)  # type: ignore[arg-type]
    return out


def _enforce_tensor_schema(data: Any, schema: Schema) -> Any:
    import numpy as np

    specs: list[TensorSpec] = schema.inputs  # type: ignore[assignment]
    names = schema.input_names()
    if is_series(data):
        data = data.to_frame()
    if is_dataframe(data):
        data = _dataframe_to_tensors(data, schema)
    data = to_numpy(data)
    if isinstance(data, dict):
        if not schema.has_input_names():
            if len(specs) == 1 and len(data) == 1:
                return enforce_tensor(next(iter(data.values())), specs[0])
            raise InvalidParameterValue(
                f"The model's inputs are unnamed ({len(specs)} tensor(s)); received a dict with keys {list(data)}. "
                "Pass an array (or a list of arrays, in order).")
        missing = [n for n in names if n not in data]
        if missing:
            raise InvalidParameterValue(
                f"Missing input(s) {missing}: the model expects inputs {names}, received {list(data)}.")
        return {s.name: enforce_tensor(data[s.name], s, s.name) for s in specs}
    if len(specs) > 1:
        if isinstance(data, list | tuple) and len(data) == len(specs) and all(
                isinstance(to_numpy(v), np.ndarray) for v in data):
            checked = [enforce_tensor(v, s, n) for v, s, n in zip(data, specs, names, strict=True)]
            if schema.has_input_names():
                return dict(zip(names, checked, strict=True))
            return checked
        shape = getattr(np.asarray(data, dtype=object) if isinstance(data, list) else data, "shape", None)
        raise InvalidParameterValue(
            f"The model expects {len(specs)} inputs {names}; received a single {type(data).__name__}"
            f"{f' of shape {_shape_str(shape)}' if shape is not None else ''}. Pass a dict {{name: array}}.")
    return enforce_tensor(data, specs[0])


def _to_dataframe(data: Any, schema: Schema) -> Any:
    import numpy as np
    import pandas as pd

    cols = [c if c is not None else i for i, c in enumerate(s.name for s in schema.inputs)]
    data = to_numpy(data)
    if is_dataframe(data):
        return data
    if is_series(data):
        return data.to_frame(name=cols[0] if data.name is None else data.name)
    if isinstance(data, dict):
        if all(np.ndim(to_numpy(v)) == 0 for v in data.values()):
            return pd.DataFrame([{k: to_numpy(v) for k, v in data.items()}])
        return pd.DataFrame({k: list(to_numpy(v)) if np.ndim(to_numpy(v)) > 1 else to_numpy(v)
                             for k, v in data.items()})
    if isinstance(data, list | tuple) and data and all(isinstance(v, dict) for v in data):
        return pd.DataFrame(list(data))
    arr = np.asarray(data)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim == 1:
        if len(cols) == 1:
            return pd.DataFrame({cols[0]: arr})
        if len(arr) == len(cols):  # one row
            return pd.DataFrame([arr], columns=cols)
    if arr.ndim == 2 and arr.shape[1] == len(cols):
        return pd.DataFrame(arr, columns=cols)
    raise InvalidParameterValue(
        f"The model expects a table with columns {cols}; received {type(data).__name__} of shape "
        f"{_shape_str(arr.shape)}. Pass a pandas DataFrame, a dict of columns or a list of records.")


def _enforce_column(series: Any, spec: ColSpec, name: Any) -> Any:
    import numpy as np
    import pandas as pd

    t = spec.type
    what = f"column {name!r}"
    dtype = series.dtype
    kind = getattr(dtype, "kind", "O")
    if spec.required and bool(series.isna().any()):
        raise InvalidParameterValue(f"Required {what} has missing values; expected {t.name} values in every row.")

    def refuse() -> InvalidParameterValue:
        return InvalidParameterValue(
            f"Incompatible input types for {what}: received {dtype}, expected {t.name} "
            "(converting would lose information).")

    if t is DataType.boolean:
        if kind != "b" and str(dtype) != "boolean":
            raise refuse()
        return series
    if t in (DataType.integer, DataType.long):
        if kind not in "iu":
            raise refuse()
        target = t.to_numpy()
        info = np.iinfo(target)
        if len(series) and (int(series.min()) < info.min or int(series.max()) > info.max):
            raise refuse()
        return series.astype(target)
    if t in (DataType.float, DataType.double):
        target = t.to_numpy()
        if kind == "f":
            return series.astype(target)
        if kind in "iub":
            arr = series.to_numpy()
            cast = arr.astype(target)
            if _lossless(arr, cast):
                return pd.Series(cast, index=series.index, name=series.name)
        raise refuse()
    if t is DataType.string:
        if kind == "U" or str(dtype) in ("string", "str") or (
                kind == "O" and all(isinstance(v, str) or v is None for v in series.tolist())):
            return series
        raise refuse()
    if t is DataType.binary:
        if kind == "S" or (kind == "O" and all(isinstance(v, bytes | bytearray) or v is None for v in series.tolist())):
            return series
        raise refuse()
    # datetime: datetimes, or ISO strings that parse
    if kind == "M":
        return series
    if kind == "O":
        try:
            return pd.to_datetime(series)
        except (TypeError, ValueError):
            pass
    raise refuse()


def _enforce_col_schema(data: Any, schema: Schema) -> Any:
    df = _to_dataframe(data, schema)
    specs: list[ColSpec] = schema.inputs  # type: ignore[assignment]
    if schema.has_input_names():
        expected = [s.name for s in specs]
        missing = [s.name for s in specs if s.required and s.name not in df.columns]
        if missing:
            raise InvalidParameterValue(
                f"Model is missing inputs {missing}: the model expects columns {expected}, received "
                f"{list(df.columns)}.")
        present = [s for s in specs if s.name in df.columns]
        out = df[[s.name for s in present]].copy()
        for s in present:
            out[s.name] = _enforce_column(out[s.name], s, s.name)
        return out
    if len(df.columns) < len(specs):
        raise InvalidParameterValue(
            f"The model expects {len(specs)} column(s); received {len(df.columns)} ({list(df.columns)}).")
    import pandas as pd

    cols = {df.columns[i]: _enforce_column(df.iloc[:, i], s, df.columns[i]) for i, s in enumerate(specs)}
    return pd.DataFrame(cols, index=df.index)


def convert_without_schema(data: Any) -> Any:
    """Inputs for a model without a signature: tensors and lists become arrays, DataFrames stay."""
    import numpy as np

    data = to_numpy(data)
    if is_dataframe(data) or isinstance(data, np.ndarray):
        return data
    if is_series(data):
        return data.to_numpy()
    if isinstance(data, dict):
        return {k: np.asarray(to_numpy(v)) for k, v in data.items()}
    if isinstance(data, list | tuple) and data and all(isinstance(to_numpy(v), np.ndarray) for v in data) and len(
            {np.shape(to_numpy(v)) for v in data}) > 1:
        return [to_numpy(v) for v in data]
    try:
        return np.asarray(data)
    except ValueError as e:
        raise InvalidParameterValue(
            f"Cannot turn the input ({type(data).__name__}) into an array: {e}. Expected a numpy array, a list of "
            "equal-length rows, a dict of arrays or a pandas DataFrame.") from None


def enforce_schema(data: Any, schema: Schema | None) -> Any:
    """Check `data` against the input schema and return it in the form the model takes."""
    if data is None:
        raise InvalidParameterValue("predict() received None: expected input data.")
    if schema is None:
        return convert_without_schema(data)
    if schema.is_tensor_spec():
        return _enforce_tensor_schema(data, schema)
    return _enforce_col_schema(data, schema)


def enforce_params(params: dict[str, Any] | None, schema: ParamSchema | None) -> dict[str, Any] | None:
    """The inference parameters to use: the schema's defaults overridden by valid `params`."""
    if schema is None:
        if params:
            warnings.warn(
                f"predict() received params {sorted(params)} but the model's signature declares no parameters; "
                "they are ignored.", MltrailWarning, stacklevel=3)
        return None
    if params is not None and not isinstance(params, dict):
        raise InvalidParameterValue(f"params must be a dict; received {type(params).__name__}.")
    specs = {p.name: p for p in schema.params}
    out = {p.name: p.default for p in schema.params}
    unknown = sorted(k for k in (params or {}) if k not in specs)
    if unknown:
        warnings.warn(f"Unknown params {unknown} are ignored; the model accepts {sorted(specs)}.",
                      MltrailWarning, stacklevel=3)
    for key, value in (params or {}).items():
        if key in specs:
            out[key] = specs[key].validate_value(value)
    return out
