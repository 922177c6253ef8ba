"""AuthMiddleware on real servers (uvicorn on 127.0.0.1, SQLite in tmp_path): basic auth, bearer
tokens, session cookies, the trusted proxy header, 401 for wrong credentials, 429 for too many,
and the start-up rule (no admin, no server; the admin the environment asks for)."""

from __future__ import annotations

import base64

import pytest
import requests
from argon2 import PasswordHasher
from server_fixture import ServerThread, close_stores, server_settings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mltrail.server.app import create_app
from mltrail.server.auth import identity_of, sessions
from mltrail.server.auth.middleware import AuthMiddleware
from mltrail.server.auth.ratelimit import LoginLimiter
from mltrail.server.auth.startup import NoAdmin
from mltrail.server.auth.store import AuthStore, current_actor
from mltrail.store.sql import engine as eng

PW = "correct horse battery"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def whoami(request: Request) -> JSONResponse:
    """Runs in the threadpool, as the REST handlers do: the identity and the audit actor must reach it."""
    identity = identity_of(request)
    return JSONResponse({"user": identity.user.username if identity else None,
                         "via": identity.via if identity else None, "actor": list(current_actor())})


def echo_server(request, tmp_path, **middleware_kw) -> tuple[str, AuthStore]:
    engine = eng.make_engine(f"sqlite:///{tmp_path}/auth.db")
    eng.ensure_schema(engine)
    store = AuthStore(engine, password_hasher=FAST, limiter=middleware_kw.pop("limiter", None))
    app = Starlette(routes=[Route("/whoami", whoami)],
                    middleware=[Middleware(AuthMiddleware, store=store, **middleware_kw)])
    srv = ServerThread(app, proxy_headers=False).start()  # as `mltrail server --auth` runs uvicorn
    request.addfinalizer(srv.stop)
    request.addfinalizer(engine.dispose)
    return srv.uri, store


@pytest.fixture
def echo(request, tmp_path):
    uri, store = echo_server(request, tmp_path, limiter=LoginLimiter(pair_limit=3, address_limit=100))
    store.create_user("alice", PW)
    return uri, store


