"""What a scoring request and response are made of, besides JSON inputs: CSV tables in, `{"predictions": ...}` out.

Shared by `mltrail.models.predict` and the scoring server (`mltrail.serving`), so that a file scored
either way is read and written the same. The JSON input formats live in `mltrail.models.serving_input`.
"""

from __future__ import annotations

import io
from typing import Any

import orjson

from mltrail.errors import BadRequest

__all__ = ["dumps", "parse_csv", "predictions_body"]


def _column_dtypes(schema: Any) -> dict[str, Any] | None:
    """For a column-based schema, the pandas dtype of each named column (used to read CSV exactly)."""
    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return None
    out = {}
    for spec in schema.inputs:
        name = spec.type.name
        if name in ("string", "binary", "datetime"):
            out[spec.name] = object
        elif (name in ("integer", "long") and spec.required) or name in ("float", "double"):
            out[spec.name] = spec.type.to_numpy()
    return out


def parse_csv(body: bytes | str, schema: Any = None) -> Any:
    """A CSV table (header row, then rows) as a DataFrame, read with the dtypes a column schema names."""
    import pandas as pd

    raw = body.encode() if isinstance(body, str) else body
    if not raw.strip():
        raise BadRequest("The CSV body is empty; expected a header row and at least one data row.")
    try:
        return pd.read_csv(io.BytesIO(raw), dtype=_column_dtypes(schema))
    except (ValueError, pd.errors.ParserError) as e:
        raise BadRequest(f"Cannot read the CSV body: {e}.") from None


def _default(obj: Any) -> Any:
    """What orjson cannot write itself: DataFrames become records, as MLflow's scoring server writes them."""
    kind = type(obj).__name__
    module = type(obj).__module__ or ""
    if module.startswith("pandas"):
        if kind == "DataFrame":
            return obj.to_dict(orient="records")
        if kind == "Series":
            return obj.tolist()
    if hasattr(obj, "numpy") and callable(obj.numpy) and module.split(".")[0] in ("tensorflow", "keras"):
        return obj.numpy()
    if isinstance(obj, bytes | bytearray):
        import base64

        return base64.b64encode(obj).decode("ascii")
    if hasattr(obj, "tolist"):  # numpy arrays orjson can't write (object, float16, strided) and numpy scalars
        return obj.tolist()
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"Cannot write a prediction of type {type(obj).__name__} as JSON.")


_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps(obj: Any) -> bytes:
    """JSON bytes for `obj` (numpy arrays and scalars, DataFrames, tensors included)."""
    return orjson.dumps(obj, default=_default, option=_OPTS)


def predictions_body(predictions: Any) -> bytes:
    """MLflow's response body: `{"predictions": <list, or dict of lists>}`."""
    return orjson.dumps({"predictions": predictions}, default=_default, option=_OPTS)
