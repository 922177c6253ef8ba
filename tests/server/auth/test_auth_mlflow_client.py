"""The real mlflow 3.17.2 against `mltrail server --auth`: `AuthServiceClient` manages users, grants
and roles unchanged; the tracking client runs the seed scripts with a username/password and with a
token; a user without permission gets MLflow's `PERMISSION_DENIED`.

MLflow lives in its own virtual environment (`mlflow_python` fixture); each script runs as its own
process against one server on 127.0.0.1 (in-process uvicorn over SQLite in a temporary directory).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import requests
from auth_support import ADMIN, auth_app
from server_fixture import ServerThread, close_stores, server_settings

from seed_scripts import seed_script

pytestmark = [pytest.mark.slow, pytest.mark.tf]


# Every AuthServiceClient method of mlflow 3.17.2, in the order an admin would use them; prints what
# came back as JSON for the test to check.
AUTH_CLIENT_SCRIPT = r'''
import json, sys
from mlflow.exceptions import MlflowException
from mlflow.server.auth.client import AuthServiceClient

uri, exp_id = sys.argv[1], sys.argv[2]
c = AuthServiceClient(uri)
out = {}
u = c.create_user("alice", "alice-password-01")
out["created"] = [u.username, u.is_admin, isinstance(u.id, int)]
out["got"] = c.get_user("alice").username
c.update_user_password("alice", "alice-password-02")
c.update_user_admin("alice", True)
out["admin_after_update"] = c.get_user("alice").is_admin
c.update_user_admin("alice", False)
try:
    c.create_user("alice", "alice-password-03")
except MlflowException as e:
    out["duplicate"] = e.error_code

role = c.create_role("default", "readers", description="read experiments")
out["role"] = [role.name, role.workspace, role.description, role.permissions]
rp = c.add_role_permission(role.id, "experiment", exp_id, "READ")
out["role_permission"] = [rp.role_id == role.id, rp.resource_type, rp.resource_pattern, rp.permission]
rp = c.update_role_permission(rp.id, "EDIT")
out["updated_permission"] = rp.permission
out["role_permissions"] = [p.permission for p in c.list_role_permissions(role.id)]
assignment = c.assign_role("alice", role.id)
out["assignment"] = assignment.role_id == role.id
out["user_roles"] = [r.name for r in c.list_user_roles("alice")]
out["role_users"] = [a.role_id == role.id for a in c.list_role_users(role.id)]
role = c.update_role(role.id, name="editors", description="edit experiments")
out["renamed"] = [role.name, role.description, c.get_role(role.id).name]
out["roles"] = sorted(r.name for r in c.list_roles("default"))
out["all_roles"] = sorted(r.name for r in c.list_all_roles())
out["check_via_role"] = c.get_user_permission("alice", "experiment", exp_id).to_json()
c.unassign_role("alice", role.id)
c.remove_role_permission(rp.id)
c.delete_role(role.id)
try:
    c.get_role(role.id)
except MlflowException as e:
    out["deleted_role"] = e.error_code

c.create_user("bob", "bob-password-0001")
c.grant_user_permission("bob", "experiment", exp_id, "MANAGE")
r = c.get_user_permission("bob", "experiment", exp_id)
out["bob_check"] = [r.allowed, r.permission]
c.revoke_user_permission("bob", "experiment", exp_id)
try:
    c.revoke_user_permission("bob", "experiment", exp_id)
except MlflowException as e:
    out["revoke_again"] = e.error_code
c.delete_user("bob")
try:
    c.get_user("bob")
except MlflowException as e:
    out["deleted_user"] = e.error_code
print(json.dumps(out))
'''

# A user without permission on an experiment, through mlflow's tracking client.
DENIED_SCRIPT = r'''
import json, sys
import mlflow
from mlflow.exceptions import MlflowException

exp_id = sys.argv[1]
client = mlflow.MlflowClient()
out = {}
for name, call in [("get_experiment", lambda: client.get_experiment(exp_id)),
                   ("create_run", lambda: client.create_run(exp_id)),
                   ("search_runs", lambda: len(client.search_runs([exp_id])))]:
    try:
        result = call()
        out[name] = result if isinstance(result, int) else "allowed"
    except MlflowException as e:
        out[name] = e.error_code
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def auth_python(mlflow_python):
    """mlflow's python: its venv has the `auth` extra (`mlflow.server.auth.client` imports Flask-WTF)."""
    return mlflow_python


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth-mlflow-client")
    app = auth_app(server_settings(tmp, auth=True))
    srv = ServerThread(app).start()
    yield srv.uri
    close_stores(srv.uri)
    srv.stop()


