"""`/mlflow/logged-models*`: MLflow 3's logged models (create, get, finalize, delete, search,
tags, params)."""

from __future__ import annotations

from typing import Any

from mltrail.errors import InvalidParameterValue
from mltrail.server._http import Call
from mltrail.server.auth.levels import EXPERIMENT
from mltrail.server.idempotency import KEY_FIELD
from mltrail.store.rest_json import key_values, logged_model_to_json, model_status_from_json


def create_logged_model(call: Call) -> dict[str, Any]:
    def create() -> dict[str, Any]:
        model = call.store.create_logged_model(
            call.req("experiment_id"), name=call.text("name") or None,
            source_run_id=call.text("source_run_id") or None, tags=dict(key_values(call.data.get("tags"), "tags")),
            params=dict(key_values(call.data.get("params"), "params")), model_type=call.text("model_type") or None)
        return {"model": logged_model_to_json(model)}

    # a resend after a lost answer (same key) gets the model the first request created
    return call.ctx.idempotency.once("logged-models/create", call.data.get(KEY_FIELD),
                                     create)


def _model_id(call: Call) -> str:
    return str(call.path_params["model_id"])


def get_logged_model(call: Call) -> dict[str, Any]:
    return {"model": logged_model_to_json(call.store.get_logged_model(_model_id(call)))}


def finalize_logged_model(call: Call) -> dict[str, Any]:
    status = model_status_from_json(call.data.get("status"))
    return {"model": logged_model_to_json(call.store.finalize_logged_model(_model_id(call), status))}


def delete_logged_model(call: Call) -> dict[str, Any]:
    call.store.delete_logged_model(_model_id(call))
    return {}


def _order_by(items: list[Any]) -> list[str]:
    out = []
    for o in items:
        if isinstance(o, str):
            out.append(o)
        elif isinstance(o, dict) and isinstance(o.get("field_name"), str):
            asc = o.get("ascending", True)
            out.append(f"{o['field_name']} {'ASC' if asc in (True, 'true', 'True', 1) else 'DESC'}")
        else:
            raise InvalidParameterValue(f"Invalid order_by entry {o!r}: expected {{field_name, ascending}}.")
    return out


def search_logged_models(call: Call) -> dict[str, Any]:
    page = call.store.search_logged_models(
        experiment_ids=[str(e) for e in call.items("experiment_ids")] or None,
        filter_string=call.text("filter") or None, max_results=call.integer("max_results", 100),
        order_by=_order_by(call.items("order_by")), page_token=call.text("page_token") or None,
        readable=call.readable(EXPERIMENT))
    out: dict[str, Any] = {"models": [logged_model_to_json(m) for m in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


def set_logged_model_tags(call: Call) -> dict[str, Any]:
    model_id = _model_id(call)
    call.store.set_logged_model_tags(model_id, dict(key_values(call.data.get("tags"), "tags")))
    return {"model": logged_model_to_json(call.store.get_logged_model(model_id))}


def delete_logged_model_tag(call: Call) -> dict[str, Any]:
    call.store.delete_logged_model_tag(_model_id(call), str(call.path_params["tag_key"]))
    return {}


def log_logged_model_params(call: Call) -> dict[str, Any]:
    call.store.log_logged_model_params(_model_id(call), dict(key_values(call.data.get("params"), "params")))
    return {}


ROUTES = [
    (["POST"], "/logged-models", create_logged_model),
    (["POST"], "/logged-models/search", search_logged_models),
    (["GET"], "/logged-models/{model_id}", get_logged_model),
    (["PATCH"], "/logged-models/{model_id}", finalize_logged_model),
    (["DELETE"], "/logged-models/{model_id}", delete_logged_model),
    (["PATCH"], "/logged-models/{model_id}/tags", set_logged_model_tags),
    (["DELETE"], "/logged-models/{model_id}/tags/{tag_key:path}", delete_logged_model_tag),
    (["POST"], "/logged-models/{model_id}/params", log_logged_model_params),
]
