"""`/mlflow/runs/*`: create, get, update, delete, restore, search, logging (metric, param, tag,
batch), inputs, outputs and the logged-model history tag."""

from __future__ import annotations

import datetime
import json
from typing import Any

from mltrail.entities import LoggedModelInput, LoggedModelOutput, Metric, Param, RunStatus, RunTag, ViewType
from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.server._http import Call
from mltrail.server.auth.levels import EXPERIMENT
from mltrail.server.idempotency import KEY_FIELD
from mltrail.store.base import TrackingStore
from mltrail.store.rest_json import (
    as_float,
    as_int,
    dataset_input_from_json,
    key_values,
    metric_from_json,
    run_info_to_json,
    run_to_json,
)


def _run_id(call: Call) -> str:
    return call.req("run_id", "run_uuid")


def create_run(call: Call) -> dict[str, Any]:
    tags = [RunTag(k, v) for k, v in key_values(call.data.get("tags"), "tags")]

    def create() -> dict[str, Any]:
        run = call.store.create_run(call.text("experiment_id") or "0", call.text("user_id") or "",
                                    call.integer("start_time"), tags, call.text("run_name") or None)
        return {"run": run_to_json(run)}

    # a resend after a lost answer (same key) gets the run the first request created
    return call.ctx.idempotency.once("runs/create", call.data.get(KEY_FIELD), create)


def get_run(call: Call) -> dict[str, Any]:
    return {"run": run_to_json(call.store.get_run(_run_id(call)))}


def update_run(call: Call) -> dict[str, Any]:
    raw = call.data.get("status")
    if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= len(RunStatus.ALL):
        raw = RunStatus.ALL[raw - 1]  # the enum's number (RunStatus.ALL is in the proto's order)
    status = None if raw is None else str(raw)  # the store names what it accepts
    info = call.store.update_run_info(_run_id(call), status, call.integer("end_time"), call.text("run_name") or None)
    return {"run_info": run_info_to_json(info)}


def delete_run(call: Call) -> dict[str, Any]:
    call.store.delete_run(call.req("run_id"))
    return {}


def restore_run(call: Call) -> dict[str, Any]:
    call.store.restore_run(call.req("run_id"))
    return {}


