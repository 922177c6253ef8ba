"""Entities to MLflow's REST JSON and back, shared by the tracking server and the REST store.

MLflow's JSON is protobuf's JSON mapping with snake_case names: int64 fields may arrive as
numbers or strings, doubles may be "NaN"/"Infinity", enums are their names, unset fields are
absent. Writers here leave out None so MLflow's own client (which parses strictly) accepts it.
"""

from __future__ import annotations

from typing import Any

from mltrail.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    FileInfo,
    InputTag,
    LoggedModel,
    LoggedModelInput,
    LoggedModelOutput,
    Metric,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
)
from mltrail.errors import InvalidParameterValue

# our LoggedModel.status <-> MLflow's LoggedModelStatus enum names
_MODEL_STATUS_TO_JSON = {"PENDING": "LOGGED_MODEL_PENDING", "READY": "LOGGED_MODEL_READY",
                         "FAILED": "LOGGED_MODEL_UPLOAD_FAILED"}
_MODEL_STATUS_FROM_JSON = {v: k for k, v in _MODEL_STATUS_TO_JSON.items()} | {
    "LOGGED_MODEL_STATUS_UNSPECIFIED": "PENDING", "LOGGED_MODEL_FAILED": "FAILED", "UPLOAD_FAILED": "FAILED"}


# ------------------------------------------------------------------ scalars
def as_int(value: Any, field: str, default: int | None = None) -> int | None:
    """An int64 field (a number or a numeric string); `default` when absent."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise InvalidParameterValue(f"Invalid value {value!r} for '{field}': expected an integer.")
    number = value
    try:
        if isinstance(number, str) and not number.strip().lstrip("+-").isdigit():
            number = float(number)  # protobuf's JSON takes "1e3" for an int64, as long as it is whole
        if isinstance(number, float):
            if not number.is_integer():
                raise ValueError
            return int(number)
        return int(number)
    except (TypeError, ValueError, OverflowError):
        raise InvalidParameterValue(f"Invalid value {value!r} for '{field}': expected an integer.") from None


def as_float(value: Any, field: str) -> float:
    """A double field: a number, or one of "NaN", "Infinity", "-Infinity" as protobuf writes them."""
    if isinstance(value, bool) or value is None:
        raise InvalidParameterValue(f"Invalid value {value!r} for '{field}': expected a number.")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise InvalidParameterValue(f"Invalid value {value!r} for '{field}': expected a number.")


def as_str(value: Any, field: str, default: str | None = None) -> str | None:
    if value is None:
        return default
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise InvalidParameterValue(f"Invalid value {value!r} for '{field}': expected a string.")


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def key_values(items: Any, field: str) -> list[tuple[str, str]]:
    """`[{"key": k, "value": v}, ...]` as pairs (values coerced to text, as MLflow stores them)."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise InvalidParameterValue(f"Invalid '{field}': expected a list of {{key, value}} objects.")
    out = []
    for it in items:
        if not isinstance(it, dict):
            raise InvalidParameterValue(f"Invalid entry {it!r} in '{field}': expected an object with key and value.")
        key = it.get("key")
        if not isinstance(key, str):
            raise InvalidParameterValue(f"Invalid entry {it!r} in '{field}': 'key' must be a string.")
        value = it.get("value", "")
        out.append((key, value if isinstance(value, str) else as_str(value, f"{field}.value", "") or ""))
    return out


def kv_list(d: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in d.items()]


# ------------------------------------------------------------------ metrics
def metric_to_json(m: Metric, run_id: str | None = None) -> dict[str, Any]:
    d = m.to_dict()
    rid = run_id or m.run_id
    if rid:
        d["run_id"] = rid
    return d


def metric_from_json(d: Any) -> Metric:
    if not isinstance(d, dict):
        raise InvalidParameterValue(f"Invalid metric {d!r}: expected an object with key, value, timestamp, step.")
    key = d.get("key")
    if not isinstance(key, str):
        raise InvalidParameterValue(f"Invalid metric {d!r}: 'key' must be a string.")
    if "value" not in d:
        raise InvalidParameterValue(f"Invalid metric {d!r}: 'value' is required.")
    return Metric(key=key, value=as_float(d["value"], "value"),
                  timestamp=as_int(d.get("timestamp"), "timestamp", 0) or 0,
                  step=as_int(d.get("step"), "step", 0) or 0, model_id=d.get("model_id") or None,
                  dataset_name=d.get("dataset_name") or None, dataset_digest=d.get("dataset_digest") or None,
                  run_id=d.get("run_id") or None)


