"""`/mlflow/experiments/*`: create, get, get-by-name, search, update, delete, restore, tags, and the
UI's search-datasets."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mltrail.entities import ViewType
from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.server._http import Call, error_response, json_endpoint
from mltrail.server.auth.levels import EXPERIMENT
from mltrail.store.rest_json import experiment_to_json, key_values

# search_datasets_impl's limit on experiment ids per request
MAX_SEARCH_DATASETS_EXPERIMENTS = 20


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
        page_token=call.text("page_token") or None, readable=call.readable(EXPERIMENT))
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


def search_datasets(call: Call) -> dict[str, Any]:
    """MLflow UI's `POST /ajax-api/2.0/mlflow/experiments/search-datasets` `{"experiment_ids": [...]}`.

    Answers `{"dataset_summaries": [{"experiment_id", "name", "digest", "context"?}, ...]}` as
    search_datasets_impl does: `context` (the input's `mlflow.data.context` tag) left out when
    there is none, and `{}` when nothing matches (protobuf's JSON leaves out an empty list).
    """
    ids = call.bounded_ids("experiment_ids", "experiment_id", "SearchDatasets", MAX_SEARCH_DATASETS_EXPERIMENTS)
    summaries = [{"experiment_id": exp_id, "name": name, "digest": digest, **({"context": ctx} if ctx else {})}
                 for exp_id, name, digest, ctx in call.store.search_datasets(ids)]
    return {"dataset_summaries": summaries} if summaries else {}


_search_datasets_json = json_endpoint(search_datasets)


async def search_datasets_endpoint(request: Request) -> Response:
    """search-datasets checks the Content-Type first (MLflow's _validate_content_type: a 400)."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        return error_response(InvalidParameterValue("Bad Request. Content-Type header is missing."))
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        return error_response(InvalidParameterValue("Bad Request. Content-Type must be one of ['application/json']."))
    return await _search_datasets_json(request)


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

# (methods, path, raw endpoint): MLflow serves these under /ajax-api/2.0/mlflow only (mlflow/server/__init__.py)
AJAX_RAW_ROUTES = [
    (["POST"], "/mlflow/experiments/search-datasets", search_datasets_endpoint),
]
