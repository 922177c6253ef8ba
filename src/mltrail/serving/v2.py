"""The Open Inference Protocol (KServe V2) beside MLflow's endpoints, for KServe and Triton clients.

`/v2`, `/v2/health/live`, `/v2/health/ready`, `/v2/models/<name>[/versions/<v>]` (metadata: inputs
and outputs from the signature), `.../ready` and `.../infer`. An infer request's inputs
(`{name, shape, datatype, data}`, data flat or nested, row-major) become the model's input by the
signature's names; the outputs come back the same way. Infer calls go through the same batcher
as `/invocations`. Errors are `{"error": message}` (plus our `error_code`).
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mltrail.errors import BadRequest, InvalidParameterValue, MltrailException, ResourceDoesNotExist
from mltrail.serving._inputs import decode_json, validate
from mltrail.serving._outputs import dumps
from mltrail.serving._scorer import Scorer, status_of
from mltrail.version import __version__

# V2 datatype -> numpy dtype name (BYTES: Python strings/bytes)
_V2_TO_NUMPY = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64", "BYTES": "object",
}
_NUMPY_TO_V2 = {v: k for k, v in _V2_TO_NUMPY.items() if k != "BYTES"}
# column types of a column-based signature
_COLTYPE_TO_V2 = {"boolean": "BOOL", "integer": "INT32", "long": "INT64", "float": "FP32", "double": "FP64",
                  "string": "BYTES", "binary": "BYTES", "datetime": "BYTES"}
# request `parameters` that describe the transport, not the model
_RESERVED_PARAMETERS = {"content_type", "headers", "binary_data_output", "binary_data_size"}


def datatype_of(dtype: Any) -> str:
    """The V2 datatype for a numpy dtype (strings, bytes and objects: BYTES)."""
    import numpy as np

    dtype = np.dtype(dtype)
    if dtype.kind in "USO":
        return "BYTES"
    name = _NUMPY_TO_V2.get(dtype.name)
    if name is None:
        raise InvalidParameterValue(f"No V2 datatype for numpy dtype {dtype}.")
    return name


def _tensor_meta(schema: Any, prefix: str) -> list[dict[str, Any]]:
    if schema is None:
        return []
    out = []
    for i, spec in enumerate(schema.inputs):
        name = spec.name if spec.name is not None else f"{prefix}-{i}"
        if schema.is_tensor_spec():
            out.append({"name": name, "datatype": datatype_of(spec.type), "shape": [int(d) for d in spec.shape]})
        else:
            out.append({"name": name, "datatype": _COLTYPE_TO_V2.get(spec.type.name, "BYTES"), "shape": [-1]})
    return out


def _json(status: int, payload: Any) -> Response:
    return Response(dumps(payload), status_code=status, media_type="application/json")


def _error(e: MltrailException) -> Response:
    return _json(status_of(e), {"error": e.message, "error_code": e.error_code})


def _flatten_strings(data: Any) -> list[Any]:
    if isinstance(data, list):
        out: list[Any] = []
        for v in data:
            out.extend(_flatten_strings(v))
        return out
    return [data]


def decode_tensor(inp: Any, index: int) -> tuple[str, Any]:
    """One V2 input tensor (`{name, shape, datatype, data}`) as (name, numpy array of that shape)."""
    import numpy as np

    if not isinstance(inp, dict):
        raise BadRequest(f"inputs[{index}] must be an object with name, shape, datatype and data; received "
                         f"{type(inp).__name__}.")
    missing = [k for k in ("name", "shape", "datatype", "data") if k not in inp]
    if missing:
        raise BadRequest(f"inputs[{index}] is missing {missing}; each input needs name, shape, datatype and data.")
    name, shape, datatype, data = inp["name"], inp["shape"], inp["datatype"], inp["data"]
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise BadRequest(f"inputs[{index}] ({name!r}): shape must be a list of non-negative integers; received "
                         f"{shape!r}.")
    if datatype not in _V2_TO_NUMPY:
        raise BadRequest(f"inputs[{index}] ({name!r}): unknown datatype {datatype!r}; expected one of "
                         f"{sorted(_V2_TO_NUMPY)}.")
    if datatype == "BYTES":
        flat = _flatten_strings(data)
        if not all(isinstance(v, str) for v in flat):
            raise BadRequest(f"inputs[{index}] ({name!r}): BYTES data must be strings.")
        arr = np.asarray(flat, dtype=str) if flat else np.asarray([], dtype=str)
    else:
        try:
            raw = np.asarray(data)
        except ValueError as e:
            raise BadRequest(f"inputs[{index}] ({name!r}): data is not a regular array: {e}.") from None
        target = np.dtype(_V2_TO_NUMPY[datatype])
        ok = raw.size == 0 or raw.dtype.kind == "b" or (raw.dtype.kind in "iu" and target.kind != "b") or (
            raw.dtype.kind == "f" and target.kind == "f")
        if not ok:
            raise InvalidParameterValue(
                f"inputs[{index}] ({name!r}): data of kind {raw.dtype} does not fit datatype {datatype}.")
        arr = raw.astype(target)
    need = int(np.prod(shape, dtype=np.int64))
    if arr.size != need:
        raise InvalidParameterValue(
            f"inputs[{index}] ({name!r}): shape {shape} needs {need} values; received {arr.size}.")
    return str(name), arr.reshape(shape)


def _model_input(tensors: list[tuple[str, Any]], schema: Any) -> Any:
    """The decoded V2 inputs as the model takes them, by the signature's input names."""
    if schema is None:
        return tensors[0][1] if len(tensors) == 1 else dict(tensors)
    if not schema.is_tensor_spec():
        import pandas as pd

        cols = {}
        for n, a in tensors:
            if a.ndim == 2 and a.shape[1] == 1:  # [rows, 1]: one value per row
                a = a[:, 0]
            cols[n] = list(a) if a.ndim > 1 else a
        return pd.DataFrame(cols)
    if not schema.has_input_names():
        if len(tensors) == 1:
            return tensors[0][1]
        return [a for _, a in tensors]
    names = [str(n) for n in schema.input_names()]
    unknown = [n for n, _ in tensors if n not in names]
    if unknown:
        raise InvalidParameterValue(f"Unknown input(s) {unknown}: the model's inputs are {names}.")
    if len(names) == 1 and len(tensors) == 1:
        return {names[0]: tensors[0][1]}
    return dict(tensors)