# ------------------------------------------------------------------ experiments
def experiment_to_json(e: Experiment) -> dict[str, Any]:
    return drop_none({
        "experiment_id": e.experiment_id, "name": e.name, "artifact_location": e.artifact_location,
        "lifecycle_stage": e.lifecycle_stage, "last_update_time": e.last_update_time,
        "creation_time": e.creation_time, "tags": kv_list(e.tags),
    })


def experiment_from_json(d: dict[str, Any]) -> Experiment:
    return Experiment(
        experiment_id=str(d.get("experiment_id", "")), name=d.get("name", ""),
        artifact_location=d.get("artifact_location", ""), lifecycle_stage=d.get("lifecycle_stage", "active"),
        tags=dict(key_values(d.get("tags"), "tags")), creation_time=as_int(d.get("creation_time"), "creation_time"),
        last_update_time=as_int(d.get("last_update_time"), "last_update_time"))


# ------------------------------------------------------------------ runs
def run_info_to_json(i: RunInfo) -> dict[str, Any]:
    return drop_none({
        "run_id": i.run_id, "run_uuid": i.run_id, "run_name": i.run_name, "experiment_id": i.experiment_id,
        "user_id": i.user_id, "status": i.status, "start_time": i.start_time, "end_time": i.end_time,
        "artifact_uri": i.artifact_uri, "lifecycle_stage": i.lifecycle_stage,
    })


def run_info_from_json(d: dict[str, Any]) -> RunInfo:
    return RunInfo(
        run_id=d.get("run_id") or d.get("run_uuid") or "", experiment_id=str(d.get("experiment_id", "")),
        run_name=d.get("run_name", ""), user_id=d.get("user_id", ""), status=d.get("status", "RUNNING"),
        start_time=as_int(d.get("start_time"), "start_time"), end_time=as_int(d.get("end_time"), "end_time"),
        artifact_uri=d.get("artifact_uri", ""), lifecycle_stage=d.get("lifecycle_stage", "active"))


def dataset_input_to_json(di: DatasetInput) -> dict[str, Any]:
    ds = di.dataset
    return {"tags": [{"key": t.key, "value": t.value} for t in di.tags], "dataset": drop_none({
        "name": ds.name, "digest": ds.digest, "source_type": ds.source_type, "source": ds.source,
        "schema": ds.schema, "profile": ds.profile})}


def dataset_input_from_json(d: Any) -> DatasetInput:
    if not isinstance(d, dict) or not isinstance(d.get("dataset"), dict):
        raise InvalidParameterValue(f"Invalid dataset input {d!r}: expected an object with 'dataset' and 'tags'.")
    ds = d["dataset"]
    for required in ("name", "digest", "source_type", "source"):
        if not isinstance(ds.get(required), str):
            raise InvalidParameterValue(f"Invalid dataset {ds!r}: '{required}' must be a string.")
    return DatasetInput(
        dataset=Dataset(name=ds["name"], digest=ds["digest"], source_type=ds["source_type"], source=ds["source"],
                        schema=ds.get("schema"), profile=ds.get("profile")),
        tags=[InputTag(k, v) for k, v in key_values(d.get("tags"), "tags")])


def run_to_json(r: Run) -> dict[str, Any]:
    data = r.data
    metric_objs = data._metric_objs or [Metric(k, v, 0, 0) for k, v in data.metrics.items()]
    return {
        "info": run_info_to_json(r.info),
        "data": {"metrics": [metric_to_json(m) for m in metric_objs], "params": kv_list(data.params),
                 "tags": kv_list(data.tags)},
        "inputs": {"dataset_inputs": [dataset_input_to_json(d) for d in r.inputs.dataset_inputs],
                   "model_inputs": [{"model_id": m.model_id} for m in r.inputs.model_inputs]},
        "outputs": {"model_outputs": [{"model_id": m.model_id, "step": m.step} for m in r.outputs.model_outputs]},
    }


