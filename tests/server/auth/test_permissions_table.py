"""Who may do what on a server with `--auth`: a table of endpoints x permission levels, over real HTTP.

A real server (uvicorn in a thread, SQLite in tmp_path, the admin made from
`MLTRAIL_ADMIN_PASSWORD`) holds a shared experiment with a run, an artifact and a logged model,
a shared registered model with a version, and the same again marked SECRET that only the admin
may see. One user per level (no grant, READ, EDIT, MANAGE on the shared resources), the admin,
and an anonymous caller call every endpoint family: REST runs, experiments, metrics, artifacts,
the artifact proxy, the registry, logged models, /get-artifact, UI pages and UI data. Each
answer's status is the table's; searches, lists and pages never show the SECRET resources.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests
from auth_support import ADMIN, auth_app
from server_fixture import ServerThread, close_stores, server_settings

PASSWORD = "user-password-0123"
LEVELS = ["anonymous", "none", "READ", "EDIT", "MANAGE", "admin"]
RANK = {"none": 0, "READ": 1, "EDIT": 2, "MANAGE": 3, "admin": 4}
SECRET = "SECRET-7f3a"  # in every forbidden resource's name, params and tags
_fresh = itertools.count()


class Caller:
    def __init__(self, uri: str, who: str) -> None:
        self.uri = uri
        self.session = requests.Session()
        if who == "admin":
            self.session.auth = ADMIN
        elif who != "anonymous":
            self.session.auth = (f"u_{who.lower()}", PASSWORD)

    def __call__(self, method: str, path: str, **kw) -> requests.Response:
        return self.session.request(method, self.uri + path, timeout=30, allow_redirects=False, **kw)


@dataclass
class World:
    uri: str
    ctx: object
    admin: Caller
    exp: str
    run: str
    model_id: str
    secret_exp: str
    secret_run: str
    secret_model_id: str

    def fresh_run(self) -> str:
        r = self.admin("POST", "/api/2.0/mlflow/runs/create", json={"experiment_id": self.exp})
        assert r.status_code == 200, r.text
        return r.json()["run"]["info"]["run_id"]


def _ok(r: requests.Response) -> dict:
    assert r.status_code == 200, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else {}


def _populate(admin: Caller, name: str, model_name: str, marker: str) -> tuple[str, str, str]:
    """An experiment with a run (metric, param, tag, artifact), a logged model, and a registered model."""
    exp = _ok(admin("POST", "/api/2.0/mlflow/experiments/create", json={"name": name}))["experiment_id"]
    run = _ok(admin("POST", "/api/2.0/mlflow/runs/create",
                    json={"experiment_id": exp, "run_name": f"run-{marker}"}))["run"]["info"]["run_id"]
    _ok(admin("POST", "/api/2.0/mlflow/runs/log-batch", json={
        "run_id": run, "metrics": [{"key": "loss", "value": 0.5, "timestamp": 1, "step": 0}],
        "params": [{"key": "p", "value": marker}], "tags": [{"key": "t", "value": marker}]}))
    _ok(admin("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{run}/artifacts/a.txt", data=marker.encode()))
    model_id = _ok(admin("POST", "/api/2.0/mlflow/logged-models", json={
        "experiment_id": exp, "name": f"lm-{marker}", "source_run_id": run}))["model"]["info"]["model_id"]
    _ok(admin("POST", "/api/2.0/mlflow/registered-models/create", json={"name": model_name}))
    _ok(admin("POST", "/api/2.0/mlflow/model-versions/create", json={
        "name": model_name, "source": f"mlflow-artifacts:/{exp}/{run}/artifacts", "run_id": run}))
    return exp, run, model_id


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    tmp = tmp_path_factory.mktemp("permissions")
    app = auth_app(server_settings(tmp, auth=True, ui=True))
    srv = ServerThread(app).start()
    ctx = app.state.ctx
    admin = Caller(srv.uri, "admin")
    exp, run, model_id = _populate(admin, "shared-exp", "shared-model", "shared")
    secret_exp, secret_run, secret_model_id = _populate(admin, f"exp-{SECRET}", f"model-{SECRET}", SECRET)
    for lv in ("none", "READ", "EDIT", "MANAGE"):
        username = f"u_{lv.lower()}"
        ctx.auth.create_user(username, PASSWORD)
        if lv != "none":
            ctx.auth.set_permission(username, "experiment", exp, lv)
            ctx.auth.set_permission(username, "registered_model", "shared-model", lv)
    yield World(srv.uri, ctx, admin, exp, run, model_id, secret_exp, secret_run, secret_model_id)
    close_stores(srv.uri)
    srv.stop()


@dataclass
class Case:
    """One endpoint: how to call it, the level it needs, and how a refusal looks."""

    name: str
    needs: str  # READ | EDIT | MANAGE | AUTHENTICATED | PUBLIC
    call: Callable[[World, Caller], requests.Response]
    page: bool = False  # a UI page: anonymous callers are redirected to the login page
    by_name: bool = False  # a lookup by name: refused like a missing resource while not readable


def _get(path: str) -> Callable[[World, Caller], requests.Response]:
    return lambda w, c: c("GET", path.format(w=w))


def _post(path: str, body: Callable[[World], dict]) -> Callable[[World, Caller], requests.Response]:
    return lambda w, c: c("POST", path.format(w=w), json=body(w))


CASES = [
    # REST: experiments
    Case("experiments/get", "READ", _get("/api/2.0/mlflow/experiments/get?experiment_id={w.exp}")),
    Case("experiments/get-by-name", "READ", _get("/api/2.0/mlflow/experiments/get-by-name?experiment_name=shared-exp"),
         by_name=True),
    Case("experiments/set-experiment-tag", "EDIT", _post("/api/2.0/mlflow/experiments/set-experiment-tag",
                                                         lambda w: {"experiment_id": w.exp, "key": "k", "value": "v"})),
    Case("experiments/search", "AUTHENTICATED", _post("/api/2.0/mlflow/experiments/search", lambda w: {})),
    Case("experiments/create", "AUTHENTICATED", _post("/api/2.0/mlflow/experiments/create",
                                                      lambda w: {"name": f"new-{next(_fresh)}"})),
    # REST: runs and metrics
    Case("runs/get", "READ", _get("/api/2.0/mlflow/runs/get?run_id={w.run}")),
    Case("ajax runs/get", "READ", _get("/ajax-api/2.0/mlflow/runs/get?run_id={w.run}")),
    Case("runs/create", "EDIT", _post("/api/2.0/mlflow/runs/create", lambda w: {"experiment_id": w.exp})),
    Case("runs/set-tag", "EDIT", _post("/api/2.0/mlflow/runs/set-tag",
                                       lambda w: {"run_id": w.run, "key": "k", "value": "v"})),
    Case("runs/log-batch", "EDIT", _post("/api/2.0/mlflow/runs/log-batch", lambda w: {
        "run_id": w.run, "metrics": [{"key": "m", "value": 1.0, "timestamp": 2, "step": 1}]})),
    Case("runs/delete", "MANAGE", lambda w, c: c("POST", "/api/2.0/mlflow/runs/delete",
                                                 json={"run_id": w.fresh_run()})),
    Case("runs/search", "AUTHENTICATED", _post("/api/2.0/mlflow/runs/search", lambda w: {"experiment_ids": [w.exp]})),
    Case("metrics/get-history", "READ", _get("/api/2.0/mlflow/metrics/get-history?run_id={w.run}&metric_key=loss")),
    Case("metrics/get-history-bulk", "READ",
         _get("/ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id={w.run}&metric_key=loss")),
    Case("mltrail get-history-sampled", "READ",
         _get("/api/2.0/mltrail/metrics/get-history-sampled?run_id={w.run}&metric_key=loss")),
    Case("search-datasets", "READ", _post("/ajax-api/2.0/mlflow/experiments/search-datasets",
                                          lambda w: {"experiment_ids": [w.exp]})),
    # artifacts: listing, the proxy, downloads
    Case("artifacts/list", "READ", _get("/api/2.0/mlflow/artifacts/list?run_id={w.run}")),
    Case("proxy download", "READ", _get("/api/2.0/mlflow-artifacts/artifacts/{w.exp}/{w.run}/artifacts/a.txt")),
    Case("proxy list", "READ", _get("/api/2.0/mlflow-artifacts/artifacts?path={w.exp}/{w.run}/artifacts")),
    Case("proxy upload", "EDIT", lambda w, c: c(
        "PUT", f"/api/2.0/mlflow-artifacts/artifacts/{w.exp}/{w.run}/artifacts/up.txt", data=b"x")),
    Case("get-artifact", "READ", _get("/get-artifact?run_id={w.run}&path=a.txt")),
    Case("model-versions/get-artifact", "READ", _get("/model-versions/get-artifact?name=shared-model&version=1"
                                                     "&path=a.txt"), by_name=True),
    # logged models
    Case("logged-models/get", "READ", _get("/api/2.0/mlflow/logged-models/{w.model_id}")),
    Case("logged-models/search", "AUTHENTICATED", _post("/api/2.0/mlflow/logged-models/search",
                                                        lambda w: {"experiment_ids": [w.exp]})),
    Case("logged-models/params", "EDIT", _post("/api/2.0/mlflow/logged-models/{w.model_id}/params",
                                               lambda w: {"model_id": w.model_id,
                                                          "params": [{"key": "k", "value": "v"}]})),
    # the registry
    Case("registered-models/get", "READ", _get("/api/2.0/mlflow/registered-models/get?name=shared-model"),
         by_name=True),
    Case("model-versions/get", "READ", _get("/api/2.0/mlflow/model-versions/get?name=shared-model&version=1"),
         by_name=True),
    Case("registered-models/set-tag", "EDIT", _post("/api/2.0/mlflow/registered-models/set-tag",
                                                    lambda w: {"name": "shared-model", "key": "k", "value": "v"}),
         by_name=True),
    Case("registered-models/search", "AUTHENTICATED", _get("/api/2.0/mlflow/registered-models/search")),
    Case("registered-models/create", "AUTHENTICATED", _post("/api/2.0/mlflow/registered-models/create",
                                                            lambda w: {"name": f"rm-{next(_fresh)}"})),
    # UI pages and the data their scripts fetch
    Case("UI experiments list", "AUTHENTICATED", _get("/"), page=True),
    Case("UI models list", "AUTHENTICATED", _get("/models"), page=True),
    Case("UI runs table", "READ", _get("/experiments/{w.exp}"), page=True),
    Case("UI run page", "READ", _get("/runs/{w.run}"), page=True),
    Case("UI compare", "READ", _get("/compare?run_ids={w.run}"), page=True),
    Case("UI logged model", "READ", _get("/models/{w.model_id}"), page=True),
    Case("UI registered model", "READ", _get("/registered-models/shared-model"), page=True, by_name=True),
    Case("UI data runs", "READ", _get("/ui/api/runs?experiment_id={w.exp}")),
    Case("UI data metrics", "READ", _get("/ui/api/metrics?run_ids={w.run}&key=loss")),
    Case("UI data artifacts", "READ", _get("/ui/api/artifacts?run_id={w.run}")),
    Case("UI file", "READ", _get("/ui/files/run/{w.run}/a.txt")),
    # the server itself
    Case("health", "PUBLIC", _get("/health")),
    Case("static file", "PUBLIC", _get("/ui/static/ui.css")),
]


def _expected(case: Case, who: str) -> int:
    if case.needs == "PUBLIC":
        return 200
    if who == "anonymous":
        return 302 if case.page else 401
    if case.needs == "AUTHENTICATED":
        return 200
    if RANK[who] >= RANK[case.needs]:
        return 200
    if case.by_name and who == "none":
        return 404
    return 403


@pytest.mark.parametrize("who", LEVELS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_status_by_level(world, case, who):
    r = case.call(world, Caller(world.uri, who))
    assert r.status_code == _expected(case, who), f"{case.name} as {who}: {r.status_code} {r.text[:300]}"
    if who != "admin":
        assert SECRET not in r.text
    if r.status_code == 401:
        assert r.json()["error_code"] == "UNAUTHENTICATED"
        assert r.headers["WWW-Authenticate"].startswith("Basic")
    elif r.status_code == 302:
        assert r.headers["location"].startswith("/login?next=")
    elif r.status_code == 403 and not case.page:
        assert r.json() == {"error_code": "PERMISSION_DENIED", "message": "Permission denied"}


def test_a_refused_name_answers_like_a_missing_one(world):
    caller = Caller(world.uri, "MANAGE")  # MANAGE on the shared resources, nothing on the SECRET ones
    for path, missing in [
        (f"/api/2.0/mlflow/registered-models/get?name=model-{SECRET}", "/api/2.0/mlflow/registered-models/get?name=nx"),
        (f"/api/2.0/mlflow/experiments/get-by-name?experiment_name=exp-{SECRET}",
         "/api/2.0/mlflow/experiments/get-by-name?experiment_name=nx")]:
        refused, absent = caller("GET", path), caller("GET", missing)
        assert refused.status_code == absent.status_code == 404
        assert refused.json()["error_code"] == absent.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        assert refused.json()["message"].replace(f"exp-{SECRET}", "nx").replace(f"model-{SECRET}", "nx") == \
            absent.json()["message"]


def test_forbidden_experiment_is_refused_by_id(world):
    caller = Caller(world.uri, "MANAGE")
    for path in [f"/api/2.0/mlflow/experiments/get?experiment_id={world.secret_exp}",
                 f"/api/2.0/mlflow/runs/get?run_id={world.secret_run}",
                 f"/api/2.0/mlflow/logged-models/{world.secret_model_id}",
                 f"/get-artifact?run_id={world.secret_run}&path=a.txt",
                 f"/api/2.0/mlflow-artifacts/artifacts/{world.secret_exp}/{world.secret_run}/artifacts/a.txt",
                 f"/ui/api/metrics?run_ids={world.run},{world.secret_run}&key=loss",
                 f"/experiments/{world.secret_exp}", f"/runs/{world.secret_run}",
                 f"/compare?run_ids={world.run},{world.secret_run}"]:
        r = caller("GET", path)
        assert r.status_code == 403, (path, r.status_code, r.text[:200])
        assert SECRET not in r.text
    # writing a metric into a logged model of a forbidden experiment is refused too
    r = caller("POST", "/api/2.0/mlflow/runs/log-batch", json={"run_id": world.run, "metrics": [
        {"key": "m", "value": 1.0, "timestamp": 3, "step": 2, "model_id": world.secret_model_id}]})
    assert r.status_code == 403


@pytest.mark.parametrize("who", ["none", "READ", "EDIT", "MANAGE"])
def test_no_forbidden_data_in_searches_and_lists(world, who):
    c = Caller(world.uri, who)
    answers = [
        c("POST", "/api/2.0/mlflow/experiments/search", json={"max_results": 1000}),
        c("GET", "/api/2.0/mlflow/experiments/search?view_type=ALL"),
        c("POST", "/api/2.0/mlflow/runs/search", json={"experiment_ids": [world.exp, world.secret_exp, "0"]}),
        c("POST", "/api/2.0/mlflow/logged-models/search", json={"experiment_ids": [world.exp, world.secret_exp]}),
        c("POST", "/api/2.0/mlflow/logged-models/search", json={"experiment_ids": [world.secret_exp]}),
        c("GET", "/api/2.0/mlflow/registered-models/search"),
        c("GET", "/api/2.0/mlflow/model-versions/search"),
        c("GET", "/ajax-api/2.0/mlflow/registered-models/search"),
        c("GET", "/"), c("GET", "/?view=all"), c("GET", "/models"),
    ]
    for r in answers:
        assert r.status_code == 200, (r.request.url, r.text[:200])
        assert SECRET not in r.text, r.request.url
    exps = {e["experiment_id"] for e in answers[0].json().get("experiments", [])}
    runs = {r["info"]["run_id"] for r in answers[2].json().get("runs", [])}
    models = {m["name"] for m in answers[5].json().get("registered_models", [])}
    readable = who != "none"
    assert (world.exp in exps) is readable
    assert (world.run in runs) is readable
    assert ("shared-model" in models) is readable
    assert world.secret_exp not in exps and world.secret_run not in runs


def test_admin_sees_everything(world):
    exps = world.admin("POST", "/api/2.0/mlflow/experiments/search", json={}).json()["experiments"]
    assert {world.exp, world.secret_exp} <= {e["experiment_id"] for e in exps}
    assert SECRET in world.admin("GET", "/").text


def test_search_paging_is_filtered_before_paging(world):
    """Readable and forbidden experiments interleaved: every page is full until the last, and the
    pages together are exactly the readable ones."""
    auth = world.ctx.auth
    auth.create_user("u_pager", PASSWORD)
    readable = set()
    for i in range(7):
        exp = _ok(world.admin("POST", "/api/2.0/mlflow/experiments/create",
                              json={"name": f"page-{i}-{SECRET if i % 2 else 'open'}"}))["experiment_id"]
        if i % 2 == 0:
            auth.set_permission("u_pager", "experiment", exp, "READ")
            readable.add(exp)
    c = requests.Session()
    c.auth = ("u_pager", PASSWORD)
    seen: list[str] = []
    token = None
    sizes = []
    while True:
        body = {"max_results": 2, **({"page_token": token} if token else {})}
        page = _ok(c.post(world.uri + "/api/2.0/mlflow/experiments/search", json=body, timeout=30))
        sizes.append(len(page.get("experiments", [])))
        seen += [e["experiment_id"] for e in page.get("experiments", [])]
        token = page.get("next_page_token")
        if not token:
            break
    assert sorted(seen) == sorted(readable)
    assert sizes == [2, 2], sizes  # 4 readable experiments: two full pages, no empty page after them


def test_creator_gets_manage_and_rename_keeps_grants(world):
    c = Caller(world.uri, "none")
    exp = _ok(c("POST", "/api/2.0/mlflow/experiments/create", json={"name": f"mine-{next(_fresh)}"}))["experiment_id"]
    assert world.ctx.auth.get_permission("u_none", "experiment", exp).permission == "MANAGE"
    run = _ok(c("POST", "/api/2.0/mlflow/runs/create", json={"experiment_id": exp}))["run"]["info"]["run_id"]
    _ok(c("POST", "/api/2.0/mlflow/runs/delete", json={"run_id": run}))
    name = f"my-model-{next(_fresh)}"
    _ok(c("POST", "/api/2.0/mlflow/registered-models/create", json={"name": name}))
    _ok(c("POST", "/api/2.0/mlflow/registered-models/rename", json={"name": name, "new_name": name + "-v2"}))
    assert _ok(c("GET", f"/api/2.0/mlflow/registered-models/get?name={name}-v2"))["registered_model"]["name"] == \
        name + "-v2"
    assert world.ctx.auth.list_permissions("u_none", "registered_model", name) == []
    _ok(c("DELETE", "/api/2.0/mlflow/registered-models/delete", json={"name": name + "-v2"}))
    assert world.ctx.auth.list_permissions(None, "registered_model", name + "-v2") == []


def test_a_version_cannot_copy_a_forbidden_run_or_model_through_its_source_uri(world):
    """`runs:/<run>/...` and `models:/...` sources name what they copy without a run_id: READ on it is
    needed all the same, or a user could register (then download) another team's model."""
    c = Caller(world.uri, "none")
    name = f"copier-{next(_fresh)}"
    _ok(c("POST", "/api/2.0/mlflow/registered-models/create", json={"name": name}))
    for source in (f"runs:/{world.secret_run}/model", f"models:/{world.secret_model_id}",
                   f"models:/model-{SECRET}/1"):
        r = c("POST", "/api/2.0/mlflow/model-versions/create", json={"name": name, "source": source})
        assert r.status_code in (403, 404), (source, r.status_code, r.text)
    missing = c("POST", "/api/2.0/mlflow/model-versions/create", json={"name": name, "source": "models:/nope/1"})
    assert r.status_code == missing.status_code == 404  # the forbidden model answers like a missing one
    r = c("GET", f"/api/2.0/mlflow/registered-models/get?name={name}")
    assert _ok(r)["registered_model"].get("latest_versions", []) == []


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    """A server whose default permission is READ (an open team), with one experiment refused explicitly."""
    tmp = tmp_path_factory.mktemp("open")
    app = auth_app(server_settings(tmp, auth=True, ui=True, auth_default_permission="READ"))
    srv = ServerThread(app).start()
    yield srv.uri, app.state.ctx
    close_stores(srv.uri)
    srv.stop()