def search_runs(call: Call) -> dict[str, Any]:
    page = call.store.search_runs(
        experiment_ids=[str(e) for e in call.items("experiment_ids")], filter_string=call.text("filter") or None,
        run_view_type=ViewType.from_any(call.data.get("run_view_type")),
        max_results=call.integer("max_results", 1000), order_by=[str(o) for o in call.items("order_by")],
        page_token=call.text("page_token") or None, readable=call.readable(EXPERIMENT))
    out: dict[str, Any] = {"runs": [run_to_json(r) for r in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


def log_metric(call: Call) -> dict[str, Any]:
    m = metric_from_json({k: call.data.get(k) for k in ("key", "value", "timestamp", "step", "model_id",
                                                         "dataset_name", "dataset_digest") if k in call.data})
    _store_metrics(call, _run_id(call), [m], [], [], None)
    return {}


def log_param(call: Call) -> dict[str, Any]:
    call.store.log_batch(_run_id(call), params=[Param(call.req("key"), call.text("value", default="") or "")])
    return {}


def set_tag(call: Call) -> dict[str, Any]:
    call.store.log_batch(_run_id(call), tags=[RunTag(call.req("key"), call.text("value", default="") or "")])
    return {}


def delete_tag(call: Call) -> dict[str, Any]:
    call.store.delete_tag(call.req("run_id"), call.req("key"))
    return {}


def _metrics(items: Any) -> list[Metric]:
    """The log-batch hot path: plain dicts to Metric without per-field helper calls where possible."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise InvalidParameterValue("Invalid 'metrics': expected a list of metric objects.")
    out = []
    for d in items:
        if not isinstance(d, dict):
            raise InvalidParameterValue(f"Invalid metric {d!r}: expected an object with key, value, timestamp, step.")
        value, ts, step = d.get("value"), d.get("timestamp", 0), d.get("step", 0)
        if type(value) is not float:
            value = as_float(value, "value")
        if type(ts) is not int:
            ts = as_int(ts, "timestamp", 0)
        if type(step) is not int:
            step = as_int(step, "step", 0)
        key = d.get("key")
        if not isinstance(key, str):
            raise InvalidParameterValue(f"Invalid metric {d!r}: 'key' must be a string.")
        out.append(Metric(key, value, ts, step, d.get("model_id") or None, d.get("dataset_name") or None,
                          d.get("dataset_digest") or None))
    return out


def _model_echoes(store: TrackingStore, run_id: str, metrics: list[Metric]) -> tuple[list[Metric], list[Metric]]:
    """(metrics to store, echoes to link to their logged models only).

    MLflow 3 clients log a run's metrics again with the `model_id` of the model logged from it;
    MLflow stores an identical point (key, step, timestamp, value) once and links it to the
    model, so the run's history does not grow a duplicate. Only points carrying a model_id are
    looked up (one index range scan per key and step). The store links the points it stores.
    """
    linked = [m for m in metrics if m.model_id]
    if not linked:
        return metrics, []
    seen = set()
    for key, step in {(m.key, m.step) for m in linked}:
        for p in store.get_metric_history_sampled(run_id, key, 0, step, step):
            seen.add((key, p.step, p.timestamp, p.value))
    keep: list[Metric] = []
    echoes: list[Metric] = []
    for m in metrics:
        is_echo = bool(m.model_id) and (m.key, m.step, m.timestamp, m.value) in seen
        (echoes if is_echo else keep).append(m)
    return keep, echoes


def _link_to_models(store: TrackingStore, run_id: str, linked: list[Metric]) -> None:
    by_model: dict[str, list[Metric]] = {}
    for m in linked:
        by_model.setdefault(m.model_id or "", []).append(m)
    for model_id, ms in by_model.items():
        try:
            store.log_logged_model_metrics(model_id, run_id, ms)
        except ResourceDoesNotExist:  # a metric naming an unknown model still belongs to the run
            pass


def _store_metrics(call: Call, run_id: str, metrics: list[Metric], params: list[Param], tags: list[RunTag],
                   batch_id: str | None) -> None:
    metrics, echoes = _model_echoes(call.store, run_id, metrics)
    if batch_id:
        call.store.log_batch(run_id, metrics=metrics, params=params, tags=tags, batch_id=batch_id)
    elif metrics or params or tags:
        call.store.log_batch(run_id, metrics=metrics, params=params, tags=tags)
    if echoes:
        _link_to_models(call.store, run_id, echoes)


def log_batch(call: Call) -> dict[str, Any]:
    run_id = call.req("run_id")
    metrics = _metrics(call.data.get("metrics"))
    params = [Param(k, v) for k, v in key_values(call.data.get("params"), "params")]
    tags = [RunTag(k, v) for k, v in key_values(call.data.get("tags"), "tags")]
    batch_id = call.text("batch_id") or None  # the journaling client's id: a resent batch lands once
    if batch_id and len(batch_id) > 64:
        raise InvalidParameterValue(f"Invalid batch_id of length {len(batch_id)}: at most 64 characters.")
    _store_metrics(call, run_id, metrics, params, tags, batch_id)
    return {}


def log_inputs(call: Call) -> dict[str, Any]:
    """MLflow's LogInputs: datasets and logged models (`models: [{model_id}]`) the run used (the
    validation table has refused lists that are not lists)."""
    run_id = call.req("run_id")
    datasets = [dataset_input_from_json(d) for d in call.items("datasets")]
    models = []
    for m in call.items("models"):
        model_id = m.get("model_id") if isinstance(m, dict) else None
        if not isinstance(model_id, str) or not model_id:
            raise InvalidParameterValue(f"Invalid model input {m!r}: expected an object with a model_id.")
        models.append(LoggedModelInput(model_id))
    call.store.log_inputs(run_id, datasets, models)
    return {}


def log_outputs(call: Call) -> dict[str, Any]:
    models = []
    for m in call.items("models"):
        if not isinstance(m, dict) or not m.get("model_id"):
            raise InvalidParameterValue(f"Invalid model output {m!r}: expected an object with model_id and step.")
        models.append(LoggedModelOutput(str(m["model_id"]), as_int(m.get("step"), "step", 0) or 0))
    call.store.log_outputs(call.req("run_id"), models)
    return {}


_MODEL_REQUIRED = ("artifact_path", "flavors", "utc_time_created", "run_id")


def _model_tags_dict(model: dict[str, Any]) -> dict[str, Any]:
    """What MLflow keeps of a logged model in the history tag: `Model.from_dict(model).get_tags_dict()`.

    run_id and artifact_path (left out when null), utc_time_created (as text; now when empty),
    model_uuid (null when absent), then the flavors, each without its "config"; the signature,
    metadata and every other field are dropped. Key order is MLflow's (the Model attributes' order).
    """
    out: dict[str, Any] = {}
    if model.get("run_id") is not None:
        out["run_id"] = model["run_id"]
    if model.get("artifact_path") is not None:
        out["artifact_path"] = model["artifact_path"]
    created = model.get("utc_time_created")
    out["utc_time_created"] = str(created or datetime.datetime.now(datetime.UTC).replace(tzinfo=None))
    out["model_uuid"] = model.get("model_uuid")
    flavors = model.get("flavors")
    if flavors is None:
        flavors = {}
    if not isinstance(flavors, dict):
        raise InvalidParameterValue(f"Invalid model_json: 'flavors' must be an object, got {flavors!r}.")
    out["flavors"] = {name: ({k: val for k, val in conf.items() if k != "config"} if isinstance(conf, dict) else conf)
                      for name, conf in flavors.items()}
    return out


def log_model(call: Call) -> dict[str, Any]:
    """MLflow's LogModel (handlers.py `_log_model`, store `record_logged_model`): append the model's
    summary to the run's `mlflow.log-model.history` tag, in one transaction."""
    run_id = call.req("run_id")
    raw = call.req("model_json")
    try:
        model = json.loads(raw)
    except ValueError:
        model = None
    if not isinstance(model, dict):  # MLflow's words (a JSON value that is not an object: MLflow answers 500)
        raise InvalidParameterValue(f"Malformed model info. \n {raw} \n is not a valid JSON.")
    missing = set(_MODEL_REQUIRED) - set(model)
    if missing:
        shown = "{" + ", ".join(repr(f) for f in sorted(missing)) + "}"  # MLflow prints the set
        raise InvalidParameterValue(f"Model json is missing mandatory fields: {shown}")
    call.store.record_logged_model(run_id, _model_tags_dict(model))
    return {}


ROUTES = [
    (["POST"], "/runs/log-batch", log_batch),
    (["POST"], "/runs/log-metric", log_metric),
    (["POST"], "/runs/log-parameter", log_param),
    (["POST"], "/runs/set-tag", set_tag),
    (["POST"], "/runs/create", create_run),
    (["GET"], "/runs/get", get_run),
    (["POST"], "/runs/update", update_run),
    (["POST"], "/runs/delete", delete_run),
    (["POST"], "/runs/restore", restore_run),
    (["POST"], "/runs/search", search_runs),
    (["POST"], "/runs/delete-tag", delete_tag),
    (["POST"], "/runs/log-inputs", log_inputs),
    (["POST"], "/runs/outputs", log_outputs),
    (["POST"], "/runs/log-model", log_model),
]
