"""The REST API with MLflow's JSON, through a real server over HTTP."""

from __future__ import annotations

import json
import math
import time

import pytest

A = "/api/2.0/mlflow"


def ok(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text)
    return resp.json()


def new_run(api, exp_id="0", **kw):
    body = {"experiment_id": exp_id, "start_time": int(time.time() * 1000), "user_id": "tester", **kw}
    return ok(api("POST", f"{A}/runs/create", json=body))["run"]


def test_health_and_version(api):
    assert api("GET", "/health").text == "OK"
    from mltrail.version import __version__

    assert api("GET", "/version").text == __version__


def test_experiment_endpoints(api):
    exp_id = ok(api("POST", f"{A}/experiments/create", json={"name": "e1", "tags": [{"key": "k", "value": "v"}]}))[
        "experiment_id"]
    exp = ok(api("GET", f"{A}/experiments/get", params={"experiment_id": exp_id}))["experiment"]
    assert exp["name"] == "e1" and exp["tags"] == [{"key": "k", "value": "v"}]
    assert exp["artifact_location"] == f"mlflow-artifacts:/{exp_id}"  # the proxy, by default
    assert isinstance(exp["creation_time"], int) and exp["lifecycle_stage"] == "active"
    by_name = ok(api("GET", f"{A}/experiments/get-by-name", params={"experiment_name": "e1"}))["experiment"]
    assert by_name["experiment_id"] == exp_id
    missing = api("GET", f"{A}/experiments/get-by-name", params={"experiment_name": "nope"})
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    dup = api("POST", f"{A}/experiments/create", json={"name": "e1"})
    assert dup.status_code == 400 and dup.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"

    ok(api("POST", f"{A}/experiments/update", json={"experiment_id": exp_id, "new_name": "e2"}))
    ok(api("POST", f"{A}/experiments/set-experiment-tag", json={"experiment_id": exp_id, "key": "a", "value": "b"}))
    ok(api("POST", f"{A}/experiments/delete-experiment-tag", json={"experiment_id": exp_id, "key": "k"}))
    exp = ok(api("GET", f"{A}/experiments/get", params={"experiment_id": exp_id}))["experiment"]
    assert exp["name"] == "e2" and exp["tags"] == [{"key": "a", "value": "b"}]

    found = ok(api("POST", f"{A}/experiments/search", json={"filter": "name = 'e2'", "max_results": 10}))
    assert [e["experiment_id"] for e in found["experiments"]] == [exp_id]
    listed = ok(api("GET", f"{A}/experiments/search", params={"max_results": 1}))
    assert len(listed["experiments"]) == 1 and listed["next_page_token"]

    ok(api("POST", f"{A}/experiments/delete", json={"experiment_id": exp_id}))
    deleted = ok(api("POST", f"{A}/experiments/search", json={"view_type": "DELETED_ONLY"}))["experiments"]
    assert [e["experiment_id"] for e in deleted] == [exp_id]
    ok(api("POST", f"{A}/experiments/restore", json={"experiment_id": exp_id}))
    assert ok(api("GET", f"{A}/experiments/get", params={"experiment_id": exp_id}))["experiment"][
        "lifecycle_stage"] == "active"


