"""Nothing escapes the artifact roots, whatever path a client sends; bodies are bounded; JSON
endpoints want JSON; the Host header is checked. Requests go out raw (http.client), so no client
library normalises `..` away before the server sees it."""

from __future__ import annotations

import http.client
import json
import os
import urllib.parse

import pytest
import requests
from server_fixture import start_server

A = "/api/2.0/mlflow"
P = "/api/2.0/mlflow-artifacts/artifacts"
SECRET = b"top secret, outside the artifact root"


@pytest.fixture
def world(request, tmp_path):
    """A server, plus sentinel files outside its artifact root that no request may touch or read."""
    uri = start_server(request, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    (tmp_path / "server" / "secret.txt").write_bytes(SECRET)  # the root's parent
    (tmp_path / "secret.txt").write_bytes(SECRET)
    root = tmp_path / "server" / "artifacts"
    (root / "0").mkdir(parents=True)
    (root / "0" / "inside.txt").write_bytes(b"inside")
    return {"uri": uri, "tmp": tmp_path, "root": root, "outside": outside}


def snapshot(tmp_path, root):
    """Every file outside the artifact root (and its database) with its content."""
    out = {}
    for d, _, files in os.walk(tmp_path):
        for f in files:
            p = os.path.join(d, f)
            if p.startswith(str(root) + os.sep) or "mltrail.db" in f or "journal" in p:
                continue
            with open(p, "rb") as fh:
                out[p] = fh.read()
    return out


def raw(uri, method, target, body=None, headers=None):
    """One request with the target sent byte for byte."""
    u = urllib.parse.urlparse(uri)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Length", str(len(body)))
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", f"127.0.0.1:{u.port}")
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


N_EVIL = 28


def evil_paths(tmp_path):
    outside_abs = str(tmp_path / "outside" / "secret.txt")
    paths = [
        "../secret.txt", "../../secret.txt", "0/../../secret.txt", "0/../../../secret.txt",
        "%2e%2e/secret.txt", "%2E%2E/%2e%2e/secret.txt", "0/%2e%2e/%2e%2e/secret.txt",
        "%252e%252e/secret.txt", "%25252e%25252e/secret.txt", "..%2fsecret.txt", "..%2F..%2Fsecret.txt",
        "..%5csecret.txt", "..\\secret.txt", "0\\..\\..\\secret.txt", "%5c..%5c..%5csecret.txt",
        outside_abs.lstrip("/").replace("/", "%2f").join(["%2f", ""]),  # /abs/outside/secret.txt encoded
        "/" + outside_abs.lstrip("/"), "C:/secret.txt", "c:%5csecret.txt", "C%3a%5csecret.txt",
        "%23/../../secret.txt", "x%23/%2e%2e/%2e%2e/secret.txt", "%3f/../../secret.txt",
        "x#/../../secret.txt", "x?/../../secret.txt", "~/secret.txt", "%00/../secret.txt", "0/%00",
    ]
    assert len(paths) == N_EVIL
    return paths


def _assert_no_leak(status, body):
    assert SECRET not in body, body
    assert status != 200 or b"secret" not in body


@pytest.mark.parametrize("case", range(N_EVIL))
def test_artifact_proxy_paths_never_escape(world, case):
    tmp, root, uri = world["tmp"], world["root"], world["uri"]
    path = evil_paths(tmp)[case]
    before = snapshot(tmp, root)
    target = f"{P}/{path}" if not path.startswith("/") else f"{P}{path}"
    # upload: must not write outside the root
    status, body = raw(uri, "PUT", target, b"pwned")
    assert status != 500, body
    # download and list: must not read outside the root
    _assert_no_leak(*raw(uri, "GET", target))
    _assert_no_leak(*raw(uri, "GET", f"{P}?path={path}"))
    _assert_no_leak(*raw(uri, "GET", f"{P}?path={urllib.parse.quote(path, safe='')}"))
    # delete: must not remove anything outside the root
    raw(uri, "DELETE", target)
    assert snapshot(tmp, root) == before
    for d, _, files in os.walk(root):  # whatever was written stays under the root
        for f in files:
            assert os.path.realpath(os.path.join(d, f)).startswith(str(root) + os.sep)


@pytest.mark.parametrize("case", range(N_EVIL))
def test_run_and_model_artifact_reads_never_escape(world, case):
    tmp, uri = world["tmp"], world["uri"]
    path = evil_paths(tmp)[case]
    run = requests.post(f"{uri}{A}/runs/create", json={"experiment_id": "0"}, timeout=10).json()["run"]["info"]
    model = requests.post(f"{uri}{A}/logged-models", json={"experiment_id": "0"}, timeout=10).json()["model"]["info"]
    q = urllib.parse.quote(path, safe="")
    for target in (f"/get-artifact?run_id={run['run_id']}&path={q}",
                   f"{A}/artifacts/list?run_id={run['run_id']}&path={q}",
                   f"/ajax-api/2.0/mlflow/logged-models/{model['model_id']}/artifacts/files?artifact_file_path={q}",
                   f"{A}/logged-models/{model['model_id']}/artifacts/directories?artifact_directory_path={q}"):
        status, body = raw(uri, "GET", target)
        _assert_no_leak(status, body)
        assert status in (400, 404), (target, status, body)


@pytest.mark.parametrize("location", [
    "{outside}", "{outside}/sub", "file://{outside}", "{root}/../../outside", "mlflow-artifacts:/../x",
    "mlflow-artifacts:/%2e%2e/x", "mlflow-artifacts:/0/%252e%252e/%252e%252e/x", "mlflow-artifacts:/a\\..\\..\\x",
    "../relative", "relative/dir", "s3://bucket/../x", "http://evil.example/x", "file:///etc",
    "mlflow-artifacts:/x#/../../y", "mlflow-artifacts:/x?/../../y",
])
def test_experiment_artifact_locations_cannot_leave_the_roots(world, location):
    uri = world["uri"]
    location = location.format(outside=world["outside"], root=world["root"])
    r = requests.post(f"{uri}{A}/experiments/create", json={"name": "e", "artifact_location": location}, timeout=10)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", (location, r.text)
    assert requests.get(f"{uri}{A}/experiments/get-by-name", params={"experiment_name": "e"}, timeout=10
                        ).status_code == 404


def test_experiment_locations_inside_the_roots_are_accepted(world):
    uri = world["uri"]
    for i, location in enumerate([f"{world['root']}/custom", "mlflow-artifacts:/team/a", "s3://bucket/path"]):
        r = requests.post(f"{uri}{A}/experiments/create", json={"name": f"e{i}", "artifact_location": location},
                          timeout=10)
        assert r.status_code == 200, r.text


def test_symlink_inside_the_root_cannot_lead_out(world):
    root, uri = world["root"], world["uri"]
    os.symlink(world["outside"], root / "0" / "link")
    _assert_no_leak(*raw(uri, "GET", f"{P}/0/link/secret.txt"))
    status, _ = raw(uri, "PUT", f"{P}/0/link/new.txt", b"x")
    assert status == 400 and not (world["outside"] / "new.txt").exists()


def test_deleting_the_root_is_refused(world):
    status, _ = raw(world["uri"], "DELETE", f"{P}/")
    assert status == 400 and (world["root"] / "0" / "inside.txt").exists()


# ------------------------------------------------------------------ body limits and content types
@pytest.fixture
def small(request, tmp_path):
    return start_server(request, tmp_path, max_json_bytes=2000, max_artifact_bytes=5000), tmp_path


def test_oversized_artifact_upload_is_refused_and_leaves_nothing(small):
    uri, tmp = small
    r = requests.put(f"{uri}{P}/0/big.bin", data=b"x" * 6000, timeout=10)
    assert r.status_code == 413 and r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"

    def chunks():  # no Content-Length: the limit must hold while streaming
        for _ in range(10):
            yield b"y" * 1000

    r = requests.put(f"{uri}{P}/0/big2.bin", data=chunks(), timeout=10)
    assert r.status_code == 413
    leftovers = [f for _, _, fs in os.walk(tmp / "server" / "artifacts") for f in fs]
    assert leftovers == []
    assert requests.put(f"{uri}{P}/0/fits.bin", data=b"z" * 5000, timeout=10).status_code == 200


def test_oversized_json_is_refused(small):
    uri, _ = small
    r = requests.post(f"{uri}{A}/experiments/create", json={"name": "x" * 3000}, timeout=10)
    assert r.status_code == 413 and r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_json_endpoints_refuse_other_content_types(server_uri, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    status, body = raw(server_uri, "POST", f"{A}/experiments/create", json.dumps({"name": "x"}).encode(), headers)
    assert status == 415 and json.loads(body)["error_code"] == "BAD_REQUEST"


def test_json_with_charset_is_accepted(server_uri):
    status, _ = raw(server_uri, "POST", f"{A}/experiments/create", b'{"name": "x"}',
                    {"Content-Type": "application/json; charset=utf-8"})
    assert status == 200


# ------------------------------------------------------------------ Host header
def _with_host(uri, host):
    u = urllib.parse.urlparse(uri)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.putrequest("GET", "/health", skip_host=True)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def test_host_header_allowlist_by_default(server_uri):
    port = urllib.parse.urlparse(server_uri).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}", "LOCALHOST"):
        assert _with_host(server_uri, host) == 200, host
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", None):
        assert _with_host(server_uri, host) == 403, host


def test_host_header_custom_allowlist(request, tmp_path):
    uri = start_server(request, tmp_path, allowed_hosts=["*.example.com", "tracker.internal:5000"])
    assert _with_host(uri, "ml.example.com") == 200
    assert _with_host(uri, "tracker.internal:5000") == 200
    assert _with_host(uri, "example.com.evil") == 403
    assert _with_host(uri, "localhost") == 403


def test_host_defaults_follow_the_bind_address():
    from mltrail.server.settings import ServerSettings

    assert ServerSettings(host="0.0.0.0").resolved().allowed_hosts == ["*"]
    local = ServerSettings().resolved().allowed_hosts
    assert "127.0.0.1" in local and "localhost" in local and "[::1]" in local and "*" not in local
    assert "10.1.2.3" in ServerSettings(host="10.1.2.3").resolved().allowed_hosts
    assert ServerSettings(host="0.0.0.0", allowed_hosts=["a.b"]).resolved().allowed_hosts == ["a.b"]