def _env(server: str, **credentials: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLTRAIL_", "MLFLOW_"))}
    env.update(MLFLOW_TRACKING_URI=server, TF_CPP_MIN_LOG_LEVEL="2", **credentials)
    return env


def _basic(user: tuple[str, str]) -> dict[str, str]:
    return {"MLFLOW_TRACKING_USERNAME": user[0], "MLFLOW_TRACKING_PASSWORD": user[1]}


def _run(python: Path, script: Path, env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([str(python), str(script), *args], cwd=script.parent, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, f"{script.name} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n" \
                                 f"{proc.stderr[-6000:]}"
    return proc.stdout


def _admin_post(server: str, path: str, body: dict) -> dict:
    resp = requests.post(f"{server}{path}", json=body, auth=ADMIN, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _user(server: str, name: str) -> tuple[str, str]:
    user = (name, f"{name}-password-0123")
    _admin_post(server, "/api/2.0/mlflow/users/create", {"username": user[0], "password": user[1]})
    return user


def test_auth_service_client(auth_python, server, tmp_path):
    exp_id = _admin_post(server, "/api/2.0/mlflow/experiments/create", {"name": "shared"})["experiment_id"]
    script = tmp_path / "auth_client.py"
    script.write_text(AUTH_CLIENT_SCRIPT)
    out = json.loads(_run(auth_python, script, _env(server, **_basic(ADMIN)), server, exp_id).splitlines()[-1])
    assert out == {
        "created": ["alice", False, True], "got": "alice", "admin_after_update": True,
        "duplicate": "RESOURCE_ALREADY_EXISTS",
        "role": ["readers", "default", "read experiments", []],
        "role_permission": [True, "experiment", exp_id, "READ"], "updated_permission": "EDIT",
        "role_permissions": ["EDIT"], "assignment": True, "user_roles": ["readers"], "role_users": [True],
        "renamed": ["editors", "edit experiments", "editors"], "roles": ["editors"], "all_roles": ["editors"],
        "check_via_role": {"allowed": True, "permission": "EDIT"},
        "deleted_role": "RESOURCE_DOES_NOT_EXIST",
        "bob_check": [True, "MANAGE"], "revoke_again": "RESOURCE_DOES_NOT_EXIST",
        "deleted_user": "RESOURCE_DOES_NOT_EXIST",
    }
    # the password change went through: alice signs in with the new one only
    assert requests.get(f"{server}/api/2.0/mlflow/users/current", auth=("alice", "alice-password-02"),
                        timeout=30).status_code == 200
    assert requests.get(f"{server}/api/2.0/mlflow/users/current", auth=("alice", "alice-password-01"),
                        timeout=30).status_code == 401


def test_user_without_permission_is_denied(mlflow_python, server, tmp_path):
    owner, outsider = _user(server, "owner"), _user(server, "outsider")
    resp = requests.post(f"{server}/api/2.0/mlflow/experiments/create", json={"name": "private"}, auth=owner,
                         timeout=30)
    assert resp.status_code == 200, resp.text
    exp_id = resp.json()["experiment_id"]
    script = tmp_path / "denied.py"
    script.write_text(DENIED_SCRIPT)
    out = json.loads(_run(mlflow_python, script, _env(server, **_basic(outsider)), exp_id).splitlines()[-1])
    assert out["get_experiment"] == "PERMISSION_DENIED" and out["create_run"] == "PERMISSION_DENIED"
    # the owner (MANAGE, as creator) may do all three
    out = json.loads(_run(mlflow_python, script, _env(server, **_basic(owner)), exp_id).splitlines()[-1])
    assert out == {"get_experiment": "allowed", "create_run": "allowed", "search_runs": 1}
    # a search is filtered rather than refused: the outsider sees none of the owner's runs
    out = json.loads(_run(mlflow_python, script, _env(server, **_basic(outsider)), exp_id).splitlines()[-1])
    assert out["search_runs"] == 0


def test_seeds_with_password_and_with_token(mlflow_python, server, tmp_path):
    """A plain user, given EDIT on the Default experiment by an admin through the grant API, logs the
    seeds with basic auth and with an API token (`MLFLOW_TRACKING_TOKEN`)."""
    user = _user(server, "trainer")
    _admin_post(server, "/api/3.0/mlflow/users/permissions/grant",
                {"username": user[0], "resource_type": "experiment", "resource_id": "0", "permission": "EDIT"})
    script = seed_script("seed_callback", tmp_path / "password", for_mlflow=True)
    assert "seed_callback: ok" in _run(mlflow_python, script, _env(server, **_basic(user)))
    token = requests.post(f"{server}/api/2.0/mltrail/tokens/create", json={"name": "ci"}, auth=user,
                          timeout=30).json()["secret"]
    script = seed_script("seed_savedmodel", tmp_path / "token", for_mlflow=True)
    assert "seed_savedmodel: ok" in _run(mlflow_python, script, _env(server, MLFLOW_TRACKING_TOKEN=token))
    # a wrong token is refused (401 UNAUTHENTICATED), not taken for anonymous access
    bad = _run(mlflow_python, _write(tmp_path / "bad.py", DENIED_SCRIPT), _env(server, MLFLOW_TRACKING_TOKEN="mlt_no"),
               "0")
    assert json.loads(bad.splitlines()[-1]) == {"get_experiment": "UNAUTHENTICATED", "create_run": "UNAUTHENTICATED",
                                                "search_runs": "UNAUTHENTICATED"}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