def test_basic_bearer_and_cookie_identify_the_caller(echo):
    uri, store = echo
    assert requests.get(uri + "/whoami", timeout=10).json() == {"user": None, "via": None,
                                                               "actor": ["anonymous", "127.0.0.1"]}
    r = requests.get(uri + "/whoami", headers=basic("alice", PW), timeout=10)
    assert r.json() == {"user": "alice", "via": "password", "actor": ["alice", "127.0.0.1"]}
    _, secret = store.create_token("alice", "ci")
    r = requests.get(uri + "/whoami", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert (r.json()["user"], r.json()["via"]) == ("alice", "token")
    cookie = sessions.issue(store, store.get_user("alice"))
    r = requests.get(uri + "/whoami", cookies={sessions.COOKIE: cookie}, timeout=10)
    assert (r.json()["user"], r.json()["via"]) == ("alice", "session")


@pytest.mark.parametrize("headers", [
    basic("alice", "wrong password!!"), basic("nobody", PW), {"Authorization": "Basic !!!not-base64"},
    {"Authorization": "Bearer mlt_not-a-real-token"}, {"Authorization": "Digest username=alice"},
    basic("x" * 300, PW), basic("nul\x00name", PW),  # names no user can have: refused before the database
])
def test_wrong_credentials_are_answered_401(echo, headers):
    uri, _ = echo
    r = requests.get(uri + "/whoami", headers=headers, timeout=10)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="mltrail"'
    body = r.json()
    assert body["error_code"] == "UNAUTHENTICATED" and body["message"].startswith("You are not authenticated.")


def test_too_many_wrong_passwords_are_answered_429(echo):
    uri, _ = echo
    for _ in range(3):
        assert requests.get(uri + "/whoami", headers=basic("alice", "wrong password!!"), timeout=10).status_code == 401
    r = requests.get(uri + "/whoami", headers=basic("alice", PW), timeout=10)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"


def test_a_session_ends_with_a_password_change_forgery_or_age(echo, monkeypatch):
    uri, store = echo
    cookie = sessions.issue(store, store.get_user("alice"))
    session = sessions.read(store, cookie)
    assert session is not None and len(session.csrf) >= 24
    payload, _, signature = cookie.partition(".")
    forged = base64.urlsafe_b64encode(b'{"u":1,"t":1,"c":"x","f":"y"}').decode().rstrip("=") + "." + signature
    for bad in (forged, payload + "." + signature[::-1], "garbage", ""):
        assert sessions.read(store, bad) is None
        r = requests.get(uri + "/whoami", cookies={sessions.COOKIE: bad}, timeout=10)
        assert r.status_code == 200 and r.json()["user"] is None  # a stale cookie is no identity, not an error
    store.update_password("alice", "another long password")
    assert sessions.read(store, cookie) is None
    fresh = sessions.issue(store, store.get_user("alice"))
    assert sessions.read(store, fresh) is not None
    monkeypatch.setattr(sessions, "LIFETIME_S", 0)
    assert sessions.read(store, fresh) is None
    monkeypatch.undo()
    store.delete_user("alice")
    assert sessions.read(store, fresh) is None


def test_proxy_header_is_trusted_only_from_trusted_addresses(request, tmp_path):
    uri, store = echo_server(request, tmp_path / "a", proxy_header="X-Forwarded-Email",
                             trusted_proxies=["127.0.0.0/8"])
    r = requests.get(uri + "/whoami", headers={"X-Forwarded-Email": "eve@example.com",
                                               "X-Forwarded-For": "203.0.113.9"}, timeout=10)
    assert r.json() == {"user": "eve@example.com", "via": "proxy", "actor": ["eve@example.com", "203.0.113.9"]}
    user = store.get_user("eve@example.com")
    assert not user.has_password and not user.is_admin
    created = [e for e in store.list_audit() if e.action == "user_create"]
    assert [(e.actor, e.target) for e in created] == [("proxy", "eve@example.com")]
    requests.get(uri + "/whoami", headers={"X-Forwarded-Email": "eve@example.com"}, timeout=10)
    assert len(store.list_users()) == 1  # created once

    r = requests.get(uri + "/whoami", headers={"X-Forwarded-Email": "e" * 300}, timeout=10)
    assert r.status_code == 401 and "names no valid user" in r.json()["message"]

    uri, store = echo_server(request, tmp_path / "b", proxy_header="X-Forwarded-Email",
                             trusted_proxies=["10.0.0.0/8"])
    r = requests.get(uri + "/whoami", headers={"X-Forwarded-Email": "eve@example.com"}, timeout=10)
    assert r.json()["user"] is None and store.list_users() == []


def test_start_up_refuses_without_an_admin(tmp_path, monkeypatch):
    monkeypatch.delenv("MLTRAIL_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    with pytest.raises(NoAdmin) as info:
        create_app(server_settings(tmp_path, auth=True))
    assert "mltrail users create" in info.value.message and "MLTRAIL_ADMIN_PASSWORD" in info.value.message


def test_start_up_takes_mlflows_admin_password_variable_too(tmp_path, monkeypatch):
    monkeypatch.delenv("MLTRAIL_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("MLTRAIL_ADMIN_USERNAME", raising=False)
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", PW)
    store: AuthStore = create_app(server_settings(tmp_path, auth=True)).state.ctx.auth
    assert store.get_user("admin").is_admin and store.verify_password("admin", PW) is not None


def test_start_up_makes_the_admin_the_environment_names(request, tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRAIL_ADMIN_PASSWORD", PW)
    monkeypatch.setenv("MLTRAIL_ADMIN_USERNAME", "root")
    app = create_app(server_settings(tmp_path, auth=True))
    store: AuthStore = app.state.ctx.auth
    assert store.get_user("root").is_admin and [u.username for u in store.list_users()] == ["root"]
    monkeypatch.setenv("MLTRAIL_ADMIN_PASSWORD", "a different password")  # a second start changes nothing
    create_app(server_settings(tmp_path, auth=True))
    assert store.verify_password("root", PW) is not None

    srv = ServerThread(app).start()
    request.addfinalizer(srv.stop)
    r = requests.get(srv.uri + "/api/2.0/mlflow/experiments/search?max_results=5", headers=basic("root", "nope"),
                     timeout=10)
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"
    r = requests.get(srv.uri + "/api/2.0/mlflow/experiments/search?max_results=5", headers=basic("root", PW),
                     timeout=10)
    assert r.status_code == 200, r.text
    assert requests.get(srv.uri + "/health", timeout=10).status_code == 200


def test_auth_off_has_no_store_and_no_middleware(tmp_path):
    app = create_app(server_settings(tmp_path))
    assert app.state.ctx.auth is None
    assert not any(m.cls is AuthMiddleware for m in app.user_middleware)


@pytest.fixture
def auth_server(request, tmp_path, monkeypatch):
    """`create_app` with auth on over SQLite (admin `root` from the environment), on uvicorn; its URI."""
    monkeypatch.setenv("MLTRAIL_ADMIN_USERNAME", "root")
    monkeypatch.setenv("MLTRAIL_ADMIN_PASSWORD", PW)
    app = create_app(server_settings(tmp_path, auth=True))
    srv = ServerThread(app, proxy_headers=False).start()

    def stop():
        close_stores(srv.uri)
        srv.stop()

    request.addfinalizer(stop)
    return srv.uri, app.state.ctx.auth


@pytest.mark.parametrize("how", ["basic", "token"])
def test_mltrail_client_logs_through_the_journal_with_credentials(auth_server, monkeypatch, how):
    import mltrail

    uri, store = auth_server
    for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
                "MLTRAIL_TRACKING_USERNAME", "MLTRAIL_TRACKING_PASSWORD", "MLTRAIL_TRACKING_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    if how == "basic":
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "root")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PW)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", store.create_token("root", "ci")[1])
    mltrail.set_tracking_uri(uri)
    mltrail.set_experiment(f"auth-{how}")
    with mltrail.start_run() as run:
        for step in range(20):  # journaled and sent in batches by the sender thread
            mltrail.log_metric("loss", 1.0 / (step + 1), step=step)
        mltrail.log_param("how", how)
    data = mltrail.get_run(run.info.run_id).data
    assert data.params == {"how": how} and data.metrics["loss"] == pytest.approx(1 / 20)


def test_mltrail_client_with_a_wrong_password_gets_mlflow_words(auth_server, monkeypatch):
    import mltrail
    from mltrail.errors import MltrailException

    uri, _ = auth_server
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "root")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not the password")
    mltrail.set_tracking_uri(uri)
    with pytest.raises(MltrailException) as info:
        mltrail.search_experiments()
    assert info.value.error_code == "UNAUTHENTICATED" and "You are not authenticated" in info.value.message
