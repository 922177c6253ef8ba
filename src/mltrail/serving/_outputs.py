"""Predictions as MLflow's response JSON: `{"predictions": ...}`, a list or a dict of lists.

orjson writes numpy arrays natively; what it cannot (DataFrames, object arrays, tensors) goes
through `_default`. DataFrames become records, as MLflow's scoring server writes them.
"""

from __future__ import annotations

from typing import Any

import orjson

_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _default(obj: Any) -> Any:
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


def dumps(obj: Any) -> bytes:
    """JSON bytes for `obj` (numpy arrays and scalars, DataFrames, tensors included)."""
    return orjson.dumps(obj, default=_default, option=_OPTS)


def predictions_body(predictions: Any) -> bytes:
    """MLflow's response body: `{"predictions": <list, or dict of lists>}`."""
    return orjson.dumps({"predictions": predictions}, default=_default, option=_OPTS)


def error_body(error_code: str, message: str) -> bytes:
    return orjson.dumps({"error_code": error_code, "message": message})
