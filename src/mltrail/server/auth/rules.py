"""The rule table: which identity and permission every route of the tracking server needs.

`RULES` maps `"METHOD /path"` (the route's path as the app declares it, parameters included) to
a `Rule`; HEAD follows GET. `api(...)` spreads one rule over `/api/2.0` and `/ajax-api/2.0`.
A route without a rule fails `tests/server/auth/test_rules_cover_routes.py`; a rule naming no
route fails it too. Each part of the auth work adds its routes' rules in its marked region.

Levels follow MLflow's basic-auth validators (`mlflow/server/auth/__init__.py`): reads need
READ, writes EDIT, deletes (and restores) MANAGE; creating an experiment or a registered model
needs only a signed-in user, who then gets MANAGE on what was created; searches need a signed-in
user and return only what the caller may read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mltrail.server.auth.levels import EXPERIMENT, REGISTERED_MODEL

API_PREFIXES = ("/api/2.0", "/ajax-api/2.0")
AJAX_PREFIX = "/ajax-api/2.0"
ALL_METHODS = "GET POST PUT PATCH DELETE OPTIONS"

# what runs after a handler succeeded (see authorize.after_success)
GRANT_CREATOR = "grant_creator"  # MANAGE on the experiment / registered model just created
MOVE_GRANTS = "move_grants"  # a renamed registered model keeps its grants
DROP_GRANTS = "drop_grants"  # a deleted registered model's grants go (a new model of that name starts bare)


@dataclass(frozen=True)
class Rule:
    """What a route needs: `kind` is public | authenticated | admin | self_or_admin, or a resource
    type (experiment, registered_model) with the `level` needed and how to `locate` the resource."""

    kind: str
    level: str = ""
    locate: str = ""
    after: str = ""

    def then(self, after: str) -> Rule:
        """This rule, with something to do once the handler succeeded (GRANT_CREATOR, MOVE_GRANTS,
        DROP_GRANTS)."""
        return dataclasses.replace(self, after=after)

    @property
    def is_resource(self) -> bool:
        return self.kind in (EXPERIMENT, REGISTERED_MODEL)


PUBLIC = Rule("public")
AUTHENTICATED = Rule("authenticated")
ADMIN = Rule("admin")
SELF_OR_ADMIN = Rule("self_or_admin")


def _level_name(level: object) -> str:
    """A level given as its name ("READ") or as a `levels.Level` constant."""
    return level if isinstance(level, str) else str(level.name)  # type: ignore[attr-defined]


def experiment(level: object, locate: str) -> Rule:
    """Needs `level` on an experiment; `locate` names a locator in `mltrail.server.auth.locate`
    (experiment_id, experiment_name, run_id, logged_model, proxy_path, ...): runs, logged models,
    artifacts and metric histories follow their experiment."""
    return Rule(EXPERIMENT, _level_name(level), locate)


def registered_model(level: object, locate: str) -> Rule:
    """Needs `level` on a registered model, found by `locate` (its name); versions follow their model."""
    return Rule(REGISTERED_MODEL, _level_name(level), locate)


def _methods(methods: str) -> list[str]:
    return methods.split()


def at(methods: str, path: str, rule: Rule) -> dict[str, Rule]:
    """`rule` for `path` exactly as the app declares it, for each of `methods` ("GET POST")."""
    return {f"{m} {path}": rule for m in _methods(methods)}


def api(methods: str, path: str, rule: Rule) -> dict[str, Rule]:
    """`rule` for `path` under `/api/2.0` and its `/ajax-api/2.0` twin."""
    return {k: v for prefix in API_PREFIXES for k, v in at(methods, prefix + path, rule).items()}


def ajax(methods: str, path: str, rule: Rule) -> dict[str, Rule]:
    """`rule` for `path` under `/ajax-api/2.0` only (routes MLflow serves to its UI alone)."""
    return at(methods, AJAX_PREFIX + path, rule)


def rule_for(method: str, path: str) -> Rule | None:
    """The rule of the route declared as `path`, for `method` (HEAD follows GET)."""
    return RULES.get(f"{'GET' if method == 'HEAD' else method} {path}")


_READ, _EDIT, _MANAGE = "READ", "EDIT", "MANAGE"
_run_read = experiment(_READ, "run_id")
_run_edit = experiment(_EDIT, "run_id")
_run_manage = experiment(_MANAGE, "run_id")
_exp_read = experiment(_READ, "experiment_id")
_exp_edit = experiment(_EDIT, "experiment_id")
_exp_manage = experiment(_MANAGE, "experiment_id")
_lm_read = experiment(_READ, "logged_model")
_lm_edit = experiment(_EDIT, "logged_model")
_lm_manage = experiment(_MANAGE, "logged_model")
_rm_read = registered_model(_READ, "name")
_rm_edit = registered_model(_EDIT, "name")
_rm_manage = registered_model(_MANAGE, "name")

RULES: dict[str, Rule] = {
    # -- H2: REST, ajax, artifacts, UI pages and data, static, health
    # runs
    **api("POST", "/mlflow/runs/create", experiment(_EDIT, "create_run")),
    **api("GET", "/mlflow/runs/get", _run_read),
    **api("POST", "/mlflow/runs/update", _run_edit),
    **api("POST", "/mlflow/runs/delete", _run_manage),
    **api("POST", "/mlflow/runs/restore", _run_manage),
    **api("POST", "/mlflow/runs/search", AUTHENTICATED),
    **api("POST", "/mlflow/runs/log-batch", experiment(_EDIT, "run_and_models")),
    **api("POST", "/mlflow/runs/log-metric", experiment(_EDIT, "run_and_models")),
    **api("POST", "/mlflow/runs/log-inputs", experiment(_EDIT, "run_and_models")),
    **api("POST", "/mlflow/runs/outputs", experiment(_EDIT, "run_and_models")),
    **api("POST", "/mlflow/runs/log-parameter", _run_edit),
    **api("POST", "/mlflow/runs/set-tag", _run_edit),
    **api("POST", "/mlflow/runs/delete-tag", _run_edit),
    **api("POST", "/mlflow/runs/log-model", _run_edit),
    # metric histories
    **api("GET", "/mlflow/metrics/get-history", _run_read),
    **api("GET", "/mlflow/metrics/get-history-bulk-interval", experiment(_READ, "run_ids")),
    **ajax("GET", "/mlflow/metrics/get-history-bulk", experiment(_READ, "run_ids")),
    **api("GET POST", "/mltrail/metrics/get-history-sampled", experiment(_READ, "run_ids")),
    # experiments
    **api("POST", "/mlflow/experiments/create", AUTHENTICATED.then(GRANT_CREATOR)),
    **api("GET", "/mlflow/experiments/get", _exp_read),
    **api("GET", "/mlflow/experiments/get-by-name", experiment(_READ, "experiment_name")),
    **api("GET POST", "/mlflow/experiments/search", AUTHENTICATED),
    **api("POST", "/mlflow/experiments/update", _exp_edit),
    **api("POST", "/mlflow/experiments/delete", _exp_manage),
    **api("POST", "/mlflow/experiments/restore", _exp_manage),
    **api("POST", "/mlflow/experiments/set-experiment-tag", _exp_edit),
    **api("POST", "/mlflow/experiments/delete-experiment-tag", _exp_edit),
    **ajax("POST", "/mlflow/experiments/search-datasets", experiment(_READ, "experiment_ids")),
    # logged models
    **api("POST", "/mlflow/logged-models", _exp_edit),
    **api("POST", "/mlflow/logged-models/search", AUTHENTICATED),
    **api("GET", "/mlflow/logged-models/{model_id}", _lm_read),
    **api("PATCH", "/mlflow/logged-models/{model_id}", _lm_edit),
    **api("DELETE", "/mlflow/logged-models/{model_id}", _lm_manage),
    **api("PATCH", "/mlflow/logged-models/{model_id}/tags", _lm_edit),
    **api("DELETE", "/mlflow/logged-models/{model_id}/tags/{tag_key:path}", _lm_manage),
    **api("POST", "/mlflow/logged-models/{model_id}/params", _lm_edit),
    # artifacts: run listings and downloads, logged models' files, the proxy (its first path
    # segment is the experiment id, as MLflow lays out mlflow-artifacts:/<experiment_id>/...)
    **api("GET", "/mlflow/artifacts/list", _run_read),
    **api("GET", "/mlflow/get-artifact", _run_read),
    **at("GET", "/get-artifact", _run_read),
    **ajax("POST", "/mlflow/upload-artifact", _run_edit),
    **api("GET", "/mlflow/logged-models/{model_id}/artifacts/directories", _lm_read),
    **api("GET", "/mlflow/logged-models/{model_id}/artifacts/files", _lm_read),
    **api("GET", "/mlflow-artifacts/artifacts", experiment(_READ, "proxy_path")),
    **api("GET", "/mlflow-artifacts/artifacts/{path:path}", experiment(_READ, "proxy_path")),
    **api("PUT", "/mlflow-artifacts/artifacts/{path:path}", experiment(_EDIT, "proxy_path")),
    **api("DELETE", "/mlflow-artifacts/artifacts/{path:path}", experiment(_MANAGE, "proxy_path")),
    # -- P3 (#15): multipart uploads write like the proxy's PUT; a part needs no identity, for the upload
    # id in its URL is the capability create handed a writer (as a presigned URL; MLflow's client sends
    # parts without credentials), checked by the handler against the file it was made for
    **{k: v for op in ("create", "complete", "abort") for k, v in {
        **api("POST", f"/mlflow-artifacts/mpu/{op}", experiment(_EDIT, "proxy_path")),
        **api("POST", f"/mlflow-artifacts/mpu/{op}/{{path:path}}", experiment(_EDIT, "proxy_path"))}.items()},
    **api("PUT", "/mlflow-artifacts/mpu/part/{path:path}", PUBLIC),
    **api("GET", "/mlflow-artifacts/presigned/{path:path}", experiment(_READ, "proxy_path")),
    # the model registry: everything by name, versions follow their model
    **api("POST", "/mlflow/registered-models/create", AUTHENTICATED.then(GRANT_CREATOR)),
    **api("GET", "/mlflow/registered-models/get", _rm_read),
    **api("POST", "/mlflow/registered-models/rename", _rm_edit.then(MOVE_GRANTS)),
    **api("PATCH", "/mlflow/registered-models/update", _rm_edit),
    **api("DELETE", "/mlflow/registered-models/delete", _rm_manage.then(DROP_GRANTS)),
    **api("GET POST", "/mlflow/registered-models/search", AUTHENTICATED),
    **api("GET POST", "/mlflow/registered-models/get-latest-versions", _rm_read),
    **api("POST", "/mlflow/registered-models/set-tag", _rm_edit),
    **api("DELETE", "/mlflow/registered-models/delete-tag", _rm_edit),
    **api("POST", "/mlflow/registered-models/alias", _rm_edit),
    **api("DELETE", "/mlflow/registered-models/alias", _rm_manage),
    **api("GET", "/mlflow/registered-models/alias", _rm_read),
    **api("POST", "/mlflow/model-versions/create", registered_model(_EDIT, "version_source")),
    **api("GET", "/mlflow/model-versions/get", _rm_read),
    **api("PATCH", "/mlflow/model-versions/update", _rm_edit),
    **api("DELETE", "/mlflow/model-versions/delete", _rm_manage),
    **api("GET POST", "/mlflow/model-versions/search", AUTHENTICATED),
    **api("POST", "/mlflow/model-versions/transition-stage", _rm_edit),
    **api("GET", "/mlflow/model-versions/get-download-uri", _rm_read),
    **api("POST", "/mlflow/model-versions/set-tag", _rm_edit),
    **api("DELETE", "/mlflow/model-versions/delete-tag", _rm_manage),
    **at("GET", "/model-versions/get-artifact", _rm_read),
    # the server itself: health is public (load balancers probe it), the version is for
    # signed-in users (as MLflow's SERVER_VERSION), unknown API paths answer 404 to anyone
    **at("GET", "/health", PUBLIC),
    **at("GET", "/version", AUTHENTICATED),
    **{k: v for prefix in API_PREFIXES for k, v in at(ALL_METHODS, prefix + "/{rest:path}", PUBLIC).items()},
    **at("GET", "/", AUTHENTICATED),  # the UI's experiment list (filtered), or the index without a UI
    # UI pages (anonymous callers are sent to the login page) and the data their scripts fetch
    **at("GET", "/experiments/{experiment_id}", _exp_read),
    **at("GET", "/runs/{run_id}", _run_read),
    **at("GET", "/compare", experiment(_READ, "compare_runs")),
    **at("GET", "/models", AUTHENTICATED),
    **at("GET", "/models/{model_id}", _lm_read),
    **at("GET", "/registered-models/{name:path}", _rm_read),
    **at("GET", "/ui/api/runs", _exp_read),
    **at("GET", "/ui/api/metrics", experiment(_READ, "run_ids")),
    **at("GET", "/ui/api/artifacts", experiment(_READ, "artifact_owner")),
    **at("GET", "/ui/api/preview", experiment(_READ, "artifact_owner")),
    **at("GET", "/ui/files/{owner}/{owner_id}/{path:path}", experiment(_READ, "artifact_owner")),
    # static files carry no data; the catch-all answers the not-found page
    **at("GET", "/ui/static/{name}", PUBLIC),
    **at("GET", "/{rest:path}", PUBLIC),
    # -- end H2
    # -- H3: auth API
    # MLflow's validators (auth/__init__.py). Grant/revoke need MANAGE on the resource they name and
    # role reads a role in the same workspace: checked by their handlers (mltrail.server.auth.api).
    **{f"{method} {prefix}{path}": rule for prefix in ("/api", "/ajax-api") for method, path, rule in [
        ("POST", "/2.0/mlflow/users/create", ADMIN),
        ("GET", "/2.0/mlflow/users/get", SELF_OR_ADMIN),
        ("GET", "/2.0/mlflow/users/list", AUTHENTICATED),
        ("GET", "/2.0/mlflow/users/current", AUTHENTICATED),
        ("PATCH", "/2.0/mlflow/users/update-password", SELF_OR_ADMIN),
        ("PATCH", "/2.0/mlflow/users/update-admin", ADMIN),
        ("DELETE", "/2.0/mlflow/users/delete", ADMIN),
        ("GET", "/3.0/mlflow/users/current/permissions", AUTHENTICATED),
        ("GET", "/3.0/mlflow/users/permissions/list", SELF_OR_ADMIN),
        ("POST", "/3.0/mlflow/users/permissions/grant", AUTHENTICATED),
        ("POST", "/3.0/mlflow/users/permissions/revoke", AUTHENTICATED),
        ("GET", "/3.0/mlflow/users/permissions/get", SELF_OR_ADMIN),
        ("POST", "/3.0/mlflow/roles/create", ADMIN),
        ("GET", "/3.0/mlflow/roles/get", AUTHENTICATED),
        ("GET", "/3.0/mlflow/roles/list", AUTHENTICATED),
        ("PATCH", "/3.0/mlflow/roles/update", ADMIN),
        ("DELETE", "/3.0/mlflow/roles/delete", ADMIN),
        ("POST", "/3.0/mlflow/roles/permissions/add", ADMIN),
        ("DELETE", "/3.0/mlflow/roles/permissions/remove", ADMIN),
        ("GET", "/3.0/mlflow/roles/permissions/list", AUTHENTICATED),
        ("PATCH", "/3.0/mlflow/roles/permissions/update", ADMIN),
        ("POST", "/3.0/mlflow/roles/assign", ADMIN),
        ("DELETE", "/3.0/mlflow/roles/unassign", ADMIN),
        ("GET", "/3.0/mlflow/users/roles/list", SELF_OR_ADMIN),
        ("GET", "/3.0/mlflow/roles/users/list", ADMIN),
        # ours: a user's own tokens (an admin may name another user); the audit log
        ("POST", "/2.0/mltrail/tokens/create", SELF_OR_ADMIN),
        ("GET", "/2.0/mltrail/tokens/list", SELF_OR_ADMIN),
        ("POST", "/2.0/mltrail/tokens/revoke", SELF_OR_ADMIN),
        ("GET", "/2.0/mltrail/audit/list", ADMIN),
    ]},
    # -- end H3
    # -- H4: UI login/account/admin
    **at("GET POST", "/login", PUBLIC),
    **at("POST", "/logout", PUBLIC),  # it only clears the cookie; a session's logout is CSRF-checked
    **at("GET POST", "/account", AUTHENTICATED),  # the caller's own password and tokens
    **at("GET", "/admin", ADMIN),
    **at("GET", "/admin/user", ADMIN),
    **at("POST", "/admin/users", ADMIN),
    **at("GET", "/admin/role", ADMIN),
    **at("POST", "/admin/roles", ADMIN),
    **at("GET", "/admin/audit", ADMIN),
    # MANAGE on the experiment / registered model the form names: checked by the handler (auth.ui.sharing_action)
    **at("POST", "/sharing", AUTHENTICATED),
    # -- end H4
    # -- H5: server options
    # server-info is public in MLflow too (clients read the setup before they sign in; no data in it)
    **at("GET", "/api/3.0/mlflow/server-info", PUBLIC),
    **at("GET", "/ajax-api/3.0/mlflow/server-info", PUBLIC),
    # request counts per route: for any signed-in caller (a scraper's token), as MLflow's basic-auth
    **at("GET", "/metrics", AUTHENTICATED),
    # -- end H5
    # -- U: UI charts
    **at("GET", "/ui/api/tensorboard", experiment(_READ, "artifact_owner")),
    **at("GET", "/ui/api/tensorboard/dirs", experiment(_READ, "artifact_owner")),
    **at("GET", "/ui/api/live", experiment(_READ, "run_ids")),  # U2: every run in run_ids
    # -- end U
}