def _named_outputs(out: Any, schema: Any) -> list[tuple[str, Any]]:
    import numpy as np

    from mltrail.models.signature import is_dataframe, is_series

    names = [s.name for s in schema.inputs] if schema is not None else []
    if hasattr(out, "numpy") and callable(out.numpy) and not isinstance(out, np.ndarray):
        out = out.numpy()
    if isinstance(out, dict):
        return [(str(k), v) for k, v in out.items()]
    if is_dataframe(out):
        return [(str(c), out[c].to_numpy()) for c in out.columns]
    if is_series(out):
        return [(str(out.name) if out.name is not None else "output-0", out.to_numpy())]
    if isinstance(out, list | tuple) and out and all(hasattr(v, "shape") for v in out):
        return [(names[i] if i < len(names) and names[i] else f"output-{i}", v) for i, v in enumerate(out)]
    name = names[0] if len(names) == 1 and names[0] else "output-0"
    return [(name, out)]


def encode_outputs(out: Any, schema: Any) -> list[dict[str, Any]]:
    """The model's output as V2 output tensors (data flattened row-major)."""
    import numpy as np

    result = []
    for name, value in _named_outputs(out, schema):
        arr = np.asarray(value)
        datatype = datatype_of(arr.dtype)
        if datatype == "BYTES":
            data: Any = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in arr.ravel().tolist()]
        else:
            data = np.ascontiguousarray(arr).reshape(-1)
        result.append({"name": name, "shape": list(arr.shape), "datatype": datatype, "data": data})
    return result