def test_default_read_shows_all_but_refused(open_server):
    uri, ctx = open_server
    admin = Caller(uri, "admin")
    ids = [_ok(admin("POST", "/api/2.0/mlflow/experiments/create", json={"name": n}))["experiment_id"]
           for n in ("open-a", f"closed-{SECRET}", "open-b")]
    ctx.auth.create_user("u_read", PASSWORD)
    ctx.auth.set_permission("u_read", "experiment", ids[1], "NO_PERMISSIONS")
    c = Caller(uri, "READ")
    found = {e["experiment_id"] for e in _ok(c("POST", "/api/2.0/mlflow/experiments/search", json={}))["experiments"]}
    assert {ids[0], ids[2]} <= found and ids[1] not in found
    assert c("GET", f"/api/2.0/mlflow/experiments/get?experiment_id={ids[1]}").status_code == 403
    assert c("GET", f"/api/2.0/mlflow/experiments/get?experiment_id={ids[0]}").status_code == 200
    assert c("POST", "/api/2.0/mlflow/experiments/set-experiment-tag",
             json={"experiment_id": ids[0], "key": "k", "value": "v"}).status_code == 403  # READ is not EDIT
    assert SECRET not in c("GET", "/").text


def test_role_patterns_grant_by_name(open_server):
    uri, ctx = open_server
    admin = Caller(uri, "admin")
    for name in ("team-a-one", "team-a-two", "team-b-one"):
        _ok(admin("POST", "/api/2.0/mlflow/registered-models/create", json={"name": name}))
    ctx.auth.create_user("u_role", PASSWORD)
    role = ctx.auth.create_role(f"team-b-blind-{next(_fresh)}")
    ctx.auth.add_role_permission(role.id, "registered_model", "team-b-*", "NO_PERMISSIONS")
    ctx.auth.add_role_permission(role.id, "registered_model", "team-a-*", "EDIT")
    ctx.auth.assign_role("u_role", role.id)
    s = requests.Session()
    s.auth = ("u_role", PASSWORD)
    names = {m["name"] for m in _ok(s.get(uri + "/api/2.0/mlflow/registered-models/search", timeout=30))
             .get("registered_models", [])}
    assert {"team-a-one", "team-a-two"} <= names and "team-b-one" not in names
    r = s.post(uri + "/api/2.0/mlflow/registered-models/set-tag", json={"name": "team-a-one", "key": "k", "value": "v"},
               timeout=30)
    assert r.status_code == 200, r.text
    assert s.get(uri + "/api/2.0/mlflow/registered-models/get?name=team-b-one", timeout=30).status_code == 404
    page = s.get(uri + "/models", timeout=30).text
    assert "team-a-one" in page and "team-b-one" not in page
