"""Resource locators: which experiments or registered models a request touches, for its rule's check.

A rule names its locator (`experiment(READ, "run_id")`); the locator reads the request's fields
(JSON body over query parameters, and path parameters) and answers the `Target`s to check. A
field that is missing gives no target: the handler then refuses the request with its own 400,
and touches nothing. A run or logged model that does not exist gives no target either: the
handler answers its 404, as it would to anyone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mltrail._paths import safe_relpath
from mltrail.errors import MltrailException
from mltrail.server.auth.rules import EXPERIMENT, REGISTERED_MODEL
from mltrail.store.sql.store import SqlTrackingStore
from mltrail.uri_forms import is_models_uri, is_runs_uri, parse_model_uri


@dataclass(frozen=True)
class Target:
    """One resource a request needs a level on.

    Args:
        resource_type: "experiment" or "registered_model".
        resource_id: the experiment id or the model name.
        level: the level needed, when not the rule's own (e.g. READ on a version's source run).
        missing: for a lookup by name, the error message a missing resource gets: a caller who
            may not read it gets the same answer, so the answer does not tell that it exists.
    """

    resource_type: str
    resource_id: str
    level: str = ""
    missing: str = ""


class Fields(Protocol):
    """A request's fields, whatever carried them (JSON body, query string, path)."""

    def one(self, name: str) -> str | None:
        """The field's value as text (None when absent or empty)."""

    def many(self, name: str) -> list[str]:
        """A repeated field's values as text."""

    def raw(self, name: str) -> Any:
        """The field as the request carried it (a JSON list of objects, say)."""


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value)
    return text or None


class CallFields:
    """The fields of a JSON route's call: body over query parameters, then path parameters."""

    def __init__(self, data: dict[str, Any], path_params: dict[str, Any], items: Callable[[str], list[Any]]) -> None:
        self.data = data
        self.path_params = path_params
        self.items = items

    def one(self, name: str) -> str | None:
        return _text(self.data.get(name)) or _text(self.path_params.get(name))

    def many(self, name: str) -> list[str]:
        return [t for t in (_text(v) for v in self.items(name)) if t]

    def raw(self, name: str) -> Any:
        return self.data.get(name)


class RequestFields:
    """The fields of a raw or UI route: path parameters, then query parameters."""

    def __init__(self, path_params: dict[str, Any], query: Any) -> None:
        self.path_params = path_params
        self.query = query

    def one(self, name: str) -> str | None:
        return _text(self.path_params.get(name)) or _text(self.query.get(name))

    def many(self, name: str) -> list[str]:
        return [v for v in self.query.getlist(name) if v]

    def raw(self, name: str) -> Any:
        return self.query.get(name)


Locator = Callable[[Fields, SqlTrackingStore], list[Target]]


def _experiments(ids: list[str], level: str = "") -> list[Target]:
    return [Target(EXPERIMENT, i, level) for i in dict.fromkeys(ids)]


def _of_runs(store: SqlTrackingStore, run_ids: list[str], level: str = "") -> list[Target]:
    if not run_ids:
        return []
    found = store.experiment_ids_of_runs(run_ids)
    return _experiments(list(found.values()), level)


def _of_models(store: SqlTrackingStore, model_ids: list[str], level: str = "") -> list[Target]:
    if not model_ids:
        return []
    found = store.experiment_ids_of_logged_models(model_ids)
    return _experiments(list(found.values()), level)


def _split(values: list[str]) -> list[str]:
    """Ids given repeated and/or comma-separated (`?run_ids=a,b&run_ids=c`)."""
    return [x.strip() for v in values for x in v.split(",") if x.strip()]


def experiment_id(f: Fields, store: SqlTrackingStore) -> list[Target]:
    found = f.one("experiment_id")
    return _experiments([found]) if found else []


def create_run(f: Fields, store: SqlTrackingStore) -> list[Target]:
    # the handler creates the run in the default experiment when none is named
    return _experiments([f.one("experiment_id") or "0"])


def experiment_ids(f: Fields, store: SqlTrackingStore) -> list[Target]:
    return _experiments(_split(f.many("experiment_ids")))


def experiment_name(f: Fields, store: SqlTrackingStore) -> list[Target]:
    name = f.one("experiment_name")
    if not name:
        return []
    exp = store.get_experiment_by_name(name)
    if exp is None:
        return []
    return [Target(EXPERIMENT, exp.experiment_id, missing=f"Could not find experiment with name '{name}'.")]


def run_id(f: Fields, store: SqlTrackingStore) -> list[Target]:
    found = f.one("run_id") or f.one("run_uuid")
    return _of_runs(store, [found]) if found else []


