"""The registry REST API of a real server: our own client round trip, MLflow's JSON, refusals over HTTP."""

from __future__ import annotations

import numpy as np
import pytest
import requests
from server_fixture import start_server

import mltrail
from mltrail import store as store_mod
from mltrail.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from mltrail.store.rest_registry import RestRegistryMixin

API = "/api/2.0/mlflow"


@pytest.fixture
def server(request, tmp_path):
    """A real server (uvicorn thread over SQLite, artifacts proxied); the tracking URI points at it."""
    uri = start_server(request, tmp_path)
    store_mod.clear_cache()
    mltrail.set_tracking_uri(uri)
    return uri


def test_registry_round_trip_over_rest(server):
    client = mltrail.MlflowClient()
    assert isinstance(client._registry_store, RestRegistryMixin)
    with mltrail.start_run() as run:
        pass
    rid = run.info.run_id
    rm = client.create_registered_model("my model", tags={"team": "a"}, description="d")
    assert rm.name == "my model" and rm.tags == {"team": "a"}
    with pytest.raises(ResourceAlreadyExists):
        client.create_registered_model("my%20model")
    mv = client.create_model_version("my%20model", f"runs:/{rid}/model", run_id=rid, tags={"k": "v"},
                                     run_link="http://ci", description="first")
    assert (mv.name, mv.version, mv.run_id, mv.tags, mv.run_link) == ("my model", 1, rid, {"k": "v"}, "http://ci")
    client.create_model_version("my model", f"runs:/{rid}/model2")
    assert client.get_model_version("my model", 2).source == f"runs:/{rid}/model2"
    assert client.get_model_version_download_uri("my model", 1) == f"{run.info.artifact_uri}/model"
    client.set_registered_model_alias("my model", "champion", 2)
    got = client.get_model_version_by_alias("my model", "champion")
    assert got.version == 2 and got.aliases == ["champion"]
    rm = client.get_registered_model("my model")
    assert rm.aliases == {"champion": "2"} and [v.version for v in rm.latest_versions] == [2]
    assert client.update_registered_model("my model", "new").description == "new"
    assert client.update_model_version("my model", 1, "better").description == "better"
    client.set_registered_model_tag("my model", "x", "y")
    client.delete_registered_model_tag("my model", "team")
    client.set_model_version_tag("my model", 1, "t", "u")
    client.delete_model_version_tag("my model", 1, "k")
    assert client.get_registered_model("my model").tags == {"x": "y"}
    assert client.get_model_version("my model", 1).tags == {"t": "u"}
    with pytest.warns(FutureWarning):
        client.transition_model_version_stage("my model", 1, "Production")
    with pytest.warns(FutureWarning):
        assert [v.version for v in client.get_latest_versions("my model", ["Production"])] == [1]
    assert [m.name for m in client.search_registered_models("name LIKE 'my%'", order_by=["name"])] == ["my model"]
    page = client.search_model_versions("name = 'my model'", max_results=1, order_by=["version_number"])
    rest = client.search_model_versions("name = 'my model'", max_results=1, order_by=["version_number"],
                                        page_token=page.token)
    assert [v.version for v in page + rest] == [1, 2]
    client.delete_registered_model_alias("my model", "champion")
    with pytest.raises(InvalidParameterValue, match="Registered model alias champion not found"):
        client.get_model_version_by_alias("my model", "champion")
    assert client.rename_registered_model("my model", "renamed").name == "renamed"
    client.delete_model_version("renamed", 2)
    with pytest.raises(ResourceDoesNotExist):
        client.get_model_version("renamed", 2)
    client.delete_registered_model("renamed")
    assert client.search_registered_models() == []


def test_refusals_travel_over_http(server, tmp_path):
    client = mltrail.MlflowClient()
    with mltrail.start_run() as run:
        pass
    client.create_registered_model("m")
    for source, run_id in [(str(tmp_path), run.info.run_id), ("file:///etc/passwd", run.info.run_id),
                           (f"runs:/{run.info.run_id}/../x", None), (f"runs:/{run.info.run_id}/%2e%2e/x", None),
                           (f"{run.info.artifact_uri}/%2e%2e/%2e%2e", run.info.run_id)]:
        with pytest.raises(InvalidParameterValue, match="source"):
            client.create_model_version("m", source, run_id=run_id)
    with pytest.raises(InvalidParameterValue):
        client.create_registered_model("a/b")
    with pytest.raises(InvalidParameterValue, match="reserved"):
        client.set_registered_model_alias("m", "latest", 1)
    with pytest.raises(ResourceDoesNotExist):
        client.get_registered_model("missing")


def test_mlflow_json_shapes(server):
    client = mltrail.MlflowClient()
    with mltrail.start_run() as run:
        pass
    client.create_registered_model("shape", tags={"k": "v"})
    client.create_model_version("shape", f"runs:/{run.info.run_id}/model")
    client.set_registered_model_alias("shape", "prod", 1)
    rm = requests.get(f"{server}{API}/registered-models/get", params={"name": "shape"}, timeout=30).json()
    rm = rm["registered_model"]
    assert rm["name"] == "shape" and rm["tags"] == [{"key": "k", "value": "v"}]
    assert rm["aliases"] == [{"alias": "prod", "version": "1"}]
    assert isinstance(rm["creation_timestamp"], int)
    mv = rm["latest_versions"][0]
    assert mv["version"] == "1" and mv["status"] == "READY" and mv["current_stage"] == "None"
    assert mv["aliases"] == ["prod"] and mv["run_id"] == run.info.run_id
    by_alias = requests.get(f"{server}{API}/registered-models/alias", params={"name": "shape", "alias": "prod"},
                            timeout=30).json()
    assert by_alias["model_version"]["version"] == "1"
    latest = requests.get(f"{server}{API}/registered-models/get-latest-versions",
                          params=[("name", "shape"), ("stages", "None")], timeout=30).json()
    assert [v["version"] for v in latest["model_versions"]] == ["1"]
    gone = requests.delete(f"{server}{API}/registered-models/delete", json={"name": "nope"}, timeout=30)
    assert gone.status_code == 404 and gone.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    bad = requests.post(f"{server}{API}/model-versions/create", json={"name": "shape", "source": "/etc"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.tf
def test_keras_model_through_the_server(server):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input([4]), keras.layers.Dense(2)])
    x = np.random.default_rng(0).random((3, 4)).astype(np.float32)
    with mltrail.start_run():
        info = mltrail.tensorflow.log_model(model, name="model", registered_model_name="served")
    assert info.registered_model_version == 1
    mltrail.MlflowClient().set_registered_model_alias("served", "champion", 1)
    loaded = mltrail.pyfunc.load_model("models:/served@champion")
    np.testing.assert_allclose(np.asarray(loaded.predict(x)), model.predict(x, verbose=0), rtol=1e-5)
