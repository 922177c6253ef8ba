"""The options MLflow users deploy `mlflow server` with, on `mltrail server`: parsing (environment
variables included), CORS, X-Frame-Options, /metrics, --static-prefix (REST through the real mlflow
client, a UI page and a chart in Chromium), --artifacts-only, and /api/3.0/mlflow/server-info.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap

import click
import pytest
import requests
from server_fixture import ServerProcess, ServerThread, free_port, server_settings, wait_http
from starlette.testclient import TestClient

from mltrail.errors import InvalidParameterValue
from mltrail.server.app import create_app
from mltrail.server.cli import _refuse_unsupported, _settings, server, ui, uvicorn_options
from mltrail.server.settings import ServerSettings

A = "/api/2.0/mlflow"
# the keys MLflow 3.17.2's build_server_info_payload answers with (mlflow/utils/server_info.py)
MLFLOW_SERVER_INFO_KEYS = {"store_type", "workspaces_enabled", "trace_archival_enabled",
                           "multipart_uploads_enabled", "multipart_downloads_enabled",
                           "presigned_upload_run_id_supported", "presigned_upload_model_id_supported",
                           "features_enabled"}


def parse(command: click.Command, args: list[str], env: dict[str, str] | None = None) -> dict:
    """The parameters click gives the command for `args` under `env` (nothing is started)."""
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        return dict(command.make_context(command.name or "server", args).params)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def settings_of(args: list[str], env: dict[str, str] | None = None) -> ServerSettings:
    kw = parse(server, args, env)
    kw.pop("access_log")
    _refuse_unsupported(kw)
    return _settings(**kw)


# ------------------------------------------------------------------ parsing
@pytest.mark.parametrize(("env", "field", "expected"), [
    ({"MLFLOW_BACKEND_STORE_URI": "sqlite:////tmp/x.db"}, "backend_store_uri", "sqlite:////tmp/x.db"),
    ({"MLFLOW_REGISTRY_STORE_URI": "sqlite:////tmp/x.db"}, "registry_store_uri", "sqlite:////tmp/x.db"),
    ({"MLFLOW_DEFAULT_ARTIFACT_ROOT": "s3://b/p"}, "default_artifact_root", "s3://b/p"),
    ({"MLFLOW_ARTIFACTS_DESTINATION": "s3://b/a"}, "artifacts_destination", "s3://b/a"),
    ({"MLFLOW_SERVE_ARTIFACTS": "false"}, "serve_artifacts", False),
    ({"MLFLOW_ARTIFACTS_ONLY": "true"}, "artifacts_only", True),
    ({"MLFLOW_ARTIFACTS_ONLY": "false"}, "artifacts_only", False),
    ({"MLFLOW_HOST": "0.0.0.0"}, "host", "0.0.0.0"),
    ({"MLFLOW_PORT": "6123"}, "port", 6123),
    ({"MLFLOW_WORKERS": "3"}, "workers", 3),
    ({"MLFLOW_STATIC_PREFIX": "/mlflow"}, "static_prefix", "/mlflow"),
    ({"MLFLOW_SERVER_ALLOWED_HOSTS": "a.example.com,b"}, "allowed_hosts", ["a.example.com", "b"]),
    ({"MLFLOW_SERVER_CORS_ALLOWED_ORIGINS": "https://a.io, https://*.b.io"}, "cors_allowed_origins",
     ["https://a.io", "https://*.b.io"]),
    ({"MLFLOW_SERVER_X_FRAME_OPTIONS": "DENY"}, "x_frame_options", "DENY"),
    ({"MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE": "true"}, "disable_security_middleware", True),
    ({"MLFLOW_EXPOSE_PROMETHEUS": "/tmp/prom"}, "expose_prometheus", "/tmp/prom"),
])
def test_mlflow_environment_variables(env, field, expected):
    assert getattr(settings_of([], env), field) == expected


def test_options_on_the_command_line_and_their_defaults():
    s = settings_of([])
    assert (s.x_frame_options, s.cors_allowed_origins, s.static_prefix, s.auth, s.auth_default_permission) == (
        "SAMEORIGIN", None, None, False, "NO_PERMISSIONS")
    s = settings_of(["--app-name", "basic-auth", "--auth-default-permission", "read", "--auth-proxy-header",
                     "X-Forwarded-Email", "--trusted-proxies", "10.0.0.0/8, 127.0.0.1", "--x-frame-options", "none",
                     "--expose-prometheus", "prom", "--static-prefix", "/p", "--registry-store-uri", "x"])
    assert s.auth and s.auth_default_permission == "READ" and s.auth_proxy_header == "X-Forwarded-Email"
    assert s.trusted_proxies == ["10.0.0.0/8", "127.0.0.1"]
    assert settings_of(["--auth"]).auth and not settings_of(["--no-auth"]).auth
    out = parse(server, ["--dev", "--uvicorn-opts", "--timeout-keep-alive 5"])
    with pytest.raises(click.UsageError, match="'--dev' and '--uvicorn-opts' cannot be specified together"):
        _refuse_unsupported(out)


def test_ui_takes_the_same_options():
    assert {p.name for p in ui.params} == {p.name for p in server.params}
    assert parse(ui, [], {"MLFLOW_STATIC_PREFIX": "/x"})["static_prefix"] == "/x"


def test_refusals_name_what_we_support():
    with pytest.raises(click.BadParameter, match="'basic-auth'"):
        settings_of(["--app-name", "my-plugin"])
    for opt in ("--gunicorn-opts", "--waitress-opts"):
        with pytest.raises(click.UsageError, match="runs on uvicorn. Use --workers N .* --uvicorn-opts"):
            settings_of([opt, "--timeout 60"])
    with pytest.raises(click.UsageError, match="read-replica"):
        settings_of(["--read-replica-backend-store-uri", "postgresql://r/db"])
    with pytest.raises(click.BadParameter):  # click's choice: the five permission names
        settings_of(["--auth-default-permission", "WRITE"])


def test_uvicorn_opts_are_parsed_by_uvicorns_own_command_line():
    assert uvicorn_options('--timeout-keep-alive 60 --proxy-headers --forwarded-allow-ips "*" --header x-a:1') == {
        "timeout_keep_alive": 60, "proxy_headers": True, "forwarded_allow_ips": "*", "headers": [("x-a", "1")]}
    assert uvicorn_options(None) == {} and uvicorn_options("  ") == {}
    with pytest.raises(click.BadParameter, match="No such option '--keepalive'"):
        uvicorn_options("--keepalive 60")
    with pytest.raises(click.BadParameter, match="'abc' is not a valid integer"):
        uvicorn_options("--timeout-keep-alive abc")
    with pytest.raises(click.BadParameter, match="--port is not accepted here: give --port to mltrail server"):
        uvicorn_options("--port 8000")


@pytest.mark.parametrize(("kw", "message"), [
    ({"static_prefix": "mlflow"}, "--static-prefix must begin with a '/'"),
    ({"static_prefix": "/mlflow/"}, "--static-prefix should not end with a '/'"),
    ({"static_prefix": "/{x}"}, "must not contain"),
    ({"x_frame_options": "ALLOW-FROM x"}, "Invalid --x-frame-options 'ALLOW-FROM x': expected one of SAMEORIGIN"),
    ({"auth": True, "trusted_proxies": ["10.0.0.300"], "auth_proxy_header": "X-User"},
     "Invalid --trusted-proxies entry '10.0.0.300'"),
    ({"auth_default_permission": "WRITE"}, "Invalid permission 'WRITE'. Valid permissions are"),
    ({"auth_proxy_header": "X-User", "trusted_proxies": ["10.0.0.1"]}, "needs --auth"),
    ({"auth": True, "auth_proxy_header": "X-User"}, "needs --trusted-proxies"),
    ({"artifacts_only": True, "backend_store_uri": "sqlite:///x.db"}, "in `--artifacts-only` mode and have provided"),
    ({"artifacts_only": True, "auth": True}, "--auth cannot be combined with --artifacts-only"),
    ({"artifacts_only": True, "serve_artifacts": False}, "cannot be combined with --no-serve-artifacts"),
])
def test_invalid_settings_say_what_was_expected(kw, message):
    with pytest.raises(InvalidParameterValue, match=re.escape(message)):
        ServerSettings(**kw).resolved()


def test_registry_store_uri_must_be_the_tracking_database(tmp_path):
    db = f"sqlite:///{tmp_path}/m.db"
    assert ServerSettings(backend_store_uri=db, registry_store_uri=db).resolved().registry_store_uri == db
    same_dir = ServerSettings(backend_store_uri=str(tmp_path), registry_store_uri=f"sqlite:///{tmp_path}/mltrail.db")
    assert same_dir.resolved().registry_store_uri == f"sqlite:///{tmp_path}/mltrail.db"
    with pytest.raises(InvalidParameterValue, match="keeps registered models in the tracking database"):
        ServerSettings(backend_store_uri=db, registry_store_uri=f"sqlite:///{tmp_path}/r.db").resolved()


def test_resolved_settings_travel_to_workers_unchanged(tmp_path):
    s = ServerSettings(backend_store_uri=str(tmp_path), static_prefix="/p", cors_allowed_origins=["https://a"],
                       x_frame_options="deny", expose_prometheus=str(tmp_path / "prom")).resolved()
    assert ServerSettings.from_env({"MLTRAIL_SERVER_SETTINGS": s.to_env()}) == s == s.resolved()


# ------------------------------------------------------------------ CORS and headers (the app in-process)
def _client(tmp_path, **overrides) -> TestClient:
    return TestClient(create_app(server_settings(tmp_path, **overrides)), base_url="http://127.0.0.1:5000")


def test_cors_defaults_allow_localhost_origins_and_block_other_writes(tmp_path):
    http = _client(tmp_path)
    pre = http.options(f"{A}/experiments/create", headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert pre.headers["access-control-allow-credentials"] == "true"
    pre = http.options(f"{A}/experiments/create", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in pre.headers
    # a simple cross-site POST needs no preflight: the server itself must refuse it
    blocked = http.post(f"{A}/experiments/create", json={"name": "x"}, headers={"Origin": "https://evil.example"})
    assert (blocked.status_code, blocked.text) == (403, "Cross-origin request blocked")
    assert http.post(f"{A}/experiments/search", json={}).status_code == 200  # no Origin: not a browser
    ok = http.post(f"{A}/experiments/create", json={"name": "a"}, headers={"Origin": "http://127.0.0.1:8888"})
    assert ok.status_code == 200
    same = http.post(f"{A}/experiments/create", json={"name": "b"}, headers={"Origin": "http://127.0.0.1:5000"})
    assert same.status_code == 200  # the server's own origin (its UI)
    # reads are not blocked (the browser withholds the answer from a page without CORS headers)
    got = http.get(f"{A}/experiments/search", params={"max_results": 1}, headers={"Origin": "https://evil.example"})
    assert got.status_code == 200 and "access-control-allow-origin" not in got.headers


def test_cors_allowed_origins_exact_and_patterns(tmp_path):
    http = _client(tmp_path, cors_allowed_origins=["https://app.example.com", "https://*.corp.io"])
    for origin in ("https://app.example.com", "https://nb.corp.io"):
        pre = http.options(f"{A}/runs/create", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
        assert pre.headers.get("access-control-allow-origin") == origin
        assert http.post(f"{A}/experiments/create", json={"name": origin}, headers={"Origin": origin}).status_code == 200
    assert http.post(f"{A}/experiments/create", json={"name": "z"},
                     headers={"Origin": "https://corp.io.evil.example"}).status_code == 403


def test_cors_wildcard_allows_any_origin_without_credentials(tmp_path):
    http = _client(tmp_path, cors_allowed_origins=["*"])
    pre = http.options(f"{A}/runs/create", headers={"Origin": "https://x.io", "Access-Control-Request-Method": "POST"})
    assert pre.headers["access-control-allow-origin"] == "*" and "access-control-allow-credentials" not in pre.headers
    assert http.post(f"{A}/experiments/create", json={"name": "w"}, headers={"Origin": "https://x.io"}).status_code == 200


@pytest.mark.parametrize(("value", "expected"), [(None, "SAMEORIGIN"), ("DENY", "DENY"), ("NONE", None)])
def test_x_frame_options(tmp_path, value, expected):
    http = _client(tmp_path, **({"x_frame_options": value} if value else {}))
    for path in ("/health", f"{A}/experiments/search?max_results=1", "/no/such/page"):
        r = http.get(path)
        assert r.headers.get("x-frame-options") == expected
        assert r.headers["x-content-type-options"] == "nosniff"


def test_disable_security_middleware_turns_every_check_off(tmp_path):
    http = _client(tmp_path, disable_security_middleware=True)
    r = http.post(f"{A}/experiments/create", json={"name": "d"}, headers={"Origin": "https://evil.example",
                                                                           "Host": "rebound.example"})
    assert r.status_code == 200 and "x-frame-options" not in r.headers


# ------------------------------------------------------------------ server-info
def test_server_info_answers_as_a_plain_mlflow_sql_server(tmp_path):
    http = _client(tmp_path)
    for path in ("/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info"):
        info = http.get(path).json()
        assert set(info) == MLFLOW_SERVER_INFO_KEYS
        assert info["store_type"] == "SqlStore" and info["workspaces_enabled"] is False
        assert info["features_enabled"] == {"gateway": False}
        # the proxy takes MLflow's multipart uploads; ranged presigned downloads need --artifacts-presigned-urls
        assert info["multipart_uploads_enabled"] is True and info["multipart_downloads_enabled"] is False


# ------------------------------------------------------------------ /metrics
def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """`name`'s samples in Prometheus's text format: sorted labels -> value."""
    out = {}
    for line in text.splitlines():
        m = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if m:
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(1) or "")))
            out[labels] = float(m.group(2))
    return out


def test_metrics_count_requests_per_route_template(tmp_path):
    http = _client(tmp_path, expose_prometheus=str(tmp_path / "prom"), ui=True)
    exp = http.post(f"{A}/experiments/create", json={"name": "m"}).json()["experiment_id"]
    runs = [http.post(f"{A}/runs/create", json={"experiment_id": exp}).json()["run"]["info"]["run_id"]
            for _ in range(3)]
    for rid in runs:
        assert http.get(f"{A}/runs/get", params={"run_id": rid}).status_code == 200
        assert http.get(f"/runs/{rid}").status_code == 200  # a UI page: its template, not the id
    assert http.get(f"{A}/runs/get", params={"run_id": "0" * 32}).status_code == 404
    body = {"run_id": runs[0], "metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 0}]}
    assert http.post(f"{A}/runs/log-batch", json={**body, "batch_id": "b-1"}).status_code == 200  # a journal's
    assert http.post(f"{A}/runs/log-batch", json=body).status_code == 200  # MLflow's client: no batch id
    # a value that merely mentions batch_id is not a journal batch
    tag = {"run_id": runs[0], "tags": [{"key": "note", "value": '"batch_id": "x"'}]}
    assert http.post(f"{A}/runs/log-batch", json=tag).status_code == 200
    http.get("/health")
    r = http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    total = _samples(r.text, "mlflow_http_request_total")
    get = (("method", "GET"), ("path", f"{A}/runs/get"), ("status", "200"))
    assert total[get] == 3
    assert total[(("method", "GET"), ("path", f"{A}/runs/get"), ("status", "404"))] == 1
    assert total[(("method", "GET"), ("path", "/runs/{run_id}"), ("status", "200"))] == 3
    assert total[(("method", "POST"), ("path", f"{A}/runs/log-batch"), ("status", "200"))] == 3
    assert not any(dict(k)["path"] in ("/health", "/version") or runs[0] in dict(k)["path"] for k in total)
    assert _samples(r.text, "mlflow_http_request_duration_seconds_count")[get] == 3
    assert _samples(r.text, "mltrail_journal_batches_applied_total") == {(): 1.0}
    assert _samples(r.text, "mltrail_db_pool_size")[()] >= 1
    assert _samples(r.text, "mltrail_db_pool_checked_out")[()] == 0


def test_no_metrics_route_unless_asked(tmp_path):
    assert _client(tmp_path).get("/metrics").status_code == 404


@pytest.mark.slow
def test_metrics_add_up_across_worker_processes(tmp_path):
    prom = tmp_path / "prom"
    srv = ServerProcess(tmp_path, extra_args=["--workers", "2", "--expose-prometheus", str(prom)]).start()
    try:
        for _ in range(30):  # a new connection each: they spread over the workers
            assert requests.get(f"{srv.uri}{A}/experiments/get", params={"experiment_id": "0"},
                                timeout=30).status_code == 200
        text = requests.get(f"{srv.uri}/metrics", timeout=30).text
        key = (("method", "GET"), ("path", f"{A}/experiments/get"), ("status", "200"))
        assert _samples(text, "mlflow_http_request_total")[key] == 30
        assert len({p.name for p in prom.glob("counter_*.db")}) >= 2  # the parent's and the workers' files
    finally:
        srv.stop()


@pytest.mark.slow
def test_the_command_passes_uvicorn_opts_and_reads_mlflow_variables(tmp_path):
    port = free_port()
    env = {**os.environ, "MLFLOW_PORT": str(port), "MLFLOW_STATIC_PREFIX": "/team",
           "MLFLOW_BACKEND_STORE_URI": str(tmp_path / "store")}
    proc = subprocess.Popen([sys.executable, "-m", "mltrail.cli", "server", "--uvicorn-opts",
                             "--timeout-keep-alive 5 --header x-served-by:mltrail-test"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/team/health", 90, proc)
        r = requests.get(f"http://127.0.0.1:{port}/team{A}/experiments/get", params={"experiment_id": "0"},
                         timeout=30)
        assert r.status_code == 200 and r.headers["x-served-by"] == "mltrail-test"
        assert (tmp_path / "store" / "mltrail.db").is_file()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


# ------------------------------------------------------------------ --artifacts-only
def test_artifacts_only_serves_the_proxy_and_refuses_tracking_as_mlflow(tmp_path):
    dest = tmp_path / "dest"
    app = create_app(ServerSettings(artifacts_only=True, artifacts_destination=str(dest), ui=False))
    http = TestClient(app, base_url="http://127.0.0.1:5000")
    assert http.put("/api/2.0/mlflow-artifacts/artifacts/1/a/x.txt", content=b"hi").status_code == 200
    assert (dest / "1" / "a" / "x.txt").read_bytes() == b"hi"
    assert http.get("/api/2.0/mlflow-artifacts/artifacts/1/a/x.txt").content == b"hi"
    files = http.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": "1/a"}).json()["files"]
    assert [f["path"] for f in files] == ["x.txt"]
    r = http.post(f"{A}/runs/create", json={"experiment_id": "0"})
    assert r.status_code == 503
    assert r.text == (f"Endpoint: {A}/runs/create disabled due to the mlflow server running in `--artifacts-only` "
                      "mode. To enable tracking server functionality, run `mltrail server` without `--artifacts-only`")
    assert http.get("/ajax-api/2.0/mlflow/experiments/search").status_code == 503
    assert http.get("/get-artifact", params={"path": "x", "run_uuid": "r"}).status_code == 503
    assert http.get("/health").text == "OK"
    assert http.get("/api/3.0/mlflow/server-info").json()["store_type"] is None
    assert http.get(f"{A}/no/such/endpoint").status_code == 404
    assert not (tmp_path / "mltrail").exists()  # no database was opened


# ------------------------------------------------------------------ --static-prefix
@pytest.fixture(scope="module")
def prefixed(tmp_path_factory):
    from test_ui_support import build_demo, ui_settings

    directory = tmp_path_factory.mktemp("prefixed") / "store"
    ids = build_demo(directory)
    settings = ui_settings(directory)
    settings.static_prefix = "/mlflow"
    srv = ServerThread(create_app(settings)).start()
    yield ids, srv.uri
    srv.stop()


def test_everything_lives_under_the_prefix(prefixed):
    ids, uri = prefixed
    assert requests.get(f"{uri}/mlflow/health", timeout=30).text == "OK"
    assert requests.get(f"{uri}/health", timeout=30).status_code == 404
    assert requests.get(f"{uri}/mlflow{A}/experiments/get", params={"experiment_id": ids["exp"]},
                        timeout=30).status_code == 200
    page = requests.get(f"{uri}/mlflow/experiments/{ids['exp']}", timeout=30)
    assert page.status_code == 200
    hrefs = re.findall(r'(?:href|src)="(/[^"]*)"', page.text)
    assert hrefs and all(h.startswith("/mlflow/") for h in hrefs), [h for h in hrefs if not h.startswith("/mlflow/")]
    assert requests.get(f"{uri}/mlflow", timeout=30, allow_redirects=True).status_code == 200


def test_the_mlflow_client_logs_under_the_prefix(prefixed, mlflow_python, tmp_path):
    _, uri = prefixed
    script = tmp_path / "log.py"
    script.write_text(textwrap.dedent("""
        import sys
        import mlflow
        mlflow.set_tracking_uri(sys.argv[1])
        mlflow.set_experiment("under a prefix")
        with mlflow.start_run() as run:
            mlflow.log_param("p", "1")
            mlflow.log_metric("m", 2.0, step=3)
            mlflow.log_text("hello", "notes/a.txt")
        client = mlflow.MlflowClient()
        got = client.get_run(run.info.run_id)
        assert got.data.params == {"p": "1"} and got.data.metrics == {"m": 2.0}, got.data
        assert [f.path for f in client.list_artifacts(run.info.run_id, "notes")] == ["notes/a.txt"]
        assert mlflow.artifacts.load_text(run.info.artifact_uri + "/notes/a.txt") == "hello"
        print("prefix: ok")
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLTRAIL_", "MLFLOW_"))}
    proc = subprocess.run([str(mlflow_python), str(script), f"{uri}/mlflow"], capture_output=True, text=True,
                          timeout=600, env=env, cwd=tmp_path)
    assert "prefix: ok" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-4000:]


@pytest.mark.browser
def test_a_page_and_a_chart_work_under_the_prefix(prefixed, browser):
    from browser_support import TIMEOUT_MS

    ids, uri = prefixed
    page = browser.new_page()
    try:
        page.set_default_timeout(TIMEOUT_MS)
        bad: list[str] = []
        page.on("response", lambda r: bad.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.on("requestfailed", lambda r: bad.append(f"failed {r.url}"))
        page.on("pageerror", lambda e: bad.append(str(e)))
        page.goto(f"{uri}/mlflow/")
        page.get_by_role("link", name="many runs").click()
        page.wait_for_url(f"**/mlflow/experiments/{ids['many']}")
        assert page.locator("#runs-body tr.run").count() > 0
        page.goto(f"{uri}/mlflow/runs/{ids['curves']}")
        page.wait_for_function("() => document.querySelector('.plot canvas, .plot svg.main-svg') !== null")
        page.wait_for_load_state("networkidle")
        assert bad == []
    finally:
        page.close()
