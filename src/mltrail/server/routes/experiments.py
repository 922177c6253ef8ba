"""`/mlflow/experiments/*`: create, get, get-by-name, search, update, delete, restore, tags."""

from __future__ import annotations

from typing import Any

from mltrail.entities import ViewType
from mltrail.errors import ResourceDoesNotExist
from mltrail.server._http import Call
from mltrail.store.rest_json import experiment_to_json, key_values


def create_experiment(call: Call) -> dict[str, Any]:
    name = call.req("name")
    location = call.ctx.check_artifact_location(call.text("artifact_location"))
    tags = dict(key_values(call.data.get("tags"), "tags"))
    return {"experiment_id": call.store.create_experiment(name, location, tags)}


def get_experiment(call: Call) -> dict[str, Any]:
    return {"experiment": experiment_to_json(call.store.get_experiment(call.req("experiment_id")))}


def get_experiment_by_name(call: Call) -> dict[str, Any]:
    name = call.req("experiment_name")
    exp = call.store.get_experiment_by_name(name)
    if exp is None:
        raise ResourceDoesNotExist(f"Could not find experiment with name '{name}'.")
    return {"experiment": experiment_to_json(exp)}


def search_experiments(call: Call) -> dict[str, Any]:
    page = call.store.search_experiments(
        view_type=ViewType.from_any(call.data.get("view_type")), max_results=call.integer("max_results", 1000),
        filter_string=call.text("filter") or None, order_by=[str(o) for o in call.items("order_by")],
        page_token=call.text("page_token") or None)
    out: dict[str, Any] = {"experiments": [experiment_to_json(e) for e in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


def update_experiment(call: Call) -> dict[str, Any]:
    new_name = call.text("new_name")
    if new_name:
        call.store.rename_experiment(call.req("experiment_id"), new_name)
    return {}


def delete_experiment(call: Call) -> dict[str, Any]:
    call.store.delete_experiment(call.req("experiment_id"))
    return {}


def restore_experiment(call: Call) -> dict[str, Any]:
    call.store.restore_experiment(call.req("experiment_id"))
    return {}


def set_experiment_tag(call: Call) -> dict[str, Any]:
    call.store.set_experiment_tag(call.req("experiment_id"), call.req("key"), call.text("value", default="") or "")
    return {}


def delete_experiment_tag(call: Call) -> dict[str, Any]:
    call.store.delete_experiment_tag(call.req("experiment_id"), call.req("key"))
    return {}


ROUTES = [
    (["POST"], "/experiments/create", create_experiment),
    (["GET"], "/experiments/get", get_experiment),
    (["GET"], "/experiments/get-by-name", get_experiment_by_name),
    (["GET", "POST"], "/experiments/search", search_experiments),
    (["POST"], "/experiments/update", update_experiment),
    (["POST"], "/experiments/delete", delete_experiment),
    (["POST"], "/experiments/restore", restore_experiment),
    (["POST"], "/experiments/set-experiment-tag", set_experiment_tag),
    (["POST"], "/experiments/delete-experiment-tag", delete_experiment_tag),
]