def parse_infer(raw: bytes, schema: Any) -> tuple[dict[str, Any], Any, dict[str, Any] | None]:
    """An infer request body as (payload, validated model input, params)."""
    payload = decode_json(raw)
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list) or not payload["inputs"]:
        raise BadRequest('An infer request must be a JSON object with "inputs": a non-empty list of '
                         "{name, shape, datatype, data}.")
    tensors = [decode_tensor(inp, i) for i, inp in enumerate(payload["inputs"])]
    data = validate(_model_input(tensors, schema), schema)
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequest(f'"parameters" must be an object; received {type(parameters).__name__}.')
    params = {k: v for k, v in parameters.items() if k not in _RESERVED_PARAMETERS} or None
    return payload, data, params


def routes(scorer: Scorer) -> list[Route]:
    """The V2 routes for the model behind `scorer`."""
    settings = scorer.settings
    meta = scorer.metadata
    flavors = sorted(k for k in meta.flavors if k != "python_function")
    platform = flavors[0] if flavors else "python_function"

    def check_model(request: Request) -> None:
        name = request.path_params["name"]
        version = request.path_params.get("version")
        if name != settings.model_name:
            raise ResourceDoesNotExist(
                f"Model {name!r} is not served here; this server serves {settings.model_name!r}.")
        if version is not None and version != settings.model_version:
            raise ResourceDoesNotExist(
                f"Version {version!r} of model {name!r} is not served here; this server serves version "
                f"{settings.model_version!r}.")

    async def server_metadata(request: Request) -> Response:
        return _json(200, {"name": "mltrail", "version": __version__, "extensions": []})

    async def live(request: Request) -> Response:
        return _json(200, {"live": True})

    async def ready(request: Request) -> Response:
        return _json(200, {"ready": True})

    async def model_metadata(request: Request) -> Response:
        try:
            check_model(request)
        except MltrailException as e:
            return _error(e)
        return _json(200, {
            "name": settings.model_name, "versions": [settings.model_version], "platform": platform,
            "inputs": _tensor_meta(scorer.input_schema, "input"),
            "outputs": _tensor_meta(scorer.output_schema, "output"),
        })

    async def model_ready(request: Request) -> Response:
        try:
            check_model(request)
        except MltrailException as e:
            return _error(e)
        return _json(200, {"name": settings.model_name, "ready": True})

    async def infer(request: Request) -> Response:
        try:
            check_model(request)
            with scorer.batcher.arrival():
                raw = await scorer.read_body(request.receive, request.headers)
                payload, data, params = parse_infer(raw, scorer.input_schema)
            out = await scorer.predict(data, params)
            outputs = encode_outputs(out, scorer.output_schema)
            wanted = payload.get("outputs")
            if wanted:
                names = [o.get("name") if isinstance(o, dict) else None for o in wanted]
                have = {o["name"]: o for o in outputs}
                unknown = [n for n in names if n not in have]
                if unknown:
                    raise InvalidParameterValue(f"Unknown output(s) {unknown}: the model's outputs are {list(have)}.")
                outputs = [have[n] for n in names]
        except MltrailException as e:
            return _error(e)
        return _json(200, {"model_name": settings.model_name, "model_version": settings.model_version,
                           "id": str(payload.get("id") or uuid.uuid4()), "parameters": {}, "outputs": outputs})

    base = "/v2/models/{name}"
    versioned = "/v2/models/{name}/versions/{version}"
    return [
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route(base, model_metadata, methods=["GET"]),
        Route(versioned, model_metadata, methods=["GET"]),
        Route(base + "/ready", model_ready, methods=["GET"]),
        Route(versioned + "/ready", model_ready, methods=["GET"]),
        Route(base + "/infer", infer, methods=["POST"]),
        Route(versioned + "/infer", infer, methods=["POST"]),
    ]