def run_from_json(d: dict[str, Any]) -> Run:
    data = d.get("data") or {}
    metrics = [metric_from_json(m) for m in data.get("metrics") or []]
    inputs = d.get("inputs") or {}
    outputs = d.get("outputs") or {}
    return Run(
        info=run_info_from_json(d.get("info") or {}),
        data=RunData(metrics={m.key: m.value for m in metrics}, params=dict(key_values(data.get("params"), "params")),
                     tags=dict(key_values(data.get("tags"), "tags")), _metric_objs=metrics),
        inputs=RunInputs(dataset_inputs=[dataset_input_from_json(x) for x in inputs.get("dataset_inputs") or []],
                         model_inputs=[LoggedModelInput(x["model_id"]) for x in inputs.get("model_inputs") or []]),
        outputs=RunOutputs(model_outputs=[LoggedModelOutput(x["model_id"], as_int(x.get("step"), "step", 0) or 0)
                                          for x in outputs.get("model_outputs") or []]))


# ------------------------------------------------------------------ logged models
def model_status_to_json(status: str) -> str:
    return _MODEL_STATUS_TO_JSON.get(status, "LOGGED_MODEL_STATUS_UNSPECIFIED")


def model_status_from_json(value: Any) -> str:
    """MLflow's enum name (or number, or our own short name) as our status string."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = {0: "LOGGED_MODEL_STATUS_UNSPECIFIED", 1: "LOGGED_MODEL_PENDING", 2: "LOGGED_MODEL_READY",
                 3: "LOGGED_MODEL_UPLOAD_FAILED"}.get(value, str(value))
    if isinstance(value, str):
        if value in _MODEL_STATUS_FROM_JSON:
            return _MODEL_STATUS_FROM_JSON[value]
        if value in _MODEL_STATUS_TO_JSON:
            return value
    raise InvalidParameterValue(
        f"Invalid logged model status {value!r}: expected LOGGED_MODEL_PENDING, LOGGED_MODEL_READY or "
        "LOGGED_MODEL_UPLOAD_FAILED.")


def logged_model_to_json(m: LoggedModel) -> dict[str, Any]:
    info = drop_none({
        "model_id": m.model_id, "experiment_id": m.experiment_id, "name": m.name,
        "creation_timestamp_ms": m.creation_timestamp, "last_updated_timestamp_ms": m.last_updated_timestamp,
        "artifact_uri": m.artifact_location, "status": model_status_to_json(m.status),
        "model_type": m.model_type or None, "source_run_id": m.source_run_id or None,
        "status_message": m.status_message or None, "tags": kv_list(m.tags),
    })
    return {"info": info, "data": {"params": kv_list(m.params), "metrics": [metric_to_json(x) for x in m.metrics]}}


def logged_model_from_json(d: dict[str, Any]) -> LoggedModel:
    info = d.get("info") or {}
    data = d.get("data") or {}
    return LoggedModel(
        model_id=info.get("model_id", ""), experiment_id=str(info.get("experiment_id", "")),
        name=info.get("name", ""), artifact_location=info.get("artifact_uri", ""),
        creation_timestamp=as_int(info.get("creation_timestamp_ms"), "creation_timestamp_ms", 0) or 0,
        last_updated_timestamp=as_int(info.get("last_updated_timestamp_ms"), "last_updated_timestamp_ms", 0) or 0,
        status=model_status_from_json(info.get("status", "LOGGED_MODEL_PENDING")),
        source_run_id=info.get("source_run_id") or None, model_type=info.get("model_type") or None,
        status_message=info.get("status_message") or None, tags=dict(key_values(info.get("tags"), "tags")),
        params=dict(key_values(data.get("params"), "params")),
        metrics=[metric_from_json(x) for x in data.get("metrics") or []])


# ------------------------------------------------------------------ files
def file_info_to_json(f: FileInfo, path: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"path": f.path if path is None else path, "is_dir": f.is_dir}
    if f.file_size is not None and not f.is_dir:
        d["file_size"] = f.file_size
    return d


def file_info_from_json(d: dict[str, Any], prefix: str = "") -> FileInfo:
    path = d.get("path", "")
    if prefix:
        path = f"{prefix}/{path}"
    size = d.get("file_size")
    return FileInfo(path=path, is_dir=bool(d.get("is_dir", False)),
                    file_size=as_int(size, "file_size") if size is not None else None)
