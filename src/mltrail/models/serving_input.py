"""MLflow's scoring request bodies (JSON) as model input, and `validate_serving_input` that uses them.

A body holds exactly one of `inputs` (columnar tensors: a list, or a dict of named tensors),
`instances` (rows: a list, or a list of dicts of named values), `dataframe_split` or
`dataframe_records`, plus optional `params`. Tensors become numpy arrays (or dicts of them); tables
become pandas DataFrames. The scoring server (`mltrail.serving`) reads request bodies with these
functions; pandas is imported only for the dataframe formats, so the tensor path stays light.
"""

from __future__ import annotations

import json
from typing import Any

from mltrail.errors import BadRequest

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_FORMAT_SET = frozenset(FORMATS)


def decode_json(body: bytes | str) -> Any:
    """Parse a JSON body (orjson; Python's json for the NaN/Infinity literals orjson refuses)."""
    import orjson

    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            pass
        raise BadRequest(f"Invalid JSON in the request body: {e}. Expected a JSON object such as "
                         '{"inputs": [[1.0, 2.0]]}.') from None


def to_array(value: Any, what: str) -> Any:
    """A JSON value as a numpy array; ragged lists are refused."""
    import numpy as np

    try:
        arr = np.asarray(value)
    except ValueError as e:
        raise BadRequest(f"{what} is not a regular array (ragged nested lists?): {e}.") from None
    if arr.dtype.kind == "O" and arr.ndim > 0 and not all(isinstance(v, str | bytes) for v in arr.ravel().tolist()):
        raise BadRequest(f"{what} mixes values of different kinds (or nests lists unevenly); expected numbers, "
                         "booleans or strings in a regular (rectangular) array.")
    return arr


def parse_inputs(value: Any) -> Any:
    """`{"inputs": ...}`: a list (one tensor), a dict of named tensors, or a scalar."""
    if isinstance(value, dict):
        if not value:
            raise BadRequest('"inputs" is an empty object; expected a list or an object of named tensors.')
        return {str(k): to_array(v, f'"inputs"[{k!r}]') for k, v in value.items()}
    if value is None:
        raise BadRequest('"inputs" is null; expected a list or an object of named tensors.')
    return to_array(value, '"inputs"')


def parse_instances(value: Any) -> Any:
    """`{"instances": ...}`: rows; rows that are objects give one tensor per key."""
    if isinstance(value, dict):
        return parse_inputs(value)
    if not isinstance(value, list):
        raise BadRequest(f'"instances" must be a list of rows; received {type(value).__name__}.')
    if value and all(isinstance(row, dict) for row in value):
        keys = list(value[0])
        for i, row in enumerate(value):
            if list(row) != keys and set(row) != set(keys):
                raise BadRequest(f'"instances" rows must all have the same keys: row 0 has {keys}, row {i} has '
                                 f"{list(row)}.")
        return {str(k): to_array([row[k] for row in value], f'"instances"[*][{k!r}]') for k in keys}
    if any(isinstance(row, dict) for row in value):
        raise BadRequest('"instances" mixes objects and plain values; expected all rows of one kind.')
    return to_array(value, '"instances"')


def parse_dataframe_split(value: Any) -> Any:
    """`{"dataframe_split": {"columns": [...], "data": [[...]], "index": [...]}}` as a DataFrame."""
    import pandas as pd

    if not isinstance(value, dict) or "data" not in value:
        raise BadRequest('"dataframe_split" must be an object with "data" (a list of rows) and optionally '
                         f'"columns" and "index"; received {_describe(value)}.')
    data, columns, index = value.get("data"), value.get("columns"), value.get("index")
    if not isinstance(data, list):
        raise BadRequest(f'"dataframe_split"."data" must be a list of rows; received {_describe(data)}.')
    if columns is not None and not isinstance(columns, list):
        raise BadRequest(f'"dataframe_split"."columns" must be a list of names; received {_describe(columns)}.')
    try:
        return pd.DataFrame(data=data, columns=columns, index=index)
    except (ValueError, TypeError) as e:
        raise BadRequest(f'"dataframe_split" does not form a table: {e} (columns: {columns}).') from None


def parse_dataframe_records(value: Any) -> Any:
    """`{"dataframe_records": [{"col": value, ...}, ...]}` as a DataFrame."""
    import pandas as pd

    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise BadRequest('"dataframe_records" must be a list of objects (one per row, keyed by column); '
                         f"received {_describe(value)}.")
    return pd.DataFrame.from_records(value) if value else pd.DataFrame()


def _describe(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return f"{type(value).__name__} {text[:80]}{'...' if len(text) > 80 else ''}"


def split_payload(payload: Any) -> tuple[Any, dict[str, Any] | None]:
    """A decoded JSON body as (model input, params)."""
    if not isinstance(payload, dict):
        raise BadRequest(
            f"The request body must be a JSON object with one of the fields {list(FORMATS)}; received "
            f"{_describe(payload)}. (MLflow 1.x bodies, a bare list or a pandas 'split' object, are no longer "
            'accepted: wrap them, e.g. {"dataframe_split": {...}} or {"inputs": [...]}.)')
    found = [k for k in payload if k in _FORMAT_SET]
    if len(found) != 1:
        raise BadRequest(
            f"The request body must hold exactly one of the fields {list(FORMATS)}; received the fields "
            f"{list(payload)}.")
    key = found[0]
    params = payload.get("params")
    if params is not None and not isinstance(params, dict):
        raise BadRequest(f'"params" must be an object of name -> value; received {_describe(params)}.')
    value = payload[key]
    if key == "inputs":
        data = parse_inputs(value)
    elif key == "instances":
        data = parse_instances(value)
    elif key == "dataframe_split":
        data = parse_dataframe_split(value)
    else:
        data = parse_dataframe_records(value)
    return data, (params or None)


def validate_serving_input(model_uri: str, serving_input: str | dict[str, Any]) -> Any:
    """Check that the model at `model_uri` can be served this request body, by predicting on it.

    Args:
        model_uri: any model URI `pyfunc.load_model` accepts.
        serving_input: a request body for `/invocations`, as a JSON string or its decoded dict.

    Returns:
        The model's prediction for the input.
    """
    from mltrail.models.pyfunc import load_model

    payload = decode_json(serving_input) if isinstance(serving_input, str | bytes) else serving_input
    model = load_model(model_uri)
    data, params = split_payload(payload)
    return model.predict(data, params=params)
