"""MLflow's scoring endpoints in-process (Starlette's TestClient) with real tiny Keras models:
every request format, params, and every error case."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.tf


def _client(model, **settings):
    from starlette.testclient import TestClient

    from mltrail.serving import ServingSettings, create_scoring_app

    return TestClient(create_scoring_app(model, ServingSettings(**settings)))


@pytest.fixture(scope="module")
def mlp_client(loaded):
    with _client(loaded["mlp"]) as c:
        yield c


@pytest.fixture(scope="module")
def multi_client(loaded):
    with _client(loaded["multi"]) as c:
        yield c


def _preds(response):
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def test_ping_health_version(mlp_client):
    from mltrail.version import __version__

    assert mlp_client.get("/ping").status_code == 200
    assert mlp_client.get("/health").status_code == 200
    assert mlp_client.get("/version").text == __version__


@pytest.mark.parametrize("fmt", ["inputs", "instances", "dataframe_split", "dataframe_records", "csv"])
def test_every_format_gives_the_models_predictions(mlp_client, loaded, sm, fmt):
    x = sm.random_rows(3, seed=5)
    expected = loaded["mlp"].predict(x)
    cols = [f"f{i}" for i in range(20)]
    if fmt == "inputs":
        r = mlp_client.post("/invocations", json={"inputs": x.tolist()})
    elif fmt == "instances":
        r = mlp_client.post("/invocations", json={"instances": x.tolist()})
    elif fmt == "dataframe_split":
        r = mlp_client.post("/invocations", json={"dataframe_split": {"columns": cols, "data": x.tolist()}})
    elif fmt == "dataframe_records":
        r = mlp_client.post("/invocations", json={"dataframe_records": [dict(zip(cols, row, strict=True))
                                                                        for row in x.tolist()]})
    else:
        csv = ",".join(cols) + "\n" + "\n".join(",".join(repr(v) for v in row) for row in x.tolist()) + "\n"
        r = mlp_client.post("/invocations", content=csv, headers={"Content-Type": "text/csv"})
    got = _preds(r)
    if isinstance(got[0], dict):  # a DataFrame in, a DataFrame out: MLflow writes records
        got = [list(row.values()) for row in got]
    np.testing.assert_array_equal(np.asarray(got, np.float32), expected)


def test_named_inputs_and_outputs(multi_client, loaded):
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 4)).astype("float32"), rng.random((2, 3)).astype("float32")
    expected = loaded["multi"].predict({"a": a, "b": b})
    for body in ({"inputs": {"a": a.tolist(), "b": b.tolist()}},
                 {"instances": [{"a": a[i].tolist(), "b": b[i].tolist()} for i in range(2)]}):
        got = _preds(multi_client.post("/invocations", json=body))
        assert set(got) == {"y1", "y2"}  # a dict of lists, as MLflow writes multi-output predictions
        for k in got:
            np.testing.assert_array_equal(np.asarray(got[k], np.float32), expected[k])


def test_missing_named_input_is_400(multi_client):
    r = multi_client.post("/invocations", json={"inputs": {"a": [[1, 2, 3, 4]]}})
    assert r.status_code == 400
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE" and "b" in body["message"]


def test_params_are_checked_against_the_signature(loaded, sm):
    x = sm.random_rows(1).tolist()
    with _client(loaded["params"]) as c:
        assert c.post("/invocations", json={"inputs": x, "params": {"scale": 2.0}}).status_code == 200
        bad = c.post("/invocations", json={"inputs": x, "params": {"scale": "big"}})
        assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "scale" in bad.json()["message"]
        # a parameter the signature doesn't declare is ignored with a warning, as in MLflow
        assert c.post("/invocations", json={"inputs": x, "params": {"other": 1}}).status_code == 200


def test_wrong_shape_names_expected_and_received(mlp_client):
    r = mlp_client.post("/invocations", json={"inputs": [[1, 2]]})
    assert r.status_code == 400
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "(1, 2)" in body["message"] and "(-1, 20)" in body["message"]


def test_wrong_dtype_names_expected_and_received(mlp_client):
    r = mlp_client.post("/invocations", json={"inputs": [["a"] * 20]})
    assert r.status_code == 400
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "float32" in body["message"] and "str" in body["message"]


@pytest.mark.parametrize("body", [b"{oops", b'{"inputs": [[1, 2], [3]]}', b'{"rows": [[1]]}', b"[1, 2, 3]"])
def test_bad_json_and_missing_fields_are_bad_request(mlp_client, body):
    r = mlp_client.post("/invocations", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error_code"] == "BAD_REQUEST" and r.json()["message"]


def test_unsupported_content_type_is_415(mlp_client):
    r = mlp_client.post("/invocations", content=b"<x/>", headers={"Content-Type": "application/xml"})
    assert r.status_code == 415 and r.json()["error_code"] == "BAD_REQUEST"


def test_body_over_the_limit_is_413(loaded):
    with _client(loaded["mlp"], max_body_mb=0.001) as c:  # about 1 KB
        big = json.dumps({"inputs": [[0.5] * 20] * 100})
        r = c.post("/invocations", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and "limit" in r.json()["message"]

        def chunks():  # no Content-Length: counted while reading
            for i in range(0, len(big), 256):
                yield big[i:i + 256].encode()

        r = c.post("/invocations", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert c.post("/invocations", json={"inputs": [[0.5] * 20]}).status_code == 200


def test_model_failure_is_500_and_the_server_keeps_serving(loaded):
    # no signature: nothing refuses the wrong width before the model itself fails on it
    with _client(loaded["nosig"]) as c:
        r = c.post("/invocations", json={"inputs": [[1.0, 2.0, 3.0]]})
        assert r.status_code == 500
        assert r.json()["error_code"] == "INTERNAL_ERROR" and "failed to predict" in r.json()["message"]
        assert len(_preds(c.post("/invocations", json={"inputs": [[0.1] * 20]}))) == 1


def test_get_on_invocations_is_405(mlp_client):
    assert mlp_client.get("/invocations").status_code == 405


def test_unbatched_requests_without_the_context_manager(loaded):
    # TestClient without `with` runs each request on a fresh event loop: the batcher follows it
    from starlette.testclient import TestClient

    from mltrail.serving import create_scoring_app

    c = TestClient(create_scoring_app(loaded["mlp"]))
    for _ in range(2):
        assert len(_preds(c.post("/invocations", json={"inputs": [[0.1] * 20]}))) == 1
