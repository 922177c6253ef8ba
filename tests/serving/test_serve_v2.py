"""The Open Inference Protocol (KServe V2) endpoints, in-process with real tiny Keras models."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def clients(loaded):
    from starlette.testclient import TestClient

    from mltrail.serving import ServingSettings, create_scoring_app

    apps = {
        "mlp": create_scoring_app(loaded["mlp"], ServingSettings(model_name="clf", model_version="3")),
        "multi": create_scoring_app(loaded["multi"], ServingSettings(model_name="multi")),
    }
    with TestClient(apps["mlp"]) as mlp, TestClient(apps["multi"]) as multi:
        yield {"mlp": mlp, "multi": multi}


def test_health_and_server_metadata(clients):
    c = clients["mlp"]
    assert c.get("/v2/health/live").json() == {"live": True}
    assert c.get("/v2/health/ready").json() == {"ready": True}
    assert c.get("/v2").json()["name"] == "mltrail"


def test_model_metadata_from_the_signature(clients):
    meta = clients["mlp"].get("/v2/models/clf").json()
    assert meta["name"] == "clf" and meta["versions"] == ["3"] and meta["platform"] == "tensorflow"
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 20]}]
    assert meta["outputs"] == [{"name": "output-0", "datatype": "FP32", "shape": [-1, 3]}]
    multi = clients["multi"].get("/v2/models/multi/versions/1").json()
    assert {i["name"]: i["shape"] for i in multi["inputs"]} == {"a": [-1, 4], "b": [-1, 3]}
    assert {o["name"] for o in multi["outputs"]} == {"y1", "y2"}


def test_model_ready(clients):
    r = clients["mlp"].get("/v2/models/clf/ready")
    assert r.status_code == 200 and r.json() == {"name": "clf", "ready": True}
    assert clients["mlp"].get("/v2/models/clf/versions/3/ready").status_code == 200


def test_unknown_model_or_version_is_404(clients):
    r = clients["mlp"].get("/v2/models/other")
    assert r.status_code == 404 and "clf" in r.json()["error"]
    assert clients["mlp"].get("/v2/models/clf/versions/9/ready").status_code == 404
    r = clients["mlp"].post("/v2/models/other/infer", json={"inputs": []})
    assert r.status_code == 404


@pytest.mark.parametrize("nested", [False, True])
def test_infer_single_input(clients, loaded, sm, nested):
    x = sm.random_rows(2, seed=9)
    data = x.tolist() if nested else x.ravel().tolist()
    r = clients["mlp"].post("/v2/models/clf/infer", json={
        "id": "req-1", "inputs": [{"name": "input-0", "shape": [2, 20], "datatype": "FP32", "data": data}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == "clf" and body["model_version"] == "3" and body["id"] == "req-1"
    (out,) = body["outputs"]
    assert out["name"] == "output-0" and out["shape"] == [2, 3] and out["datatype"] == "FP32"
    got = np.asarray(out["data"], np.float32).reshape(out["shape"])
    np.testing.assert_array_equal(got, loaded["mlp"].predict(x))


def test_infer_named_inputs_and_outputs(clients, loaded):
    rng = np.random.default_rng(4)
    a, b = rng.random((3, 4)).astype("float32"), rng.random((3, 3)).astype("float32")
    r = clients["multi"].post("/v2/models/multi/infer", json={
        "inputs": [{"name": "b", "shape": [3, 3], "datatype": "FP32", "data": b.ravel().tolist()},
                   {"name": "a", "shape": [3, 4], "datatype": "FP32", "data": a.ravel().tolist()}],
        "outputs": [{"name": "y2"}]})
    assert r.status_code == 200, r.text
    (out,) = r.json()["outputs"]
    assert out["name"] == "y2" and out["shape"] == [3, 1]
    expected = loaded["multi"].predict({"a": a, "b": b})["y2"]
    np.testing.assert_array_equal(np.asarray(out["data"], np.float32).reshape(3, 1), expected)


def test_infer_through_the_versioned_path(clients):
    r = clients["mlp"].post("/v2/models/clf/versions/3/infer", json={
        "inputs": [{"name": "x", "shape": [1, 20], "datatype": "FP64", "data": [0.5] * 20}]})
    assert r.status_code == 200 and r.json()["outputs"][0]["shape"] == [1, 3]


@pytest.mark.parametrize("inputs, status, match", [
    ([{"name": "x", "shape": [1, 20], "datatype": "FP99", "data": [0.5] * 20}], 400, "datatype"),
    ([{"name": "x", "shape": [1, 20], "datatype": "FP32", "data": [0.5] * 19}], 400, "needs 20 values"),
    ([{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [0.5] * 2}], 400, "does not match expected"),
    ([{"name": "x", "shape": [1, 20], "datatype": "INT32", "data": [0.5] * 20}], 400, "does not fit"),
    ([{"name": "x", "shape": [1, 20], "data": [0.5] * 20}], 400, "missing"),
    ([], 400, "non-empty"),
])
def test_infer_errors(clients, inputs, status, match):
    r = clients["mlp"].post("/v2/models/clf/infer", json={"inputs": inputs})
    assert r.status_code == status
    assert match in r.json()["error"]


def test_unknown_input_or_output_names(clients):
    r = clients["multi"].post("/v2/models/multi/infer", json={
        "inputs": [{"name": "zzz", "shape": [1, 4], "datatype": "FP32", "data": [0.0] * 4}]})
    assert r.status_code == 400 and "zzz" in r.json()["error"]
    r = clients["mlp"].post("/v2/models/clf/infer", json={
        "inputs": [{"name": "x", "shape": [1, 20], "datatype": "FP32", "data": [0.5] * 20}],
        "outputs": [{"name": "nope"}]})
    assert r.status_code == 400 and "nope" in r.json()["error"]


def test_bad_json_is_400(clients):
    r = clients["mlp"].post("/v2/models/clf/infer", content=b"{", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error_code"] == "BAD_REQUEST"