def test_run_lifecycle_and_logging(api):
    run = new_run(api, run_name="r1", tags=[{"key": "t0", "value": "x"}])
    info = run["info"]
    run_id = info["run_id"]
    assert info["run_uuid"] == run_id and info["status"] == "RUNNING" and info["run_name"] == "r1"
    assert info["artifact_uri"] == f"mlflow-artifacts:/0/{run_id}/artifacts"

    ok(api("POST", f"{A}/runs/log-metric", json={"run_id": run_id, "key": "m", "value": 1.5, "timestamp": 5,
                                                 "step": "3"}))  # int64 as a string, as protobuf writes it
    ok(api("POST", f"{A}/runs/log-metric", json={"run_id": run_id, "key": "m", "value": "NaN", "timestamp": 6,
                                                 "step": 4}))
    ok(api("POST", f"{A}/runs/log-parameter", json={"run_id": run_id, "key": "p", "value": "1"}))
    ok(api("POST", f"{A}/runs/set-tag", json={"run_uuid": run_id, "key": "t", "value": "v"}))
    ok(api("POST", f"{A}/runs/log-batch", json={
        "run_id": run_id, "metrics": [{"key": "b", "value": i, "timestamp": 7, "step": i} for i in range(5)],
        "params": [{"key": "q", "value": "2"}], "tags": [{"key": "u", "value": "w"}]}))
    got = ok(api("GET", f"{A}/runs/get", params={"run_id": run_id}))["run"]
    data = got["data"]
    assert {p["key"]: p["value"] for p in data["params"]} == {"p": "1", "q": "2"}
    tags = {t["key"]: t["value"] for t in data["tags"]}
    assert tags["t"] == "v" and tags["u"] == "w" and tags["mlflow.runName"] == "r1"
    metrics = {m["key"]: m for m in data["metrics"]}
    assert metrics["m"]["value"] == "NaN" and metrics["m"]["step"] == 4 and metrics["b"]["value"] == 4

    conflict = api("POST", f"{A}/runs/log-parameter", json={"run_id": run_id, "key": "p", "value": "other"})
    assert conflict.status_code == 400 and conflict.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    ok(api("POST", f"{A}/runs/delete-tag", json={"run_id": run_id, "key": "t"}))

    hist = ok(api("GET", f"{A}/metrics/get-history", params={"run_id": run_id, "metric_key": "b"}))["metrics"]
    assert [h["step"] for h in hist] == [0, 1, 2, 3, 4]
    paged = ok(api("GET", f"{A}/metrics/get-history", params={"run_id": run_id, "metric_key": "b",
                                                              "max_results": 2}))
    assert len(paged["metrics"]) == 2 and paged["next_page_token"]

    end = int(time.time() * 1000)
    info = ok(api("POST", f"{A}/runs/update", json={"run_id": run_id, "status": "FINISHED", "end_time": end}))[
        "run_info"]
    assert info["status"] == "FINISHED" and info["end_time"] == end
    found = ok(api("POST", f"{A}/runs/search", json={"experiment_ids": ["0"], "filter": "params.q = '2'",
                                                     "order_by": ["metrics.b DESC"], "max_results": 5}))
    assert [r["info"]["run_id"] for r in found["runs"]] == [run_id]
    ok(api("POST", f"{A}/runs/delete", json={"run_id": run_id}))
    assert ok(api("POST", f"{A}/runs/search", json={"experiment_ids": ["0"]})).get("runs", []) == []
    ok(api("POST", f"{A}/runs/restore", json={"run_id": run_id}))


def test_log_batch_with_batch_id_applies_once(api):
    run_id = new_run(api)["info"]["run_id"]
    body = {"run_id": run_id, "batch_id": "b-123", "metrics": [{"key": "x", "value": 1.0, "timestamp": 1, "step": 0}]}
    for _ in range(3):
        ok(api("POST", f"{A}/runs/log-batch", json=body))
    hist = ok(api("GET", f"{A}/metrics/get-history", params={"run_id": run_id, "metric_key": "x"}))["metrics"]
    assert len(hist) == 1


def test_log_batch_limits_and_bad_values(api):
    run_id = new_run(api)["info"]["run_id"]
    too_many = {"run_id": run_id, "metrics": [{"key": "x", "value": 1, "timestamp": 1, "step": i} for i in range(1001)]}
    r = api("POST", f"{A}/runs/log-batch", json=too_many)
    assert r.status_code == 400 and "1000" in r.json()["message"]
    r = api("POST", f"{A}/runs/log-batch", json={"run_id": run_id, "metrics": [{"key": "x", "value": "abc"}]})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = api("POST", f"{A}/runs/log-batch", json={"run_id": "nope",
                                                 "metrics": [{"key": "x", "value": 1, "timestamp": 1}]})
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_inputs_outputs_and_log_model(api):
    run_id = new_run(api)["info"]["run_id"]
    ds = {"name": "d", "digest": "abc", "source_type": "local", "source": "{}", "schema": "{}"}
    ok(api("POST", f"{A}/runs/log-inputs", json={"run_id": run_id, "datasets": [
        {"tags": [{"key": "mlflow.data.context", "value": "train"}], "dataset": ds}]}))
    model = ok(api("POST", f"{A}/logged-models", json={"experiment_id": "0", "name": "m", "source_run_id": run_id}))
    model_id = model["model"]["info"]["model_id"]
    ok(api("POST", f"{A}/runs/outputs", json={"run_id": run_id, "models": [{"model_id": model_id, "step": 3}]}))
    # MLflow's _log_model handler needs these fields ("Model json is missing mandatory fields")
    ok(api("POST", f"{A}/runs/log-model", json={"run_id": run_id, "model_json": json.dumps(
        {"artifact_path": "m", "flavors": {}, "utc_time_created": "2024-01-01 00:00:00.000000", "run_id": run_id})}))
    run = ok(api("GET", f"{A}/runs/get", params={"run_id": run_id}))["run"]
    assert run["inputs"]["dataset_inputs"][0]["dataset"]["digest"] == "abc"
    assert run["inputs"]["dataset_inputs"][0]["tags"] == [{"key": "mlflow.data.context", "value": "train"}]
    assert run["outputs"]["model_outputs"] == [{"model_id": model_id, "step": 3}]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert '"artifact_path": "m"' in tags["mlflow.log-model.history"]


