"""Saving an input example next to a model, in MLflow's files and formats.

Arrays and dicts of arrays go to `input_example.json` as TF-Serving JSON (`{"inputs": ...}`,
type `ndarray`, format `tf-serving`); tables as pandas "split" JSON (type `dataframe`). The
request body a scoring server accepts goes to `serving_input_example.json`.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, TypeAlias, Union

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

from mltrail.errors import InvalidParameterValue
from mltrail.models.signature import is_dataframe, is_series, to_numpy

# What `input_example=` takes (MLflow's `mlflow.models.ModelInputExample`); a `(data, params)` tuple adds
# inference params. Forward references, so that naming the type loads neither pandas nor numpy.
ModelInputExample: TypeAlias = Union["pd.DataFrame", "np.ndarray", dict[str, Any], list[Any], str, bytes,
                                     tuple[Any, dict[str, Any]]]

INPUT_EXAMPLE_FILE = "input_example.json"
SERVING_INPUT_FILE = "serving_input_example.json"


def _jsonable(x: Any) -> Any:
    import numpy as np

    x = to_numpy(x)
    if isinstance(x, np.ndarray):
        if x.dtype.kind == "S" or (x.dtype.kind == "O" and any(isinstance(v, bytes) for v in x.ravel().tolist())):
            import base64

            return np.vectorize(lambda b: base64.b64encode(b).decode("ascii"), otypes=[object])(x).tolist()
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def split_params(example: Any) -> tuple[Any, dict[str, Any] | None]:
    """MLflow's `(data, params)` form of an input example as its two parts (params None when absent)."""
    if isinstance(example, tuple) and len(example) == 2 and isinstance(example[1], dict):
        return example[0], example[1]
    return example, None


def normalize_example(example: Any) -> Any:
    """The example's data as a numpy array, a dict of arrays or a DataFrame (what the model will be given).

    Inference params of a `(data, params)` example are left out: `split_params` gives them.
    """
    import numpy as np

    example = to_numpy(split_params(example)[0])
    if is_dataframe(example):
        return example
    if is_series(example):
        return example.to_frame()
    if isinstance(example, np.ndarray):
        return example
    if isinstance(example, dict):
        if example and all(np.ndim(to_numpy(v)) == 0 for v in example.values()):
            import pandas as pd

            return pd.DataFrame([{k: to_numpy(v) for k, v in example.items()}])
        return {str(k): np.asarray(to_numpy(v)) for k, v in example.items()}
    if isinstance(example, list | tuple):
        if example and all(isinstance(v, dict) for v in example):
            import pandas as pd

            return pd.DataFrame(list(example))
        return np.asarray([to_numpy(v) for v in example])
    if hasattr(example, "__array__"):
        return np.asarray(example)
    raise InvalidParameterValue(
        f"Unsupported input example type {type(example).__name__}: expected a numpy array, a dict of arrays, a "
        "pandas DataFrame, a list or a TensorFlow tensor.")


def _encode(example: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(input_example.json content, scoring request body, MLmodel info) of an example.

    With params (`(data, params)`), both files get a "params" field and the data goes under
    "inputs", and the MLmodel info says `params: 'true'`, as MLflow writes them.
    """
    params = split_params(example)[1]
    example = normalize_example(example)
    if is_dataframe(example):
        split = example.to_dict(orient="split")
        payload: dict[str, Any] = {"columns": [str(c) for c in split["columns"]],
                                   "data": [[_jsonable(v) for v in row] for row in split["data"]]}
        serving: dict[str, Any] = {"dataframe_split": payload}
        info = {"artifact_path": INPUT_EXAMPLE_FILE, "type": "dataframe", "pandas_orient": "split"}
    else:
        if isinstance(example, dict):
            payload = {"inputs": {k: _jsonable(v) for k, v in example.items()}}
        else:
            payload = {"inputs": _jsonable(example)}
        serving = payload
        info = {"artifact_path": INPUT_EXAMPLE_FILE, "type": "ndarray", "format": "tf-serving"}
    if params is not None:
        data = payload if "dataframe_split" in serving else payload["inputs"]
        payload = {"inputs": data, "params": params}
        serving = {**serving, "params": params}
        info["params"] = "true"
    return payload, serving, info


def convert_input_example_to_serving_input(input_example: Any) -> str | None:
    """The scoring-server request body (a JSON string) that carries `input_example`; None for None."""
    if input_example is None:
        return None
    return json.dumps(_encode(input_example)[1], indent=2)


def save_input_example(path: str, example: Any) -> dict[str, Any]:
    """Write the example (and its serving request body) into the model directory; return the MLmodel info."""
    payload, serving, info = _encode(example)
    with open(os.path.join(path, INPUT_EXAMPLE_FILE), "w", encoding="utf-8") as fh:
        json.dump(payload, fh)
    with open(os.path.join(path, SERVING_INPUT_FILE), "w", encoding="utf-8") as fh:
        json.dump(serving, fh, indent=2)
    info["serving_input_path"] = SERVING_INPUT_FILE
    return info


def load_input_example(path: str, info: dict[str, Any]) -> Any:
    """Read back an example saved by `save_input_example` (numbers come back as float64/int64)."""
    import numpy as np

    file = os.path.join(path, info.get("artifact_path", INPUT_EXAMPLE_FILE))
    with open(file, encoding="utf-8") as fh:
        payload = json.load(fh)
    if info.get("params"):
        payload = payload["inputs"] if info.get("type") == "dataframe" else {"inputs": payload["inputs"]}
    if info.get("type") == "dataframe":
        import pandas as pd

        return pd.DataFrame(payload["data"], columns=payload["columns"])
    inputs = payload.get("inputs", payload.get("instances")) if isinstance(payload, dict) else payload
    if isinstance(inputs, dict):
        return {k: np.asarray(v) for k, v in inputs.items()}
    return np.asarray(inputs)


def load_input_example_params(path: str, info: dict[str, Any]) -> dict[str, Any] | None:
    """The params saved with a `(data, params)` example; None when it had none."""
    if not info.get("params"):
        return None
    with open(os.path.join(path, info.get("artifact_path", INPUT_EXAMPLE_FILE)), encoding="utf-8") as fh:
        params: dict[str, Any] | None = json.load(fh).get("params")
    return params
