"""`/mlflow/registered-models/*` and `/mlflow/model-versions/*`: the model registry, with MLflow's JSON.

DELETE requests carry their parameters in a JSON body (MLflow's client sends them so) or in the
query string. Version sources are checked by the store, so the server registers nothing that
points outside a run's or logged model's artifacts.
"""

from __future__ import annotations

from typing import Any

from mltrail.errors import InvalidParameterValue
from mltrail.server._http import Call
from mltrail.server.auth.levels import REGISTERED_MODEL
from mltrail.store.rest_json import key_values


def _rm(model: Any) -> dict[str, Any]:
    return {"registered_model": model.to_dict()}


def _mv(version: Any) -> dict[str, Any]:
    return {"model_version": version.to_dict()}


def _max_results(call: Call, default: int) -> int:
    n = call.integer("max_results", default)
    return default if n is None else n


def _order_by(call: Call) -> list[str]:
    items = call.items("order_by")
    if not all(isinstance(o, str) for o in items):
        raise InvalidParameterValue(f"Invalid order_by {items!r}: expected a list of strings.")
    return items


def _tags(call: Call) -> dict[str, str]:
    return dict(key_values(call.data.get("tags"), "tags"))


# ------------------------------------------------------------------ registered models
def create_registered_model(call: Call) -> dict[str, Any]:
    return _rm(call.store.create_registered_model(call.req("name"), _tags(call), call.text("description")))


def get_registered_model(call: Call) -> dict[str, Any]:
    return _rm(call.store.get_registered_model(call.req("name")))


def rename_registered_model(call: Call) -> dict[str, Any]:
    return _rm(call.store.rename_registered_model(call.req("name"), call.req("new_name")))


def update_registered_model(call: Call) -> dict[str, Any]:
    return _rm(call.store.update_registered_model(call.req("name"), call.text("description")))


def delete_registered_model(call: Call) -> dict[str, Any]:
    call.store.delete_registered_model(call.req("name"))
    return {}


def search_registered_models(call: Call) -> dict[str, Any]:
    page = call.store.search_registered_models(call.text("filter") or None, _max_results(call, 100), _order_by(call),
                                               call.text("page_token") or None,
                                               readable=call.readable(REGISTERED_MODEL))
    out: dict[str, Any] = {"registered_models": [m.to_dict() for m in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


def get_latest_versions(call: Call) -> dict[str, Any]:
    stages = [str(s) for s in call.items("stages")]
    versions = call.store.get_latest_versions(call.req("name"), stages or None)
    return {"model_versions": [mv.to_dict() for mv in versions]}


def set_registered_model_tag(call: Call) -> dict[str, Any]:
    call.store.set_registered_model_tag(call.req("name"), call.req("key"), call.text("value", default="") or "")
    return {}


def delete_registered_model_tag(call: Call) -> dict[str, Any]:
    call.store.delete_registered_model_tag(call.req("name"), call.req("key"))
    return {}


def set_registered_model_alias(call: Call) -> dict[str, Any]:
    call.store.set_registered_model_alias(call.req("name"), call.req("alias"), call.req("version"))
    return {}


def delete_registered_model_alias(call: Call) -> dict[str, Any]:
    call.store.delete_registered_model_alias(call.req("name"), call.req("alias"))
    return {}


def get_model_version_by_alias(call: Call) -> dict[str, Any]:
    return _mv(call.store.get_model_version_by_alias(call.req("name"), call.req("alias")))


# ------------------------------------------------------------------ model versions
def create_model_version(call: Call) -> dict[str, Any]:
    return _mv(call.store.create_model_version(
        call.req("name"), call.req("source"), run_id=call.text("run_id") or None, tags=_tags(call),
        run_link=call.text("run_link") or None, description=call.text("description") or None,
        model_id=call.text("model_id") or None))


def get_model_version(call: Call) -> dict[str, Any]:
    return _mv(call.store.get_model_version(call.req("name"), call.req("version")))


def update_model_version(call: Call) -> dict[str, Any]:
    return _mv(call.store.update_model_version(call.req("name"), call.req("version"), call.text("description")))


def delete_model_version(call: Call) -> dict[str, Any]:
    call.store.delete_model_version(call.req("name"), call.req("version"))
    return {}


def search_model_versions(call: Call) -> dict[str, Any]:
    page = call.store.search_model_versions(call.text("filter") or None, _max_results(call, 10_000),
                                            _order_by(call) or None, call.text("page_token") or None,
                                            readable=call.readable(REGISTERED_MODEL))
    out: dict[str, Any] = {"model_versions": [mv.to_dict() for mv in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


def transition_model_version_stage(call: Call) -> dict[str, Any]:
    return _mv(call.store.transition_model_version_stage(
        call.req("name"), call.req("version"), call.req("stage"), call.flag("archive_existing_versions")))


def get_model_version_download_uri(call: Call) -> dict[str, Any]:
    return {"artifact_uri": call.store.get_model_version_download_uri(call.req("name"), call.req("version"))}


def set_model_version_tag(call: Call) -> dict[str, Any]:
    call.store.set_model_version_tag(call.req("name"), call.req("version"), call.req("key"),
                                     call.text("value", default="") or "")
    return {}


def delete_model_version_tag(call: Call) -> dict[str, Any]:
    call.store.delete_model_version_tag(call.req("name"), call.req("version"), call.req("key"))
    return {}


ROUTES = [
    (["POST"], "/registered-models/create", create_registered_model),
    (["GET"], "/registered-models/get", get_registered_model),
    (["POST"], "/registered-models/rename", rename_registered_model),
    (["PATCH"], "/registered-models/update", update_registered_model),
    (["DELETE"], "/registered-models/delete", delete_registered_model),
    (["GET", "POST"], "/registered-models/search", search_registered_models),
    (["GET", "POST"], "/registered-models/get-latest-versions", get_latest_versions),
    (["POST"], "/registered-models/set-tag", set_registered_model_tag),
    (["DELETE"], "/registered-models/delete-tag", delete_registered_model_tag),
    (["POST"], "/registered-models/alias", set_registered_model_alias),
    (["DELETE"], "/registered-models/alias", delete_registered_model_alias),
    (["GET"], "/registered-models/alias", get_model_version_by_alias),
    (["POST"], "/model-versions/create", create_model_version),
    (["GET"], "/model-versions/get", get_model_version),
    (["PATCH"], "/model-versions/update", update_model_version),
    (["DELETE"], "/model-versions/delete", delete_model_version),
    (["GET", "POST"], "/model-versions/search", search_model_versions),
    (["POST"], "/model-versions/transition-stage", transition_model_version_stage),
    (["GET"], "/model-versions/get-download-uri", get_model_version_download_uri),
    (["POST"], "/model-versions/set-tag", set_model_version_tag),
    (["DELETE"], "/model-versions/delete-tag", delete_model_version_tag),
]