def test_logged_model_endpoints(api):
    run_id = new_run(api)["info"]["run_id"]
    created = ok(api("POST", f"{A}/logged-models", json={
        "experiment_id": "0", "name": "net", "model_type": "keras", "source_run_id": run_id,
        "tags": [{"key": "a", "value": "1"}], "params": [{"key": "units", "value": "8"}]}))["model"]
    info = created["info"]
    mid = info["model_id"]
    assert mid.startswith("m-") and info["status"] == "LOGGED_MODEL_PENDING"
    assert info["artifact_uri"] == f"mlflow-artifacts:/0/models/{mid}/artifacts"
    assert created["data"]["params"] == [{"key": "units", "value": "8"}]

    # MLflow's handlers require model_id in the body too (_log_logged_model_params), as its client sends it
    ok(api("POST", f"{A}/logged-models/{mid}/params", json={"model_id": mid,
                                                             "params": [{"key": "lr", "value": "0.1"}]}))
    ok(api("PATCH", f"{A}/logged-models/{mid}/tags", json={"tags": [{"key": "b", "value": "2"}]}))
    ok(api("DELETE", f"{A}/logged-models/{mid}/tags/a"))
    final = ok(api("PATCH", f"{A}/logged-models/{mid}", json={"model_id": mid, "status": "LOGGED_MODEL_READY"}))
    assert final["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    got = ok(api("GET", f"{A}/logged-models/{mid}"))["model"]
    assert {t["key"] for t in got["info"]["tags"]} == {"b"}
    assert {p["key"] for p in got["data"]["params"]} == {"units", "lr"}

    found = ok(api("POST", f"{A}/logged-models/search", json={
        "experiment_ids": ["0"], "filter": "name = 'net'", "order_by": [{"field_name": "creation_timestamp",
                                                                         "ascending": False}]}))
    assert [m["info"]["model_id"] for m in found["models"]] == [mid]
    failed = api("PATCH", f"{A}/logged-models/{mid}", json={"model_id": mid, "status": "LOGGED_MODEL_UPLOAD_FAILED"})
    assert ok(failed)["model"]["info"]["status"] == "LOGGED_MODEL_UPLOAD_FAILED"
    ok(api("DELETE", f"{A}/logged-models/{mid}"))
    assert api("GET", f"{A}/logged-models/{mid}").status_code == 404


def test_sampled_history_single_and_bulk(api):
    ids = [new_run(api)["info"]["run_id"] for _ in range(2)]
    for run_id in ids:
        for start in range(0, 3000, 1000):
            ok(api("POST", f"{A}/runs/log-batch", json={"run_id": run_id, "metrics": [
                {"key": "loss", "value": math.sin(i / 50) + (5 if i == 1234 else 0), "timestamp": i, "step": i}
                for i in range(start, start + 1000)]}))
    M = "/api/2.0/mltrail/metrics/get-history-sampled"
    one = ok(api("GET", M, params={"run_id": ids[0], "metric_key": "loss", "max_points": 100}))["metrics"]
    steps = [m["step"] for m in one]
    assert len(one) <= 100 and steps[0] == 0 and steps[-1] == 2999 and 1234 in steps  # the spike survives
    window = ok(api("GET", M, params={"run_id": ids[0], "metric_key": "loss", "max_points": 50,
                                      "min_step": 100, "max_step": 200}))["metrics"]
    assert window[0]["step"] == 100 and window[-1]["step"] == 200
    bulk = ok(api("GET", M, params={"run_ids": ids, "metric_key": "loss", "max_points": 20}))["runs"]
    assert [b["run_id"] for b in bulk] == ids and all(len(b["metrics"]) <= 20 for b in bulk)
    ui = ok(api("GET", f"{A}/metrics/get-history-bulk-interval",
                params={"run_ids": ids, "metric_key": "loss", "max_results": 30}))["metrics"]
    assert {m["run_id"] for m in ui} == set(ids)
    bad = api("GET", M, params={"run_id": ids[0], "metric_key": "loss", "max_points": 0})
    assert bad.status_code == 400


def test_ajax_prefix_and_unknown_endpoint(api):
    assert ok(api("GET", "/ajax-api/2.0/mlflow/experiments/get", params={"experiment_id": "0"}))["experiment"][
        "name"] == "Default"
    r = api("POST", f"{A}/no/such/thing", json={})
    assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    r = api("GET", f"{A}/runs/get", params={})
    assert r.status_code == 400 and r.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Missing value for required parameter 'run_id'. See the API docs for more information about "
                   "request parameters."}


