"""MLflow 3.17's auth REST API and ours (tokens, audit) on a real server with `--auth`, over real HTTP.

The server runs in-process on uvicorn over SQLite in a temporary directory; the admin is made at
start-up from `MLTRAIL_ADMIN_PASSWORD`, as an operator would. Bodies, status codes and messages are
MLflow's (`mlflow/server/auth/__init__.py` handlers, `sqlalchemy_store.py` errors).
"""

from __future__ import annotations

import itertools

import pytest
import requests
from auth_support import ADMIN, auth_app
from server_fixture import ServerThread, close_stores, server_settings

from mltrail.server.app import create_app
from mltrail.server.auth.api import paths

SEE_DOCS = " See the API docs for more information about request parameters."
_names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth-api")
    app = auth_app(server_settings(tmp, auth=True))
    srv = ServerThread(app).start()
    yield srv.uri
    close_stores(srv.uri)
    srv.stop()


class Api:
    """Requests to the test server as one user (basic auth), a token (bearer) or nobody."""

    def __init__(self, uri: str, auth: tuple[str, str] | None = None, token: str | None = None) -> None:
        self.uri = uri
        self.session = requests.Session()
        if auth is not None:
            self.session.auth = auth
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def __call__(self, method: str, path: str, prefix: str = "/api", **kw) -> requests.Response:
        if method == "GET" and "json" in kw:
            kw["params"] = kw.pop("json")
        return self.session.request(method, f"{self.uri}{prefix}{path}", timeout=30, **kw)


@pytest.fixture(scope="module")
def admin(server) -> Api:
    return Api(server, ADMIN)