def run_ids(f: Fields, store: SqlTrackingStore) -> list[Target]:
    ids = _split(f.many("run_ids")) + _split(f.many("run_id"))
    single = f.one("run_id")
    if single:
        ids.append(single)
    return _of_runs(store, list(dict.fromkeys(ids)))


def _model_ids_in(f: Fields) -> list[str]:
    """Logged models a logging call writes to: `model_id`, `metrics[].model_id`, `models[].model_id`."""
    ids = [f.one("model_id") or ""]
    for field in ("metrics", "models"):
        items = f.raw(field)
        if isinstance(items, list):
            ids += [str(i.get("model_id") or "") for i in items if isinstance(i, dict)]
    return [i for i in dict.fromkeys(ids) if i]


def run_and_models(f: Fields, store: SqlTrackingStore) -> list[Target]:
    """The run's experiment, and the experiment of each logged model the call writes metrics or
    links to (as MLflow's validators: UPDATE on every one, so a caller cannot write into a model
    of an experiment it may only read)."""
    return run_id(f, store) + _of_models(store, _model_ids_in(f))


def logged_model(f: Fields, store: SqlTrackingStore) -> list[Target]:
    found = f.one("model_id")
    return _of_models(store, [found]) if found else []


def proxy_path(f: Fields, store: SqlTrackingStore) -> list[Target]:
    """The experiment an artifact-proxy path lies in: its first segment (`<experiment_id>/<run_id>/...`).

    A path whose first segment is no experiment id (the proxy's root, say) is checked as a
    resource nobody was granted: the default permission decides, or a role pattern."""
    rel = safe_relpath(f.one("path") or "", "path")
    first = rel.split("/", 1)[0]
    return _experiments([first if first.isdigit() else ""])


def artifact_owner(f: Fields, store: SqlTrackingStore) -> list[Target]:
    """`run_id=` or `model_id=` (UI data), or the `/ui/files/<owner>/<owner_id>/` path."""
    owner, owner_id = f.one("owner"), f.one("owner_id")
    if owner and owner_id:
        return _of_runs(store, [owner_id]) if owner == "run" else _of_models(store, [owner_id])
    found = f.one("run_id")
    if found:
        return _of_runs(store, [found])
    found = f.one("model_id")
    return _of_models(store, [found]) if found else []


def compare_runs(f: Fields, store: SqlTrackingStore) -> list[Target]:
    """The compare page's runs (`run_ids`, comma-separated) and the `parent` whose children it shows."""
    ids = _split(f.many("run_ids"))
    parent = f.one("parent")
    if parent:
        ids.append(parent.strip())
    return _of_runs(store, list(dict.fromkeys(ids)))


def _model_missing(name: str) -> str:
    return f"Registered Model with name={name} not found"


def name(f: Fields, store: SqlTrackingStore) -> list[Target]:
    found = f.one("name")
    return [Target(REGISTERED_MODEL, found, missing=_model_missing(found))] if found else []


def version_source(f: Fields, store: SqlTrackingStore) -> list[Target]:
    """A new version: the rule's level on its model, READ on the run or logged model it comes from
    (as MLflow's create-model-version validator: no registering what the caller may not read)."""
    targets = name(f, store)
    source_run = f.one("run_id")
    if source_run:
        targets += _of_runs(store, [source_run], "READ")
    source_model = f.one("model_id")
    if source_model:
        targets += _of_models(store, [source_model], "READ")
    return targets + _of_source_uri(f.one("source") or "", store)


def _of_source_uri(source: str, store: SqlTrackingStore) -> list[Target]:
    """READ on what a `runs:/` or `models:/` source names by itself (no run_id needed to use one):
    its run's experiment, its logged model's experiment, or the registered model it copies."""
    if not (is_runs_uri(source) or is_models_uri(source)):
        return []  # other sources must lie inside the run_id's / model_id's artifacts (the registry checks)
    try:
        uri = parse_model_uri(source)
    except MltrailException:
        return []  # the handler refuses it in MLflow's words
    if uri.run_id:
        return _of_runs(store, [uri.run_id], "READ")
    if uri.model_id:
        return _of_models(store, [uri.model_id], "READ")
    if uri.name:
        return [Target(REGISTERED_MODEL, uri.name, "READ", missing=_model_missing(uri.name))]
    return []


LOCATORS: dict[str, Locator] = {
    "experiment_id": experiment_id, "create_run": create_run, "experiment_ids": experiment_ids,
    "experiment_name": experiment_name, "run_id": run_id, "run_ids": run_ids, "run_and_models": run_and_models,
    "logged_model": logged_model, "proxy_path": proxy_path, "artifact_owner": artifact_owner,
    "compare_runs": compare_runs, "name": name, "version_source": version_source,
}