def test_malformed_json_is_a_bad_request(api):
    r = api("POST", f"{A}/experiments/create", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error_code"] == "BAD_REQUEST"
    r = api("POST", f"{A}/experiments/create", data=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error_code"] == "BAD_REQUEST"


@pytest.mark.parametrize("prefix", ["/api/2.0", "/ajax-api/2.0"])
def test_artifact_proxy_round_trip(api, prefix):
    P = f"{prefix}/mlflow-artifacts/artifacts"
    ok(api("PUT", f"{P}/0/run1/artifacts/dir/a.txt", data=b"hello"))
    ok(api("PUT", f"{P}/0/run1/artifacts/b.bin", data=b"\x00" * 70000))
    assert api("GET", f"{P}/0/run1/artifacts/dir/a.txt").content == b"hello"
    listing = ok(api("GET", P, params={"path": "0/run1/artifacts"}))["files"]
    assert listing == [{"path": "b.bin", "is_dir": False, "file_size": 70000}, {"path": "dir", "is_dir": True}]
    assert ok(api("GET", P, params={"path": "0/run1/artifacts/dir/a.txt"})) == {"files": []}
    ok(api("DELETE", f"{P}/0/run1/artifacts/dir"))
    assert api("GET", f"{P}/0/run1/artifacts/dir/a.txt").status_code == 404
    assert [f["path"] for f in ok(api("GET", P, params={"path": "0/run1/artifacts"}))["files"]] == ["b.bin"]


def test_run_artifact_listing_and_get_artifact(api):
    run = new_run(api)["info"]
    rel = run["artifact_uri"][len("mlflow-artifacts:/"):]
    ok(api("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{rel}/model/MLmodel", data=b"flavors: {}"))
    listing = ok(api("GET", f"{A}/artifacts/list", params={"run_id": run["run_id"]}))
    assert listing["root_uri"] == run["artifact_uri"] and listing["files"] == [{"path": "model", "is_dir": True}]
    inner = ok(api("GET", f"{A}/artifacts/list", params={"run_id": run["run_id"], "path": "model"}))["files"]
    assert inner == [{"path": "model/MLmodel", "is_dir": False, "file_size": 11}]
    r = api("GET", "/get-artifact", params={"run_id": run["run_id"], "path": "model/MLmodel"})
    assert r.content == b"flavors: {}" and r.headers["x-content-type-options"] == "nosniff"


def test_logged_model_artifacts(api):
    mid = ok(api("POST", f"{A}/logged-models", json={"experiment_id": "0", "name": "m"}))["model"]["info"]["model_id"]
    ok(api("PUT", f"/api/2.0/mlflow-artifacts/artifacts/0/models/{mid}/artifacts/data/model.keras", data=b"k"))
    files = ok(api("GET", f"{A}/logged-models/{mid}/artifacts/directories",
                   params={"artifact_directory_path": "data"}))["files"]
    assert files == [{"path": "data/model.keras", "is_dir": False, "file_size": 1}]
    r = api("GET", f"/ajax-api/2.0/mlflow/logged-models/{mid}/artifacts/files",
            params={"artifact_file_path": "data/model.keras"})
    assert r.status_code == 200 and r.content == b"k"


def test_no_serve_artifacts_disables_the_proxy(request, tmp_path):
    import requests
    from server_fixture import start_server

    uri = start_server(request, tmp_path, serve_artifacts=False)
    r = requests.put(f"{uri}/api/2.0/mlflow-artifacts/artifacts/x.txt", data=b"x", timeout=10)
    assert r.status_code == 503 and r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    exp = requests.get(f"{uri}{A}/experiments/get", params={"experiment_id": "0"}, timeout=10).json()["experiment"]
    assert exp["artifact_location"] == str(tmp_path / "server" / "artifacts" / "0")


def test_model_linked_metric_echo_is_stored_once(api):
    """MLflow 3 clients log a run's metric again with the model's id: one point, linked to the model."""
    run_id = new_run(api)["info"]["run_id"]
    mid = ok(api("POST", f"{A}/logged-models", json={"experiment_id": "0", "source_run_id": run_id}))["model"][
        "info"]["model_id"]
    point = {"key": "loss", "value": 0.5, "timestamp": 10, "step": 0}
    ok(api("POST", f"{A}/runs/log-batch", json={"run_id": run_id, "metrics": [point]}))
    ok(api("POST", f"{A}/runs/log-batch", json={"run_id": run_id, "metrics": [point | {"model_id": mid},
                                                                             point | {"step": 1}]}))
    hist = ok(api("GET", f"{A}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"}))["metrics"]
    assert [h["step"] for h in hist] == [0, 1]
    model = ok(api("GET", f"{A}/logged-models/{mid}"))["model"]
    assert [(m["key"], m["value"]) for m in model["data"]["metrics"]] == [("loss", 0.5)]