def _error(resp: requests.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error_code"] == code, body
    return body["message"]


def _new_user(admin: Api, password: str = "user-password-0123") -> tuple[str, str]:
    name = f"user{next(_names)}"
    resp = admin("POST", "/2.0/mlflow/users/create", json={"username": name, "password": password})
    assert resp.status_code == 200, resp.text
    return name, password


def _experiment(api: Api, name: str) -> str:
    resp = api("POST", "/2.0/mlflow/experiments/create", json={"name": name})
    assert resp.status_code == 200, resp.text
    return resp.json()["experiment_id"]


# ------------------------------------------------------------------ users
def test_create_and_get_user_in_mlflows_json(admin):
    resp = admin("POST", "/2.0/mlflow/users/create", json={"username": "carol", "password": "carol-password-01"})
    assert resp.status_code == 200, resp.text
    user = resp.json()["user"]
    assert set(user) == {"id", "username", "is_admin"}  # never a password hash
    assert user["username"] == "carol" and user["is_admin"] is False and isinstance(user["id"], int)
    assert admin("GET", "/2.0/mlflow/users/get", json={"username": "carol"}).json() == {"user": user}
    # the ajax twin serves the same
    assert admin("GET", "/2.0/mlflow/users/get", prefix="/ajax-api", json={"username": "carol"}).json() == {
        "user": user}


def test_create_user_refusals(admin, server):
    name, password = _new_user(admin)
    again = admin("POST", "/2.0/mlflow/users/create", json={"username": name, "password": "other-password-01"})
    assert _error(again, 400, "RESOURCE_ALREADY_EXISTS").startswith(f"User (username={name}) already exists")
    empty = admin("POST", "/2.0/mlflow/users/create", json={"username": "dave", "password": ""})
    assert _error(empty, 400, "INVALID_PARAMETER_VALUE") == "Username and password cannot be empty."
    missing = admin("POST", "/2.0/mlflow/users/create", json={"password": "x" * 12})
    assert _error(missing, 400, "INVALID_PARAMETER_VALUE") == (
        "Missing value for required parameter 'username'." + SEE_DOCS)
    # only an admin creates users
    user = Api(server, (name, password))
    denied = user("POST", "/2.0/mlflow/users/create", json={"username": "eve", "password": "eve-password-012"})
    _error(denied, 403, "PERMISSION_DENIED")


def test_get_user_is_self_or_admin(admin, server):
    alice, bob = _new_user(admin), _new_user(admin)
    as_alice = Api(server, alice)
    assert as_alice("GET", "/2.0/mlflow/users/get", json={"username": alice[0]}).status_code == 200
    _error(as_alice("GET", "/2.0/mlflow/users/get", json={"username": bob[0]}), 403, "PERMISSION_DENIED")
    unknown = admin("GET", "/2.0/mlflow/users/get", json={"username": "nobody-at-all"})
    assert _error(unknown, 404, "RESOURCE_DOES_NOT_EXIST") == "User with username=nobody-at-all not found"


def test_anonymous_is_unauthenticated(server):
    resp = Api(server)("GET", "/2.0/mlflow/users/current")
    _error(resp, 401, "UNAUTHENTICATED")


def test_current_user_and_list_users(admin, server):
    alice = _new_user(admin)
    as_alice = Api(server, alice)
    current = as_alice("GET", "/2.0/mlflow/users/current").json()
    assert current["user"]["username"] == alice[0] and current["user"]["is_admin"] is False
    assert current["is_basic_auth"] is True
    listed = {u["username"]: u for u in as_alice("GET", "/2.0/mlflow/users/list").json()["users"]}
    assert {ADMIN[0], alice[0]} <= set(listed)
    assert listed[ADMIN[0]]["is_admin"] is True and listed[ADMIN[0]]["roles"] == []


def test_update_password_self_needs_the_current_one(admin, server):
    name, old = _new_user(admin)
    me = Api(server, (name, old))
    body = {"username": name, "password": "brand-new-password-1"}
    assert _error(me("PATCH", "/2.0/mlflow/users/update-password", json=body), 400, "INVALID_PARAMETER_VALUE") == (
        "Current password is required when changing your own password.")
    wrong = me("PATCH", "/2.0/mlflow/users/update-password", json={**body, "current_password": "not-it-at-all"})
    assert _error(wrong, 400, "INVALID_PARAMETER_VALUE") == "Current password does not match."
    same = me("PATCH", "/2.0/mlflow/users/update-password",
              json={"username": name, "password": old, "current_password": old})
    assert _error(same, 400, "INVALID_PARAMETER_VALUE") == "New password must differ from the current password."
    ok = me("PATCH", "/2.0/mlflow/users/update-password", json={**body, "current_password": old})
    assert ok.status_code == 200 and ok.json() == {}
    assert Api(server, (name, body["password"]))("GET", "/2.0/mlflow/users/current").status_code == 200
    assert Api(server, (name, old))("GET", "/2.0/mlflow/users/current").status_code == 401
    # an admin resets another user's password without knowing it; a user cannot reset another's
    other = _new_user(admin)
    assert admin("PATCH", "/2.0/mlflow/users/update-password",
                 json={"username": other[0], "password": "reset-by-admin-01"}).status_code == 200
    _error(Api(server, (name, body["password"]))("PATCH", "/2.0/mlflow/users/update-password",
                                                  json={"username": other[0], "password": "hijacked-pass-01"}),
           403, "PERMISSION_DENIED")


def test_update_admin_and_the_last_admin(admin, server):
    name, password = _new_user(admin)
    user = Api(server, (name, password))
    _error(user("PATCH", "/2.0/mlflow/users/update-admin", json={"username": name, "is_admin": True}),
           403, "PERMISSION_DENIED")
    assert admin("PATCH", "/2.0/mlflow/users/update-admin", json={"username": name, "is_admin": True}).json() == {}
    assert user("GET", "/2.0/mlflow/users/current").json()["user"]["is_admin"] is True
    assert admin("PATCH", "/2.0/mlflow/users/update-admin",
                 json={"username": name, "is_admin": False}).status_code == 200
    # demoting the only admin would leave a server that refuses to start
    admins = [u for u in admin("GET", "/2.0/mlflow/users/list").json()["users"] if u["is_admin"]]
    if [u["username"] for u in admins] == [ADMIN[0]]:
        last = admin("PATCH", "/2.0/mlflow/users/update-admin", json={"username": ADMIN[0], "is_admin": False})
        assert "only admin" in _error(last, 400, "BAD_REQUEST")
    bad = admin("PATCH", "/2.0/mlflow/users/update-admin", json={"username": name, "is_admin": "maybe"})
    assert "must be a boolean" in _error(bad, 400, "INVALID_PARAMETER_VALUE")


def test_delete_user(admin, server):
    name, password = _new_user(admin)
    self_delete = admin("DELETE", "/2.0/mlflow/users/delete", json={"username": ADMIN[0]})
    assert _error(self_delete, 400, "BAD_REQUEST").startswith("Users cannot delete their own account.")
    _error(Api(server, (name, password))("DELETE", "/2.0/mlflow/users/delete", json={"username": ADMIN[0]}),
           403, "PERMISSION_DENIED")
    assert admin("DELETE", "/2.0/mlflow/users/delete", json={"username": name}).json() == {}
    assert Api(server, (name, password))("GET", "/2.0/mlflow/users/current").status_code == 401
    gone = admin("DELETE", "/2.0/mlflow/users/delete", json={"username": name})
    assert _error(gone, 404, "RESOURCE_DOES_NOT_EXIST") == f"User with username={name} not found"


# ------------------------------------------------------------------ per-user grants
def test_grant_get_revoke(admin, server):
    alice = _new_user(admin)
    exp = _experiment(admin, f"granted-{alice[0]}")
    grant = {"username": alice[0], "resource_type": "experiment", "resource_id": exp, "permission": "READ"}
    assert admin("POST", "/3.0/mlflow/users/permissions/grant", json=grant).json() == {}
    query = {k: grant[k] for k in ("username", "resource_type", "resource_id")}
    got = admin("GET", "/3.0/mlflow/users/permissions/get", json=query).json()
    assert got == {"allowed": False, "permission": "READ"}  # `allowed` is MLflow's can_use
    as_alice = Api(server, alice)
    assert as_alice("GET", "/3.0/mlflow/users/permissions/get", json=query).json() == got
    assert as_alice("GET", "/3.0/mlflow/users/permissions/get", prefix="/ajax-api", json=query).json() == got
    assert as_alice("GET", f"/2.0/mlflow/experiments/get?experiment_id={exp}").status_code == 200
    rows = as_alice("GET", "/3.0/mlflow/users/current/permissions").json()
    assert rows["is_admin"] is False
    assert {"resource_type": "experiment", "resource_pattern": exp, "permission": "READ"}.items() <= \
        rows["permissions"][0].items()
    again = admin("POST", "/3.0/mlflow/users/permissions/grant", json=grant)
    assert _error(again, 400, "RESOURCE_ALREADY_EXISTS") == (
        f"Permission for user={alice[0]} on resource_type=experiment, resource_id={exp} already exists.")
    assert admin("POST", "/3.0/mlflow/users/permissions/revoke", json=query).json() == {}
    gone = admin("POST", "/3.0/mlflow/users/permissions/revoke", json=query)
    assert _error(gone, 404, "RESOURCE_DOES_NOT_EXIST") == (
        f"Permission for user={alice[0]} on resource_type=experiment, resource_id={exp} not found.")
    _error(as_alice("GET", f"/2.0/mlflow/experiments/get?experiment_id={exp}"), 403, "PERMISSION_DENIED")


def test_grant_refusals(admin):
    alice = _new_user(admin)
    base = {"username": alice[0], "resource_type": "experiment", "resource_id": "0"}
    bad_level = admin("POST", "/3.0/mlflow/users/permissions/grant", json={**base, "permission": "ALL"})
    assert _error(bad_level, 400, "INVALID_PARAMETER_VALUE").startswith("Invalid permission 'ALL'. Valid permissions")
    none = admin("POST", "/3.0/mlflow/users/permissions/grant", json={**base, "permission": "NO_PERMISSIONS"})
    assert _error(none, 400, "INVALID_PARAMETER_VALUE").startswith(
        "Invalid permission 'NO_PERMISSIONS' for resource_type='experiment'. Resource-level grants accept only")
    bad_type = admin("POST", "/3.0/mlflow/users/permissions/grant",
                     json={**base, "resource_type": "notebook", "permission": "READ"})
    assert _error(bad_type, 400, "INVALID_PARAMETER_VALUE").startswith("Invalid resource type 'notebook'.")
    nobody = admin("POST", "/3.0/mlflow/users/permissions/grant",
                   json={**base, "username": "nobody-here", "permission": "READ"})
    _error(nobody, 404, "RESOURCE_DOES_NOT_EXIST")


def test_manage_delegates_granting(admin, server):
    owner, other = _new_user(admin), _new_user(admin)
    as_owner, as_other = Api(server, owner), Api(server, other)
    exp = _experiment(as_owner, f"owned-{owner[0]}")  # the creator gets MANAGE
    grant = {"username": other[0], "resource_type": "experiment", "resource_id": exp, "permission": "EDIT"}
    assert as_owner("POST", "/3.0/mlflow/users/permissions/grant", json=grant).status_code == 200
    # EDIT is not MANAGE: the grantee cannot pass it on, nor grant on experiments it cannot manage
    third = _new_user(admin)
    _error(as_other("POST", "/3.0/mlflow/users/permissions/grant", json={**grant, "username": third[0]}),
           403, "PERMISSION_DENIED")
    _error(as_other("POST", "/3.0/mlflow/users/permissions/grant",
                    json={**grant, "resource_id": "0", "username": other[0]}), 403, "PERMISSION_DENIED")
    # a user may read their own effective permission but not someone else's
    query = {"username": owner[0], "resource_type": "experiment", "resource_id": exp}
    _error(as_other("GET", "/3.0/mlflow/users/permissions/get", json=query), 403, "PERMISSION_DENIED")
    assert as_owner("GET", "/3.0/mlflow/users/permissions/get", json=query).json() == {
        "allowed": True, "permission": "MANAGE"}


# ------------------------------------------------------------------ roles
def test_role_lifecycle(admin, server):
    alice = _new_user(admin)
    exp = _experiment(admin, f"role-{alice[0]}")
    created = admin("POST", "/3.0/mlflow/roles/create",
                    json={"workspace": "default", "name": f"readers-{alice[0]}", "description": "read all"})
    assert created.status_code == 200, created.text
    role = created.json()["role"]
    assert role == {"id": role["id"], "name": f"readers-{alice[0]}", "workspace": "default",
                    "description": "read all", "permissions": []}
    rid = role["id"]
    rp = admin("POST", "/3.0/mlflow/roles/permissions/add",
               json={"role_id": rid, "resource_type": "experiment", "resource_pattern": exp,
                     "permission": "READ"}).json()["role_permission"]
    assert rp == {"id": rp["id"], "role_id": rid, "resource_type": "experiment", "resource_pattern": exp,
                  "permission": "READ"}
    assignment = admin("POST", "/3.0/mlflow/roles/assign", json={"username": alice[0], "role_id": rid})
    assert set(assignment.json()["assignment"]) == {"id", "user_id", "role_id"}
    as_alice = Api(server, alice)
    assert as_alice("GET", f"/2.0/mlflow/experiments/get?experiment_id={exp}").status_code == 200
    assert [r["id"] for r in as_alice("GET", "/3.0/mlflow/users/roles/list",
                                      json={"username": alice[0]}).json()["roles"]] == [rid]
    rows = as_alice("GET", "/3.0/mlflow/users/permissions/list", json={"username": alice[0]}).json()["permissions"]
    assert rows == [{"role_id": rid, "role_name": role["name"], "workspace": "default",
                     "resource_type": "experiment", "resource_pattern": exp, "permission": "READ"}]
    # users/list shows roles to an admin, and to each user their own only
    bob = _new_user(admin)
    admin("POST", "/3.0/mlflow/roles/assign", json={"username": bob[0], "role_id": rid})
    seen_by_admin = {u["username"]: u["roles"] for u in admin("GET", "/2.0/mlflow/users/list").json()["users"]}
    assert [r["id"] for r in seen_by_admin[bob[0]]] == [rid]
    seen_by_alice = {u["username"]: u["roles"] for u in as_alice("GET", "/2.0/mlflow/users/list").json()["users"]}
    assert [r["id"] for r in seen_by_alice[alice[0]]] == [rid] and seen_by_alice[bob[0]] == []
    # a member of a role in the workspace may read its roles; only an admin changes them
    assert as_alice("GET", "/3.0/mlflow/roles/get", json={"role_id": rid}).json()["role"]["permissions"] == [rp]
    _error(as_alice("POST", "/3.0/mlflow/roles/create", json={"workspace": "default", "name": "mine"}),
           403, "PERMISSION_DENIED")
    updated = admin("PATCH", "/3.0/mlflow/roles/permissions/update",
                    json={"role_permission_id": rp["id"], "permission": "EDIT"}).json()["role_permission"]
    assert updated["permission"] == "EDIT"
    assert admin("GET", "/3.0/mlflow/roles/permissions/list",
                 json={"role_id": rid}).json()["role_permissions"] == [updated]
    renamed = admin("PATCH", "/3.0/mlflow/roles/update", json={"role_id": rid, "name": f"editors-{alice[0]}"})
    assert renamed.json()["role"]["name"] == f"editors-{alice[0]}"
    users = admin("GET", "/3.0/mlflow/roles/users/list", json={"role_id": rid}).json()["assignments"]
    assert [a["role_id"] for a in users] == [rid, rid]  # alice and bob
    listed = admin("GET", "/3.0/mlflow/roles/list", json={"workspace": "default"}).json()["roles"]
    assert rid in [r["id"] for r in listed]
    assert admin("DELETE", "/3.0/mlflow/roles/unassign", json={"username": alice[0], "role_id": rid}).json() == {}
    _error(as_alice("GET", f"/2.0/mlflow/experiments/get?experiment_id={exp}"), 403, "PERMISSION_DENIED")
    assert admin("DELETE", "/3.0/mlflow/roles/permissions/remove",
                 json={"role_permission_id": rp["id"]}).json() == {}
    assert admin("DELETE", "/3.0/mlflow/roles/delete", json={"role_id": rid}).json() == {}
    missing = admin("GET", "/3.0/mlflow/roles/get", json={"role_id": rid})
    assert _error(missing, 404, "RESOURCE_DOES_NOT_EXIST") == f"Role with id={rid} not found"


def test_role_refusals(admin, server):
    other_ws = admin("POST", "/3.0/mlflow/roles/create", json={"workspace": "team-b", "name": "x"})
    assert "one workspace, 'default'" in _error(other_ws, 400, "INVALID_PARAMETER_VALUE")
    empty = admin("POST", "/3.0/mlflow/roles/create", json={"workspace": "default", "name": " "})
    assert _error(empty, 400, "INVALID_PARAMETER_VALUE") == "Role name cannot be empty."
    not_int = admin("GET", "/3.0/mlflow/roles/get", json={"role_id": "abc"})
    assert _error(not_int, 400, "INVALID_PARAMETER_VALUE") == "Parameter 'role_id' must be an integer. Got: 'abc'"
    nothing = admin("PATCH", "/3.0/mlflow/roles/update", json={"role_id": 1})
    assert _error(nothing, 400, "INVALID_PARAMETER_VALUE") == (
        "At least one of 'name' or 'description' must be provided to update a role.")
    name = f"dup-{next(_names)}"
    assert admin("POST", "/3.0/mlflow/roles/create", json={"workspace": "default", "name": name}).status_code == 200
    dup = admin("POST", "/3.0/mlflow/roles/create", json={"workspace": "default", "name": name})
    _error(dup, 400, "RESOURCE_ALREADY_EXISTS")
    # a user with no role may not list or read roles
    as_user = Api(server, _new_user(admin))
    _error(as_user("GET", "/3.0/mlflow/roles/list"), 403, "PERMISSION_DENIED")
    _error(as_user("GET", "/3.0/mlflow/roles/list", json={"workspace": "default"}), 403, "PERMISSION_DENIED")


# ------------------------------------------------------------------ ours: tokens, audit
def test_tokens_are_shown_once_and_revocable(admin, server):
    alice = _new_user(admin)
    as_alice = Api(server, alice)
    created = as_alice("POST", "/2.0/mltrail/tokens/create", json={"name": "laptop", "expires_in_days": 30})
    assert created.status_code == 200, created.text
    body = created.json()
    secret, token = body["secret"], body["token"]
    assert secret.startswith("mlt_") and token["name"] == "laptop" and token["username"] == alice[0]
    assert token["expires_at"] > token["created_at"]
    listed = as_alice("GET", "/2.0/mltrail/tokens/list").json()["tokens"]
    assert [t["id"] for t in listed] == [token["id"]] and secret not in str(listed)
    as_token = Api(server, token=secret)
    current = as_token("GET", "/2.0/mlflow/users/current").json()
    assert current["user"]["username"] == alice[0] and current["is_basic_auth"] is False
    # another user's tokens are the admin's business only
    bob = Api(server, _new_user(admin))
    _error(bob("GET", "/2.0/mltrail/tokens/list", json={"username": alice[0]}), 403, "PERMISSION_DENIED")
    assert [t["id"] for t in admin("GET", "/2.0/mltrail/tokens/list",
                                   json={"username": alice[0]}).json()["tokens"]] == [token["id"]]
    assert as_alice("POST", "/2.0/mltrail/tokens/revoke", json={"token_id": token["id"]}).json() == {}
    assert as_token("GET", "/2.0/mlflow/users/current").status_code == 401
    empty = as_alice("POST", "/2.0/mltrail/tokens/create", json={"name": "  "})
    assert "cannot be empty" in _error(empty, 400, "INVALID_PARAMETER_VALUE")


def test_audit_log_is_admins_only_and_pages(admin, server):
    alice = _new_user(admin)
    _error(Api(server, alice)("GET", "/2.0/mltrail/audit/list"), 403, "PERMISSION_DENIED")
    exp = _experiment(admin, f"audited-{alice[0]}")
    admin("POST", "/3.0/mlflow/users/permissions/grant",
          json={"username": alice[0], "resource_type": "experiment", "resource_id": exp, "permission": "READ"})
    events = admin("GET", "/2.0/mltrail/audit/list", json={"max_results": 2}).json()
    assert len(events["events"]) == 2 and "next_page_token" in events
    newest = events["events"][0]
    assert newest["actor"] == ADMIN[0] and newest["target"] == alice[0] and newest["details"]["resource_id"] == exp
    older = admin("GET", "/2.0/mltrail/audit/list",
                  json={"max_results": 2, "page_token": events["next_page_token"]}).json()["events"]
    assert older and all(e["id"] < events["events"][-1]["id"] for e in older)
    bad = admin("GET", "/2.0/mltrail/audit/list", json={"max_results": 0})
    assert "between 1 and 1000" in _error(bad, 400, "INVALID_PARAMETER_VALUE")


def test_every_route_has_an_ajax_twin():
    api = {p for _, p in paths() if p.startswith("/api/")}
    ajax = {p for _, p in paths() if p.startswith("/ajax-api/")}
    assert {p.replace("/api/", "/ajax-api/", 1) for p in api} == ajax
    assert "/api/3.0/mlflow/users/permissions/grant" in api and "/api/2.0/mlflow/users/create" in api


def test_without_auth_the_api_is_not_there(tmp_path, request):
    srv = ServerThread(create_app(server_settings(tmp_path))).start()
    request.addfinalizer(srv.stop)
    resp = requests.get(f"{srv.uri}/api/2.0/mlflow/users/current", timeout=30)
    assert "--auth" in _error(resp, 404, "ENDPOINT_NOT_FOUND")
