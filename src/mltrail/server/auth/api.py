"""MLflow 3.17's auth REST API (users, per-user grants, roles) and ours (tokens, audit) over `AuthStore`.

Each handler is a thin adapter like `server/routes/runs.py`: read the request, call the store,
shape MLflow's JSON (`api_json.py`). MLflow serves these with its basic-auth app
(`mlflow/server/auth/__init__.py`, paths in `mlflow/server/auth/routes.py`); the real
`mlflow.server.auth.client.AuthServiceClient` 3.17.2 works against them unchanged.

Every change is audited by the store itself, in the same transaction, under the actor the
middleware found. Who may call what is the rule table's (`rules.py`, region "H3: auth API":
ADMIN, SELF_OR_ADMIN on `username`, AUTHENTICATED). Where MLflow's check depends on more than
the route, the handler checks it here, with the caller the middleware found: grant and revoke
need MANAGE on the resource they name (as MLflow's `validate_can_manage_resource`), and reading
a role needs a role in the same workspace (`validate_can_view_roles`).

Workspaces: MLflow 3.17 scopes roles to workspaces. This server has one, "default": roles are
created there, and naming another is refused with a message saying so.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mltrail.errors import (
    BAD_REQUEST,
    ENDPOINT_NOT_FOUND,
    UNAUTHENTICATED,
    InvalidParameterValue,
    MltrailException,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from mltrail.server._http import Call, json_endpoint
from mltrail.server.auth import identity_of
from mltrail.server.auth.api_json import (
    assignment_to_json,
    audit_event_to_json,
    permission_rows,
    role_permission_to_json,
    role_to_json,
    token_to_json,
    user_to_json,
    user_with_roles_to_json,
)
from mltrail.server.auth.authorize import Authorizer
from mltrail.server.auth.entities import Identity, Role, User
from mltrail.server.auth.levels import Level, check_resource_type, level
from mltrail.server.auth.store import AuthStore
from mltrail.server.validation import SEE_DOCS

DEFAULT_WORKSPACE = "default"
# Levels a grant may carry on one resource (MLflow's RESOURCE_GRANTABLE_PERMISSIONS, less DENY, which
# mltrail does not have): NO_PERMISSIONS is refused, since an absent grant already means the default.
GRANTABLE = ("EDIT", "MANAGE", "READ", "USE")
MAX_AUDIT_RESULTS = 1000
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Caller:
    """Who sent the request (None when no credentials came)."""

    identity: Identity | None

    @property
    def user(self) -> User:
        """The signed-in user; a request without one is refused (the rule table refuses it first)."""
        if self.identity is None:
            raise MltrailException("You are not authenticated: send a username and password (basic auth) or "
                                   "an API token (Authorization: Bearer).", UNAUTHENTICATED)
        return self.identity.user

    @property
    def name(self) -> str:
        return self.user.username


AuthHandler = Callable[[Call, Caller], Any]


# ------------------------------------------------------------------ request reading (MLflow's words)
def _raw(call: Call, name: str) -> Any:
    value = call.data.get(name)
    if value is None:
        raise InvalidParameterValue(f"Missing value for required parameter '{name}'.{SEE_DOCS}")
    return value


def _text(call: Call, name: str) -> str:
    value = _raw(call, name)
    if not isinstance(value, str):
        raise InvalidParameterValue(f"Parameter '{name}' must be a string. Got: {value!r}")
    return value


def _optional_text(call: Call, name: str) -> str | None:
    value = call.data.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidParameterValue(f"Parameter '{name}' must be a string. Got: {value!r}")
    return value


def _int_value(name: str, raw: Any) -> int:
    if isinstance(raw, bool):
        raise InvalidParameterValue(f"Parameter '{name}' must be an integer. Got: {raw!r}")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise InvalidParameterValue(f"Parameter '{name}' must be an integer. Got: {raw!r}") from None


def _int(call: Call, name: str) -> int:
    return _int_value(name, _raw(call, name))


def _bool(call: Call, name: str) -> bool:
    value = _raw(call, name)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidParameterValue(f"Parameter '{name}' must be a boolean (true or false). Got: {value!r}")


def _auth(call: Call) -> AuthStore:
    store = call.ctx.auth
    if store is None:
        raise MltrailException("The auth API is served only when the server runs with accounts: start it with "
                               "`mltrail server --auth` (MLflow: --app-name basic-auth).", ENDPOINT_NOT_FOUND)
    return store


def _grantable(resource_type: str, permission: str) -> str:
    """`permission` if a grant on one resource of `resource_type` may carry it (MLflow's checks, in order)."""
    check_resource_type(resource_type)
    level(permission)
    if permission not in GRANTABLE:
        raise InvalidParameterValue(
            f"Invalid permission '{permission}' for resource_type='{resource_type}'. Resource-level grants "
            f"accept only: {GRANTABLE}.")
    return permission


def _effective(call: Call, caller: Caller, user: User, resource_type: str, resource_id: str) -> Level:
    """`user`'s effective level on one resource, resolved exactly as a request of theirs is authorized."""
    via = caller.identity.via if caller.identity is not None else ""
    return Authorizer(call.ctx).permission(Identity(user, via), resource_type, resource_id)


# ------------------------------------------------------------------ users (MLflow 2.0 paths)
def create_user(call: Call, caller: Caller) -> dict[str, Any]:
    username, password = _raw(call, "username"), _raw(call, "password")
    if not username or not password:
        raise InvalidParameterValue("Username and password cannot be empty.")
    user = _auth(call).create_user(username, password)  # the store checks both (MLflow's rules)
    return {"user": user_to_json(user)}


def get_user(call: Call, caller: Caller) -> dict[str, Any]:
    username = _text(call, "username")
    return {"user": user_to_json(_auth(call).get_user(username))}


def list_users(call: Call, caller: Caller) -> dict[str, Any]:
    """Every user; their roles only for an admin (or the caller's own), as MLflow scopes them."""
    store = _auth(call)
    me = caller.user
    users = []
    for user in store.list_users():
        roles = store.list_user_roles(user.username) if me.is_admin or user.id == me.id else []
        users.append(user_with_roles_to_json(user, roles))
    return {"users": users}


def current_user(call: Call, caller: Caller) -> dict[str, Any]:
    me = _auth(call).get_user(caller.name)
    via = caller.identity.via if caller.identity is not None else ""
    return {"user": user_to_json(me), "is_basic_auth": via == "password"}


def _permissions_of(store: AuthStore, username: str) -> dict[str, Any]:
    user = store.get_user(username)
    rows = permission_rows(user, store.list_permissions(username=username), store.list_user_roles(username))
    return {"is_admin": user.is_admin, "permissions": rows}


def current_user_permissions(call: Call, caller: Caller) -> dict[str, Any]:
    return _permissions_of(_auth(call), caller.name)


def list_user_permissions(call: Call, caller: Caller) -> dict[str, Any]:
    username = _text(call, "username")
    return _permissions_of(_auth(call), username)


def update_password(call: Call, caller: Caller) -> dict[str, Any]:
    """A new password; changing one's own needs the current one (a stolen session cannot rotate it)."""
    store = _auth(call)
    username, password = _text(call, "username"), _text(call, "password")
    if caller.name == username:
        current = call.data.get("current_password")
        if not current:
            raise InvalidParameterValue("Current password is required when changing your own password.")
        if store.verify_password(username, str(current)) is None:
            raise InvalidParameterValue("Current password does not match.")
        if password == current:
            raise InvalidParameterValue("New password must differ from the current password.")
    store.update_password(username, password)
    return {}


def _refuse_losing_last_admin(store: AuthStore, user: User) -> None:
    """The server refuses to start without an admin, so the API must not remove the last one."""
    if user.is_admin and not any(u.is_admin and u.id != user.id for u in store.list_users()):
        raise MltrailException(
            f"User '{user.username}' is the only admin; make another user admin first (the server needs one "
            "admin to start).", BAD_REQUEST)


def update_admin(call: Call, caller: Caller) -> dict[str, Any]:
    store = _auth(call)
    username, is_admin = _text(call, "username"), _bool(call, "is_admin")
    user = store.get_user(username)
    if not is_admin:
        _refuse_losing_last_admin(store, user)
    store.update_admin(username, is_admin)
    return {}


def delete_user(call: Call, caller: Caller) -> dict[str, Any]:
    username = _text(call, "username")
    if username == caller.name:
        raise MltrailException("Users cannot delete their own account. Ask another admin to delete this user "
                               "instead.", BAD_REQUEST)
    _auth(call).delete_user(username)
    return {}


# ------------------------------------------------------------------ per-user grants (MLflow 3.0 paths)
def _grant_target(call: Call, caller: Caller) -> tuple[str, str, str]:
    """(username, resource_type, resource_id) of a grant or revoke the caller may MANAGE."""
    store = _auth(call)
    username, resource_type = _text(call, "username"), _text(call, "resource_type")
    resource_id = str(_raw(call, "resource_id"))
    check_resource_type(resource_type)
    if resource_id == "*":
        raise InvalidParameterValue(
            "resource_id '*' is not supported by the per-user grant API on this server: give the user a role "
            "with resource_pattern '*' (roles/create, roles/permissions/add, roles/assign) instead.")
    # MANAGE first, as MLflow's validator runs before its handler: a caller who may not manage the
    # resource learns nothing, not even whether the user exists
    if not _effective(call, caller, caller.user, resource_type, resource_id).can_manage:
        raise PermissionDenied("Permission denied")
    store.get_user(username)
    return username, resource_type, resource_id


def grant_permission(call: Call, caller: Caller) -> dict[str, Any]:
    permission = _text(call, "permission")
    username, resource_type, resource_id = _grant_target(call, caller)
    _grantable(resource_type, permission)
    store = _auth(call)
    try:
        store.get_permission(username, resource_type, resource_id)
    except ResourceDoesNotExist:
        pass
    else:
        raise ResourceAlreadyExists(f"Permission for user={username} on resource_type={resource_type}, "
                                    f"resource_id={resource_id} already exists.")
    store.set_permission(username, resource_type, resource_id, permission)
    return {}


def revoke_permission(call: Call, caller: Caller) -> dict[str, Any]:
    username, resource_type, resource_id = _grant_target(call, caller)
    _auth(call).delete_permission(username, resource_type, resource_id)  # MLflow's "... not found." when none
    return {}


def get_permission(call: Call, caller: Caller) -> dict[str, Any]:
    """The user's effective permission on one resource, resolved as a real request would be."""
    username, resource_type = _text(call, "username"), _text(call, "resource_type")
    resource_id = str(_raw(call, "resource_id"))
    check_resource_type(resource_type)
    user = _auth(call).get_user(username)
    found = _effective(call, caller, user, resource_type, resource_id)
    return {"allowed": found.can_use, "permission": found.name}


# ------------------------------------------------------------------ roles (MLflow 3.0 paths)
def _check_workspace(workspace: Any, message: str) -> str:
    if not isinstance(workspace, str) or not workspace.strip():
        raise InvalidParameterValue(message)
    if workspace != DEFAULT_WORKSPACE:
        raise InvalidParameterValue(
            f"Workspace '{workspace}' does not exist: this server has one workspace, '{DEFAULT_WORKSPACE}' "
            "(mltrail does not implement MLflow's multiple workspaces).")
    return workspace


def _may_view_role(store: AuthStore, caller: Caller, role: Role) -> None:
    """MLflow's rule: an admin, or a user holding some role in the role's workspace."""
    me = caller.user
    if me.is_admin or any(r.workspace == role.workspace for r in store.list_user_roles(me.username)):
        return
    raise PermissionDenied("Permission denied")


def _description(value: Any, message: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidParameterValue(message)
    return value


def create_role(call: Call, caller: Caller) -> dict[str, Any]:
    name, workspace = _raw(call, "name"), _raw(call, "workspace")
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameterValue("Role name cannot be empty.")
    _check_workspace(workspace, "Workspace cannot be empty.")
    description = _description(call.data.get("description"), "Role description must be a string or null.")
    role = _auth(call).create_role(name, workspace, description)
    return {"role": role_to_json(role)}


def get_role(call: Call, caller: Caller) -> dict[str, Any]:
    store = _auth(call)
    role = store.get_role(_int(call, "role_id"))
    _may_view_role(store, caller, role)
    return {"role": role_to_json(role)}


def list_roles(call: Call, caller: Caller) -> dict[str, Any]:
    """Roles of the workspaces named (repeated `workspace`); all of them, for an admin, when none is."""
    store = _auth(call)
    workspaces = [str(w) for w in call.items("workspace")]
    for w in workspaces:
        if not w.strip():
            raise InvalidParameterValue("Parameter 'workspace' must be a non-empty string when provided.")
    me = caller.user
    if not me.is_admin:
        held = {r.workspace for r in store.list_user_roles(me.username)}
        if not workspaces or not set(workspaces) <= held:
            raise PermissionDenied("Permission denied")
    if not workspaces:
        return {"roles": [role_to_json(r) for r in store.list_roles()]}
    return {"roles": [role_to_json(r) for w in dict.fromkeys(workspaces) for r in store.list_roles(w)]}


def update_role(call: Call, caller: Caller) -> dict[str, Any]:
    role_id = _int(call, "role_id")
    name, description = call.data.get("name"), call.data.get("description")
    if name is None and description is None:
        raise InvalidParameterValue("At least one of 'name' or 'description' must be provided to update a role.")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InvalidParameterValue("Role name cannot be empty.")
    _description(description, "Role description must be a string.")
    role = _auth(call).update_role(role_id, name=name, description=description)
    return {"role": role_to_json(role)}


def delete_role(call: Call, caller: Caller) -> dict[str, Any]:
    role_id = _int(call, "role_id")
    _auth(call).delete_role(role_id)
    return {}


def add_role_permission(call: Call, caller: Caller) -> dict[str, Any]:
    role_id = _int(call, "role_id")
    resource_type, pattern = _text(call, "resource_type"), _text(call, "resource_pattern")
    permission = _grantable(resource_type, _text(call, "permission"))
    rp = _auth(call).add_role_permission(role_id, resource_type, pattern, permission)
    return {"role_permission": role_permission_to_json(rp)}


def remove_role_permission(call: Call, caller: Caller) -> dict[str, Any]:
    rp_id = _int(call, "role_permission_id")
    _auth(call).remove_role_permission(rp_id)
    return {}


def list_role_permissions(call: Call, caller: Caller) -> dict[str, Any]:
    store = _auth(call)
    role = store.get_role(_int(call, "role_id"))
    _may_view_role(store, caller, role)
    return {"role_permissions": [role_permission_to_json(p) for p in store.list_role_permissions(role.id)]}


def update_role_permission(call: Call, caller: Caller) -> dict[str, Any]:
    rp_id = _int(call, "role_permission_id")
    permission = _text(call, "permission")
    level(permission)
    if permission not in GRANTABLE:
        raise InvalidParameterValue(f"Invalid permission '{permission}' for a role permission. Resource-level "
                                    f"grants accept only: {GRANTABLE}.")
    rp = _auth(call).update_role_permission(rp_id, permission)
    return {"role_permission": role_permission_to_json(rp)}


def assign_role(call: Call, caller: Caller) -> dict[str, Any]:
    username, role_id = _text(call, "username"), _int(call, "role_id")
    assignment = _auth(call).assign_role(username, role_id)
    return {"assignment": assignment_to_json(assignment)}


def unassign_role(call: Call, caller: Caller) -> dict[str, Any]:
    username, role_id = _text(call, "username"), _int(call, "role_id")
    _auth(call).unassign_role(username, role_id)
    return {}


def list_user_roles(call: Call, caller: Caller) -> dict[str, Any]:
    username = _text(call, "username")
    return {"roles": [role_to_json(r) for r in _auth(call).list_user_roles(username)]}


def list_role_users(call: Call, caller: Caller) -> dict[str, Any]:
    return {"assignments": [assignment_to_json(a) for a in _auth(call).list_role_users(_int(call, "role_id"))]}


# ------------------------------------------------------------------ ours: tokens and the audit log
def _token_owner(call: Call, caller: Caller) -> str:
    """The user a token request is about: the caller, or (admins only) the `username` it names."""
    username = _optional_text(call, "username") or caller.name
    return username


def _expiry(call: Call) -> int | None:
    if call.data.get("expires_at") is not None:
        return _int(call, "expires_at")
    if call.data.get("expires_in_days") is not None:
        days = _int(call, "expires_in_days")
        if days <= 0:
            raise InvalidParameterValue(f"Parameter 'expires_in_days' must be a positive number of days. "
                                        f"Got: {days}")
        return int(time.time() * 1000) + days * DAY_MS
    return None


def create_token(call: Call, caller: Caller) -> dict[str, Any]:
    """A new API token; its secret is in this answer and nowhere else, ever."""
    username = _token_owner(call, caller)
    token, secret = _auth(call).create_token(username, _text(call, "name").strip(), _expiry(call))
    return {"token": token_to_json(token, username), "secret": secret}


def list_tokens(call: Call, caller: Caller) -> dict[str, Any]:
    username = _token_owner(call, caller)
    return {"tokens": [token_to_json(t, username) for t in _auth(call).list_tokens(username)]}


def revoke_token(call: Call, caller: Caller) -> dict[str, Any]:
    username = _token_owner(call, caller)
    _auth(call).revoke_token(username, _int(call, "token_id"))
    return {}


def list_audit(call: Call, caller: Caller) -> dict[str, Any]:
    """Audit events, newest first, `max_results` at a time; `page_token` continues a listing."""
    limit = _int_value("max_results", call.data.get("max_results", 100))
    if not 1 <= limit <= MAX_AUDIT_RESULTS:
        raise InvalidParameterValue(f"Parameter 'max_results' must be between 1 and {MAX_AUDIT_RESULTS}. "
                                    f"Got: {limit}")
    token = call.data.get("page_token")
    before = _int_value("page_token", token) if token not in (None, "") else None
    events = _auth(call).list_audit(limit=limit, before_id=before)
    answer: dict[str, Any] = {"events": [audit_event_to_json(e) for e in events]}
    if len(events) == limit:
        answer["next_page_token"] = str(events[-1].id)
    return answer


# ------------------------------------------------------------------ the route table
V2, V3 = "/2.0/mlflow", "/3.0/mlflow"
OURS = "/2.0/mltrail"

# (method, path under /api and /ajax-api, handler); one method per path, as MLflow registers them.
ROUTES: list[tuple[str, str, AuthHandler]] = [
    ("POST", V2 + "/users/create", create_user),
    ("GET", V2 + "/users/get", get_user),
    ("GET", V2 + "/users/list", list_users),
    ("GET", V2 + "/users/current", current_user),
    ("PATCH", V2 + "/users/update-password", update_password),
    ("PATCH", V2 + "/users/update-admin", update_admin),
    ("DELETE", V2 + "/users/delete", delete_user),
    ("GET", V3 + "/users/current/permissions", current_user_permissions),
    ("GET", V3 + "/users/permissions/list", list_user_permissions),
    ("POST", V3 + "/users/permissions/grant", grant_permission),
    ("POST", V3 + "/users/permissions/revoke", revoke_permission),
    ("GET", V3 + "/users/permissions/get", get_permission),
    ("POST", V3 + "/roles/create", create_role),
    ("GET", V3 + "/roles/get", get_role),
    ("GET", V3 + "/roles/list", list_roles),
    ("PATCH", V3 + "/roles/update", update_role),
    ("DELETE", V3 + "/roles/delete", delete_role),
    ("POST", V3 + "/roles/permissions/add", add_role_permission),
    ("DELETE", V3 + "/roles/permissions/remove", remove_role_permission),
    ("GET", V3 + "/roles/permissions/list", list_role_permissions),
    ("PATCH", V3 + "/roles/permissions/update", update_role_permission),
    ("POST", V3 + "/roles/assign", assign_role),
    ("DELETE", V3 + "/roles/unassign", unassign_role),
    ("GET", V3 + "/users/roles/list", list_user_roles),
    ("GET", V3 + "/roles/users/list", list_role_users),
    ("POST", OURS + "/tokens/create", create_token),
    ("GET", OURS + "/tokens/list", list_tokens),
    ("POST", OURS + "/tokens/revoke", revoke_token),
    ("GET", OURS + "/audit/list", list_audit),
]
PREFIXES = ("/api", "/ajax-api")


def _endpoint(handler: AuthHandler) -> Callable[[Request], Awaitable[Response]]:
    """A JSON endpoint (`json_endpoint`: body limits, the error shape) whose handler also gets the caller."""

    async def endpoint(request: Request) -> Response:
        caller = Caller(identity_of(request))
        inner = json_endpoint(lambda call: handler(call, caller))
        return await inner(request)

    endpoint.__name__ = handler.__name__
    return endpoint


def paths() -> list[tuple[str, str]]:
    """(method, full path) of every auth API route, both prefixes."""
    return [(method, prefix + path) for prefix in PREFIXES for method, path, _ in ROUTES]


def routes() -> list[BaseRoute]:
    """The auth API's routes, for `create_app` (ahead of the `/api/2.0/...` not-found catch-all)."""
    return [Route(prefix + path, _endpoint(handler), methods=[method])
            for prefix in PREFIXES for method, path, handler in ROUTES]


__all__ = ["DEFAULT_WORKSPACE", "GRANTABLE", "ROUTES", "Caller", "paths", "routes"]
