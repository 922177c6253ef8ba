"""The endpoints MLflow's server adds for its UI by hand (mlflow/server/__init__.py), through a real
server over HTTP: get-history-bulk, search-datasets, upload-artifact, /get-artifact,
/model-versions/get-artifact, and the `/ajax-api/2.0` twin of every `/api/2.0` route.

Expectations taken from MLflow 3's source name the function they come from (mlflow/server/handlers.py
unless said otherwise)."""

from __future__ import annotations

import os
import time
import urllib.parse

import pytest
import requests
from server_fixture import start_server

A = "/api/2.0/mlflow"
X = "/ajax-api/2.0/mlflow"
BULK = f"{X}/metrics/get-history-bulk"
DATASETS = f"{X}/experiments/search-datasets"
UPLOAD = f"{X}/upload-artifact"


def ok(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text)
    return resp.json()


def error(resp, status, code, prefix):
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert body["error_code"] == code, body
    assert body["message"].startswith(prefix), body
    return body["message"]


def new_run(api, exp_id="0"):
    body = {"experiment_id": exp_id, "start_time": int(time.time() * 1000), "user_id": "tester"}
    return ok(api("POST", f"{A}/runs/create", json=body))["run"]["info"]


def log_metrics(api, run_id, points, key="m"):
    metrics = [{"key": key, "value": v, "timestamp": ts, "step": step} for ts, step, v in points]
    ok(api("POST", f"{A}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}))


def input_of(name, digest, context=None):
    tags = [{"key": "mlflow.data.context", "value": context}] if context else []
    return {"dataset": {"name": name, "digest": digest, "source_type": "local", "source": f"/data/{name}"},
            "tags": tags}


# ------------------------------------------------------------------ get-history-bulk
def test_history_bulk_orders_runs_then_timestamp_step_value(api):
    r1, r2 = sorted([new_run(api)["run_id"], new_run(api)["run_id"]])
    # logged out of order, with a NaN (MLflow stores NaN as 0 and orders by the stored value)
    log_metrics(api, r2, [(5, 0, 1.0), (3, 1, "NaN"), (3, 0, 2.0), (3, 0, -1.0), (3, 1, -0.5)])
    log_metrics(api, r1, [(9, 0, 7.0), (1, 3, 8.0)])
    log_metrics(api, r1, [(0, 0, 99.0)], key="other")
    # run ids given in any order, one twice, one unknown (SqlAlchemyStore.get_metric_history_bulk:
    # `run_uuid IN (...)` ORDER BY run_uuid, timestamp, step, value; unknown runs just have no rows)
    got = ok(api("GET", BULK, params={"run_id": [r2, r1, r2, "0" * 32], "metric_key": "m"}))
    assert got == {"metrics": [
        {"key": "m", "value": 8.0, "timestamp": 1, "step": 3, "run_id": r1},
        {"key": "m", "value": 7.0, "timestamp": 9, "step": 0, "run_id": r1},
        {"key": "m", "value": -1.0, "timestamp": 3, "step": 0, "run_id": r2},
        {"key": "m", "value": 2.0, "timestamp": 3, "step": 0, "run_id": r2},
        {"key": "m", "value": -0.5, "timestamp": 3, "step": 1, "run_id": r2},
        {"key": "m", "value": "NaN", "timestamp": 3, "step": 1, "run_id": r2},
        {"key": "m", "value": 1.0, "timestamp": 5, "step": 0, "run_id": r2},
    ]}
    # max_results bounds the total over all runs, in that order (get_metric_history_bulk_handler)
    first3 = ok(api("GET", BULK, params={"run_id": [r1, r2], "metric_key": "m", "max_results": 3}))["metrics"]
    assert [(m["run_id"], m["timestamp"], m["step"]) for m in first3] == [(r1, 1, 3), (r1, 9, 0), (r2, 3, 0)]
    assert ok(api("GET", BULK, params={"run_id": r1, "metric_key": "m", "max_results": 0})) == {"metrics": []}
    # above the cap of 25,000 is the cap, not an error: min(max_results, MAX_HISTORY_RESULTS)
    assert len(ok(api("GET", BULK, params={"run_id": [r1, r2], "metric_key": "m",
                                           "max_results": 10**9}))["metrics"]) == 7
    # MLflow checks `metric_key is None` only: an empty key is a key with no points
    assert ok(api("GET", BULK, params={"run_id": r1, "metric_key": ""})) == {"metrics": []}


def test_history_bulk_orders_a_run_s_points_by_timestamp(api):
    run_id = new_run(api)["run_id"]
    points = [(100 - i, i, float(i)) for i in range(30)]  # timestamps fall as steps rise
    log_metrics(api, run_id, points)
    got = ok(api("GET", BULK, params={"run_id": run_id, "metric_key": "m", "max_results": 5}))["metrics"]
    assert [m["timestamp"] for m in got] == [71, 72, 73, 74, 75]
    everything = ok(api("GET", BULK, params={"run_id": run_id, "metric_key": "m"}))["metrics"]
    assert [m["step"] for m in everything] == list(range(29, -1, -1))


@pytest.mark.parametrize(("params", "prefix"), [
    # get_metric_history_bulk_handler's messages
    ({"metric_key": "m"}, "GetMetricHistoryBulk request must specify at least one run_id."),
    ({"run_ids": "r", "metric_key": "m"}, "GetMetricHistoryBulk request must specify at least one run_id."),
    ({"run_id": [f"r{i}" for i in range(101)], "metric_key": "m"},
     "GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received 101 run_ids."),
    ({"run_id": "r"}, "GetMetricHistoryBulk request must specify a metric_key."),
    # MLflow answers 500 (int('abc')) and a garbled list (negative); a 400 here
    ({"run_id": "r", "metric_key": "m", "max_results": "abc"}, "Invalid value 'abc' for 'max_results'"),
    ({"run_id": "r", "metric_key": "m", "max_results": -1}, "Invalid value -1 for 'max_results'"),
])
def test_history_bulk_validation(api, params, prefix):
    error(api("GET", BULK, params=params), 400, "INVALID_PARAMETER_VALUE", prefix)


def test_history_bulk_is_ajax_only_and_get_only(api):
    run_id = new_run(api)["run_id"]
    params = {"run_id": run_id, "metric_key": "m"}
    # mlflow/server/__init__.py: serve_get_metric_history_bulk, GET under /ajax-api/2.0 only
    assert api("GET", f"{A}/metrics/get-history-bulk", params=params).status_code == 404
    assert api("POST", BULK, params=params, json={}).status_code in (404, 405)
    assert ok(api("GET", BULK, params={**params, "max_results": 100})) == {"metrics": []}


# ------------------------------------------------------------------ search-datasets
def test_search_datasets_summaries(api):
    exp = ok(api("POST", f"{A}/experiments/create", json={"name": "with-data"}))["experiment_id"]
    other = ok(api("POST", f"{A}/experiments/create", json={"name": "other"}))["experiment_id"]
    r1, r2, r3 = new_run(api, exp)["run_id"], new_run(api, exp)["run_id"], new_run(api, other)["run_id"]
    ok(api("POST", f"{A}/runs/log-inputs", json={"run_id": r1, "datasets": [input_of("train", "d1", "training")]}))
    ok(api("POST", f"{A}/runs/log-inputs", json={"run_id": r2, "datasets": [
        input_of("train", "d1", "eval"), input_of("a", "d0")]}))
    ok(api("POST", f"{A}/runs/log-inputs", json={"run_id": r2, "datasets": [input_of("train", "d1", "eval")]}))
    ok(api("POST", f"{A}/runs/log-inputs", json={"run_id": r3, "datasets": [input_of("train", "d1", "training")]}))
    got = ok(api("POST", DATASETS, json={"experiment_ids": [exp]}))
    # search_datasets_impl / _DatasetSummary.to_proto: one summary per distinct (experiment, name,
    # digest, context); `context` left out when the input has no mlflow.data.context tag
    assert got == {"dataset_summaries": [
        {"experiment_id": exp, "name": "a", "digest": "d0"},
        {"experiment_id": exp, "name": "train", "digest": "d1", "context": "eval"},
        {"experiment_id": exp, "name": "train", "digest": "d1", "context": "training"},
    ]}
    both = ok(api("POST", DATASETS, json={"experiment_ids": [other, exp]}))["dataset_summaries"]
    assert [s["experiment_id"] for s in both] == sorted([exp] * 3 + [other], key=int)
    # nothing found: protobuf's JSON leaves the empty list out (message_to_json)
    assert ok(api("POST", DATASETS, json={"experiment_ids": ["0"]})) == {}
    assert ok(api("POST", DATASETS, json={"experiment_ids": ["987654"]})) == {}


@pytest.mark.parametrize(("body", "prefix"), [
    # search_datasets_impl's messages
    ({}, "SearchDatasets request must specify at least one experiment_id."),
    ({"experiment_ids": []}, "SearchDatasets request must specify at least one experiment_id."),
    ({"experiment_ids": [str(i) for i in range(21)]},
     "SearchDatasets request cannot specify more than 20 experiment_ids. Received 21 experiment_ids."),
    # SqlAlchemyStore._search_datasets -> _parse_experiment_ids: "Invalid experiment ID 'abc'. ..."
    ({"experiment_ids": ["abc"]}, "Invalid experiment ID 'abc'"),
])
def test_search_datasets_validation(api, body, prefix):
    error(api("POST", DATASETS, json=body), 400, "INVALID_PARAMETER_VALUE", prefix)


def test_search_datasets_wants_json_and_is_ajax_only(api):
    body = b'{"experiment_ids": ["0"]}'
    # mlflow/server/validation.py _validate_content_type, called by search_datasets_impl
    error(api("POST", DATASETS, data=body), 400, "INVALID_PARAMETER_VALUE",
          "Bad Request. Content-Type header is missing.")
    error(api("POST", DATASETS, data=body, headers={"Content-Type": "text/plain"}), 400, "INVALID_PARAMETER_VALUE",
          "Bad Request. Content-Type must be one of ['application/json'].")
    assert ok(api("POST", DATASETS, data=body, headers={"Content-Type": "application/json; charset=utf-8"})) == {}
    # serve_search_datasets: POST under /ajax-api/2.0 only
    assert api("POST", f"{A}/experiments/search-datasets", json={"experiment_ids": ["0"]}).status_code == 404
    assert api("GET", DATASETS, params={"experiment_ids": "0"}).status_code in (404, 405)


def test_search_datasets_through_the_stores(server_uri, tmp_path):
    from mltrail.entities import Dataset, DatasetInput, InputTag
    from mltrail.errors import MltrailException
    from mltrail.store import clear_cache, get_store
    from mltrail.store.base import TrackingStore
    from mltrail.store.sql.store import SqlTrackingStore

    clear_cache()
    rest = get_store(server_uri)
    sql = SqlTrackingStore(f"sqlite:///{tmp_path}/direct.db", str(tmp_path / "artifacts"))
    for store in (rest, sql):
        exps = [store.create_experiment(f"e{i}") for i in range(22)]  # the REST store asks 20 at a time
        for i, exp in enumerate(exps):
            run = store.create_run(exp, "u", 0, [], None).info.run_id
            ds = Dataset(name=f"d{i % 2}", digest="x", source_type="local", source="/d")
            store.log_inputs(run, [DatasetInput(ds, [InputTag("mlflow.data.context", "training")])])
        store.log_inputs(run, [DatasetInput(Dataset("plain", "y", "local", "/p"))])
        found = store.search_datasets(exps)
        assert len(found) == 23 and found[0] == (exps[0], "d0", "x", "training")
        assert found[-2:] == [(exps[-1], "d1", "x", "training"), (exps[-1], "plain", "y", None)]
        assert store.search_datasets([]) == []
    # a backend that cannot search datasets says so, with one clear error (the protocol's default)
    with pytest.raises(MltrailException, match="cannot search datasets"):
        TrackingStore.search_datasets(sql, ["0"])


def test_search_datasets_answers_at_most_1000(tmp_path):
    from mltrail.entities import Dataset, DatasetInput
    from mltrail.store.sql.store import SqlTrackingStore

    store = SqlTrackingStore(f"sqlite:///{tmp_path}/many.db", str(tmp_path / "artifacts"))
    run = store.create_run("0", "u", 0, [], None).info.run_id
    store.log_inputs(run, [DatasetInput(Dataset(f"d{i:04d}", "x", "local", "/d")) for i in range(1005)])
    found = store.search_datasets(["0"])  # SqlAlchemyStore._search_datasets: MAX_DATASET_SUMMARIES_RESULTS
    assert len(found) == 1000 and found[0][1] == "d0000" and found[-1][1] == "d0999"


# ------------------------------------------------------------------ upload-artifact
def test_upload_artifact_writes_into_the_run(api):
    run = new_run(api)
    run_id = run["run_id"]
    # upload_artifact_handler: query run_uuid and path, the body is the file; the answer is empty JSON
    ok(api("POST", UPLOAD, params={"run_uuid": run_id, "path": "notes/img.png"}, data=b"\x89PNG data"))
    ok(api("POST", UPLOAD, params={"run_uuid": run_id, "path": "top.txt"}, data=b"one"))
    ok(api("POST", UPLOAD, params={"run_uuid": run_id, "path": "top.txt"}, data=b"two"))  # replaced
    listing = ok(api("GET", f"{A}/artifacts/list", params={"run_id": run_id}))
    assert listing["files"] == [{"path": "notes", "is_dir": True},
                                {"path": "top.txt", "is_dir": False, "file_size": 3}]
    r = api("GET", "/get-artifact", params={"run_id": run_id, "path": "notes/img.png"})
    assert r.status_code == 200 and r.content == b"\x89PNG data"
    assert api("GET", "/get-artifact", params={"run_id": run_id, "path": "top.txt"}).content == b"two"
    # where the proxy keeps it: under the run's own artifact location
    rel = run["artifact_uri"][len("mlflow-artifacts:/"):]
    assert api("GET", f"/api/2.0/mlflow-artifacts/artifacts/{rel}/top.txt").content == b"two"


@pytest.mark.parametrize(("params", "data", "status", "code", "prefix"), [
    # upload_artifact_handler's checks, in its order
    ({"path": "a.txt"}, b"x", 400, "INVALID_PARAMETER_VALUE", "Request must specify run_uuid."),
    ({"run_id": "{run}", "path": "a.txt"}, b"x", 400, "INVALID_PARAMETER_VALUE", "Request must specify run_uuid."),
    ({"run_uuid": "{run}"}, b"x", 400, "INVALID_PARAMETER_VALUE", "Request must specify path."),
    ({"run_uuid": "{run}", "path": ""}, b"x", 400, "INVALID_PARAMETER_VALUE", "Request must specify path."),
    ({"run_uuid": "{run}", "path": "../a.txt"}, b"x", 400, "INVALID_PARAMETER_VALUE", "Invalid path"),
    ({"run_uuid": "{run}", "path": "/etc/a.txt"}, b"x", 400, "INVALID_PARAMETER_VALUE", "Invalid path"),
    ({"run_uuid": "{run}", "path": "a#b"}, b"x", 400, "INVALID_PARAMETER_VALUE", "Invalid path"),
    ({"run_uuid": "{run}", "path": "a\\..\\b"}, b"x", 400, "INVALID_PARAMETER_VALUE", "Invalid path"),
    ({"run_uuid": "{run}", "path": "%2e%2e/a"}, b"x", 400, "INVALID_PARAMETER_VALUE", "Invalid path"),
    # MLflow answers 500 for these two (a directory name); 'Invalid path' here
    ({"run_uuid": "{run}", "path": "dir/"}, b"x", 400, "INVALID_PARAMETER_VALUE", "Invalid path"),
    ({"run_uuid": "{run}", "path": "."}, b"x", 400, "INVALID_PARAMETER_VALUE", "Invalid path"),
    ({"run_uuid": "{run}", "path": "a.txt"}, b"", 400, "INVALID_PARAMETER_VALUE", "Request must specify data."),
    ({"run_uuid": "0" * 32, "path": "a.txt"}, b"x", 404, "RESOURCE_DOES_NOT_EXIST", "Run with id="),
])
def test_upload_artifact_validation(api, params, data, status, code, prefix):
    run_id = new_run(api)["run_id"]
    params = {k: v.format(run=run_id) for k, v in params.items()}
    error(api("POST", UPLOAD, params=params, data=data), status, code, prefix)
    assert ok(api("GET", f"{A}/artifacts/list", params={"run_id": run_id}))["files"] == []  # nothing written


def test_upload_artifact_size_limit(api):
    run_id = new_run(api)["run_id"]
    params = {"run_uuid": run_id, "path": "big.bin"}
    limit = 10 * 1024 * 1024  # upload_artifact_handler: "Max size is 10MB."
    error(api("POST", UPLOAD, params=params, data=b"x" * (limit + 1)), 400, "INVALID_PARAMETER_VALUE",
          "Artifact size is too large. Max size is 10MB.")
    # a body streamed without Content-Length is counted as it arrives
    error(api("POST", UPLOAD, params=params, data=iter([b"x" * limit, b"x"])), 400, "INVALID_PARAMETER_VALUE",
          "Artifact size is too large. Max size is 10MB.")
    ok(api("POST", UPLOAD, params=params, data=b"x" * limit))
    files = ok(api("GET", f"{A}/artifacts/list", params={"run_id": run_id}))["files"]
    assert files == [{"path": "big.bin", "is_dir": False, "file_size": limit}]


def test_upload_artifact_respects_a_smaller_server_limit(request, tmp_path):
    uri = start_server(request, tmp_path, max_artifact_bytes=100)
    run_id = requests.post(f"{uri}{A}/runs/create", json={"experiment_id": "0"}, timeout=10).json()["run"]["info"][
        "run_id"]
    r = requests.post(f"{uri}{UPLOAD}", params={"run_uuid": run_id, "path": "a"}, data=b"x" * 101, timeout=10)
    error(r, 400, "INVALID_PARAMETER_VALUE", "Artifact size is too large. Max size is 100 bytes.")


def test_upload_artifact_into_a_local_root_stays_inside(request, tmp_path):
    """Without the proxy, runs keep artifacts in the local destination: uploads land there, and
    neither '..' nor a symlink inside the run's directory lets one write elsewhere."""
    uri = start_server(request, tmp_path, serve_artifacts=False)
    outside = tmp_path / "outside"
    outside.mkdir()
    run = requests.post(f"{uri}{A}/runs/create", json={"experiment_id": "0"}, timeout=10).json()["run"]["info"]
    root = run["artifact_uri"]
    assert root.startswith(str(tmp_path / "server" / "artifacts"))

    def upload(path, data=b"x"):
        return requests.post(f"{uri}{UPLOAD}", params={"run_uuid": run["run_id"], "path": path}, data=data,
                             timeout=10)

    ok(upload("a/b.txt", b"hi"))
    with open(os.path.join(root, "a", "b.txt"), "rb") as fh:
        assert fh.read() == b"hi"
    os.symlink(outside, os.path.join(root, "link"))
    for path in ("link/x.txt", "../../x.txt", f"..%2f..%2f{outside.name}/x.txt", "a/b.txt/c.txt", "a"):
        r = upload(path)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", (path, r.text)
    assert not list(outside.iterdir())


# ------------------------------------------------------------------ /get-artifact
def _run_with_file(api):
    run = new_run(api)
    ok(api("POST", UPLOAD, params={"run_uuid": run["run_id"], "path": "dir/a.txt"}, data=b"hello"))
    return run


def test_get_artifact_serves_a_run_file(api):
    run = _run_with_file(api)
    for id_param in ("run_id", "run_uuid"):  # get_artifact_handler: run_id or run_uuid
        r = api("GET", "/get-artifact", params={id_param: run["run_id"], "path": "dir/a.txt"})
        assert r.status_code == 200 and r.content == b"hello"
        # _send_artifact: always an attachment, never rendered as part of the server's pages
        assert r.headers["content-disposition"].startswith("attachment") and "a.txt" in r.headers[
            "content-disposition"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(("params", "status", "code", "prefix"), [
    # MLflow: request.args["path"], a bare 400
    ({"run_id": "{run}"}, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'path'."),
    # validate_path_is_safe (mlflow/utils/uri.py): "Invalid path"
    ({"run_id": "{run}", "path": "../x"}, 400, "INVALID_PARAMETER_VALUE", "Invalid path"),
    ({"run_id": "{run}", "path": "/etc/passwd"}, 400, "INVALID_PARAMETER_VALUE", "Invalid path"),
    ({"run_id": "{run}", "path": "a#b"}, 400, "INVALID_PARAMETER_VALUE", "Invalid path"),
    ({"run_id": "{run}", "path": "%252e%252e/x"}, 400, "INVALID_PARAMETER_VALUE", "Invalid path"),
    # the artifact repository's answers behind _send_artifact
    ({"run_id": "{run}", "path": "dir"}, 400, "INVALID_PARAMETER_VALUE",
     "Artifact path refers to a directory, not a file:"),
    ({"run_id": "{run}", "path": ""}, 400, "INVALID_PARAMETER_VALUE",
     "Artifact path refers to a directory, not a file:"),
    ({"run_id": "{run}", "path": "nope.txt"}, 404, "RESOURCE_DOES_NOT_EXIST", "No such artifact:"),
    ({"run_id": "0" * 32, "path": "a.txt"}, 404, "RESOURCE_DOES_NOT_EXIST", "Run with id="),
    # MLflow looks up run None (a 404); a missing parameter is a 400 here
    ({"path": "dir/a.txt"}, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'."),
])
def test_get_artifact_validation(api, params, status, code, prefix):
    run = _run_with_file(api)
    params = {k: v.format(run=run["run_id"]) for k, v in params.items()}
    error(api("GET", "/get-artifact", params=params), status, code, prefix)


def test_get_artifact_messages_do_not_name_server_paths(request, tmp_path):
    uri = start_server(request, tmp_path, serve_artifacts=False)
    run = requests.post(f"{uri}{A}/runs/create", json={"experiment_id": "0"}, timeout=10).json()["run"]["info"]
    r = requests.get(f"{uri}/get-artifact", params={"run_id": run["run_id"], "path": "missing.txt"}, timeout=10)
    assert r.status_code == 404 and str(tmp_path) not in r.text


# ------------------------------------------------------------------ /model-versions/get-artifact
def test_model_version_get_artifact(api):
    run = _run_with_file(api)
    ok(api("POST", f"{A}/registered-models/create", json={"name": "rm"}))
    ok(api("POST", f"{A}/model-versions/create", json={"name": "rm", "source": run["artifact_uri"] + "/dir",
                                                         "run_id": run["run_id"]}))
    # get_model_version_artifact_handler: the file under get_model_version_download_uri(name, version)
    r = api("GET", "/model-versions/get-artifact", params={"name": "rm", "version": "1", "path": "a.txt"})
    assert r.status_code == 200 and r.content == b"hello"
    assert r.headers["content-disposition"].startswith("attachment")


@pytest.mark.parametrize(("params", "status", "code", "prefix"), [
    ({"name": "rm", "version": "1"}, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'path'."),
    ({"name": "rm", "version": "1", "path": "../a.txt"}, 400, "INVALID_PARAMETER_VALUE", "Invalid path"),
    ({"name": "rm", "version": "1", "path": "/a.txt"}, 400, "INVALID_PARAMETER_VALUE", "Invalid path"),
    # the registry store's messages in MLflow
    ({"version": "1", "path": "a.txt"}, 400, "INVALID_PARAMETER_VALUE",
     "Missing value for required parameter 'name'."),
    ({"name": "rm", "version": "x", "path": "a.txt"}, 400, "INVALID_PARAMETER_VALUE",
     "Parameter 'version' must be an integer, got 'x'."),
    ({"name": "rm", "version": "9", "path": "a.txt"}, 404, "RESOURCE_DOES_NOT_EXIST",
     "Model Version (name=rm, version=9) not found"),
    ({"name": "rm", "version": "1", "path": "nope"}, 404, "RESOURCE_DOES_NOT_EXIST", "No such artifact:"),
    ({"name": "rm", "version": "1", "path": ""}, 400, "INVALID_PARAMETER_VALUE",
     "Artifact path refers to a directory, not a file:"),
    # MLflow answers 500 (int(None)); a 400 here
    ({"name": "rm", "path": "a.txt"}, 400, "INVALID_PARAMETER_VALUE",
     "Missing value for required parameter 'version'."),
])
def test_model_version_get_artifact_validation(api, params, status, code, prefix):
    run = _run_with_file(api)
    ok(api("POST", f"{A}/registered-models/create", json={"name": "rm"}))
    ok(api("POST", f"{A}/model-versions/create", json={"name": "rm", "source": run["artifact_uri"] + "/dir",
                                                         "run_id": run["run_id"]}))
    error(api("GET", "/model-versions/get-artifact", params=params), status, code, prefix)


def test_model_version_artifacts_never_escape(api):
    run = _run_with_file(api)
    ok(api("POST", f"{A}/registered-models/create", json={"name": "rm"}))
    ok(api("POST", f"{A}/model-versions/create", json={"name": "rm", "source": run["artifact_uri"] + "/dir",
                                                         "run_id": run["run_id"]}))
    for path in ("../../../../etc/passwd", "..%2f..%2fetc/passwd", "dir/../../x", "~/x", "C:/x"):
        q = urllib.parse.urlencode({"name": "rm", "version": "1", "path": path})
        r = api("GET", f"/model-versions/get-artifact?{q}")
        assert r.status_code == 400 and r.json()["message"].startswith("Invalid path"), (path, r.text)


# ------------------------------------------------------------------ prefixes
def test_download_routes_are_served_at_the_root_only(api):
    run = _run_with_file(api)
    params = {"run_id": run["run_id"], "path": "dir/a.txt"}
    # mlflow/server/__init__.py: serve_artifacts and serve_model_version_artifact at the (static) root
    assert api("GET", "/get-artifact", params=params).status_code == 200
    assert api("GET", f"{X}/model-versions/get-artifact",
               params={"name": "rm", "version": "1", "path": "a"}).status_code == 404
    # upload-artifact: serve_upload_artifact, /ajax-api only
    r = api("POST", f"{A}/upload-artifact", params={"run_uuid": run["run_id"], "path": "b.txt"}, data=b"x")
    assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_every_api_route_has_its_ajax_twin():
    """handlers._get_paths: each REST route is registered under /api/2.0 and /ajax-api/2.0."""
    from starlette.routing import Route

    from mltrail.server.app import api_routes

    routes = {(r.path, frozenset(r.methods or ())) for r in api_routes() if isinstance(r, Route)}
    api = {(p[len("/api/2.0"):], m) for p, m in routes if p.startswith("/api/2.0/")}
    ajax = {(p[len("/ajax-api/2.0"):], m) for p, m in routes if p.startswith("/ajax-api/2.0/")}
    assert api and api <= ajax, sorted(api - ajax)
    # and the UI's own endpoints are the only ajax-only ones
    assert {p for p, _ in ajax - api} == {"/mlflow/metrics/get-history-bulk", "/mlflow/experiments/search-datasets",
                                          "/mlflow/upload-artifact"}


@pytest.mark.parametrize("prefix", ["/api/2.0", "/ajax-api/2.0"])
def test_twins_answer_alike(api, prefix):
    run = _run_with_file(api)
    got = ok(api("GET", f"{prefix}/mlflow/runs/get", params={"run_id": run["run_id"]}))["run"]["info"]
    assert got["run_id"] == run["run_id"]
    files = ok(api("GET", f"{prefix}/mlflow/artifacts/list", params={"run_id": run["run_id"], "path": "dir"}))
    assert files["files"] == [{"path": "dir/a.txt", "is_dir": False, "file_size": 5}]
    r = api("GET", f"{prefix}/mlflow-artifacts/artifacts", params={"path": "0"})
    assert r.status_code == 200
    sampled = ok(api("GET", f"{prefix}/mltrail/metrics/get-history-sampled",
                     params={"run_id": run["run_id"], "metric_key": "m"}))
    assert sampled == {"metrics": []}
