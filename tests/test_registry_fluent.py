"""The registry through Client and the module-level API; models:/ registry URIs load tiny Keras models."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

import mltrail
from mltrail import _registry_fluent
from mltrail.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist


@pytest.fixture(autouse=True)
def _no_registry_uri():
    yield
    _registry_fluent.set_registry_uri(None)


def _logged_model(client, run_id, name="model"):
    """A logged model with a (non-Keras) MLmodel file, linked to the run as an output."""
    from mltrail.entities import LoggedModelOutput

    exp = client.get_run(run_id).info.experiment_id
    lm = client.create_logged_model(exp, name=name, source_run_id=run_id)
    client.log_outputs(run_id, [LoggedModelOutput(lm.model_id, 0)])
    return lm


def test_register_model_from_a_logged_model(tracking):
    client = mltrail.MlflowClient()
    with mltrail.start_run() as run:
        lm = _logged_model(client, run.info.run_id)
    mv = mltrail.register_model(f"models:/{lm.model_id}", "clf", tags={"stage": "dev"})
    assert (mv.name, mv.version, mv.model_id, mv.run_id, mv.tags) == ("clf", 1, lm.model_id, run.info.run_id,
                                                                      {"stage": "dev"})
    assert mltrail.register_model(f"models:/{lm.model_id}", "clf").version == 2  # the model exists: a new version
    recorded = json.loads(client.get_logged_model(lm.model_id).tags["mlflow.modelVersions"])
    assert recorded == [{"name": "clf", "version": "1"}, {"name": "clf", "version": "2"}]
    assert client.get_model_version_download_uri("clf", 1) == lm.artifact_location
    # runs:/<run>/<name>: the run's logged model of that name (MLflow 3)
    mv3 = mltrail.register_model(f"runs:/{run.info.run_id}/model", "clf")
    assert mv3.model_id == lm.model_id and mv3.source == f"models:/{lm.model_id}"
    # an existing version, by number or alias, registers the same files under another name
    client.set_registered_model_alias("clf", "champion", 3)
    assert mltrail.register_model("models:/clf@champion", "copy").model_id == lm.model_id
    assert client.copy_model_version("models:/clf/1", "copy").version == 2
    with pytest.raises(ResourceDoesNotExist):
        mltrail.register_model(f"runs:/{run.info.run_id}/no-such-model", "clf")


def test_register_model_from_run_artifacts(tracking, tmp_path):
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    with mltrail.start_run() as run:
        mltrail.log_artifacts(str(model_dir), "legacy")
    mv = mltrail.register_model(f"runs:/{run.info.run_id}/legacy", "legacy-model")
    assert mv.run_id == run.info.run_id and mv.model_id is None
    assert mv.source == f"{run.info.artifact_uri}/legacy"
    uri = mltrail.MlflowClient().get_model_version_download_uri("legacy-model", 1)
    assert os.path.isfile(os.path.join(uri, "MLmodel"))


def test_client_registry_round_trip(tracking):
    client = mltrail.MlflowClient()
    rm = client.create_registered_model("reg", tags={"k": 1}, description="d")
    assert rm.tags == {"k": "1"}
    with pytest.raises(ResourceAlreadyExists):
        client.create_registered_model("reg")
    with mltrail.start_run() as run:
        pass
    for _ in range(2):
        client.create_model_version("reg", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id,
                                    description="v", tags={"t": "x"})
    assert client.update_registered_model("reg", description="new").description == "new"
    assert client.update_model_version("reg", "1", description="first").description == "first"
    client.set_registered_model_tag("reg", "a", "b")
    client.delete_registered_model_tag("reg", "k")
    assert client.get_registered_model("reg").tags == {"a": "b"}
    client.set_model_version_tag("reg", "2", "t", "y")
    assert client.get_model_version("reg", "2").tags == {"t": "y"}
    client.delete_model_version_tag("reg", "2", "t")
    client.set_registered_model_alias("reg", "prod", "2")
    assert client.get_model_version_by_alias("reg", "prod").version == 2
    client.delete_registered_model_alias("reg", "prod")
    assert client.rename_registered_model("reg", "reg2").name == "reg2"
    assert [m.name for m in client.search_registered_models("name LIKE 'reg%'")] == ["reg2"]
    assert len(client.search_model_versions("name = 'reg2'")) == 2
    assert [m.name for m in mltrail.search_registered_models(filter_string="name = 'reg2'")] == ["reg2"]
    assert [mv.version for mv in mltrail.search_model_versions(filter_string="name = 'reg2'",
                                                               order_by=["version_number"])] == [1, 2]
    assert len(mltrail.search_model_versions(max_results=1)) == 1
    mltrail.set_model_version_tag("reg2", "1", "fluent", "yes")
    assert client.get_model_version("reg2", 1).tags["fluent"] == "yes"
    client.delete_model_version("reg2", "2")
    client.delete_registered_model("reg2")
    assert client.search_registered_models() == []


def test_stage_methods_warn_like_mlflow(tracking):
    client = mltrail.MlflowClient()
    client.create_registered_model("staged")
    with mltrail.start_run() as run:
        pass
    client.create_model_version("staged", f"runs:/{run.info.run_id}/model")
    with pytest.warns(FutureWarning, match="stages"):
        mv = client.transition_model_version_stage("staged", "1", "Production")
    assert mv.current_stage == "Production"
    with pytest.warns(FutureWarning, match="stages"):
        assert [v.version for v in client.get_latest_versions("staged", stages=["Production"])] == [1]
    with pytest.warns(FutureWarning):
        client.set_model_version_tag("staged", key="k", value="v", stage="Production")
    assert client.get_model_version("staged", 1).tags == {"k": "v"}
    with pytest.raises(InvalidParameterValue):
        client.set_model_version_tag("staged", key="k", value="v")


def test_registry_uri(tracking, tmp_path):
    other = f"sqlite:///{tmp_path}/registry.db"
    assert mltrail.get_registry_uri() == tracking
    mltrail.set_registry_uri(other)
    assert mltrail.get_registry_uri() == other
    mltrail.MlflowClient(registry_uri=other).create_registered_model("elsewhere")
    try:
        assert [m.name for m in mltrail.search_registered_models()] == ["elsewhere"]
        # as in MLflow, a client made without a registry URI uses the one set for the process
        assert [m.name for m in mltrail.MlflowClient().search_registered_models()] == ["elsewhere"]
        assert mltrail.MlflowClient(registry_uri=tracking).search_registered_models() == []
    finally:
        mltrail.set_registry_uri(None)


@pytest.mark.tf
def test_log_model_registers_and_registry_uris_load(tracking):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input([4]), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)])
    x = np.random.default_rng(0).random((5, 4)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    with mltrail.start_run():
        info = mltrail.tensorflow.log_model(model, name="model", registered_model_name="tiny")
        mltrail.tensorflow.log_model(model, name="model2", registered_model_name="tiny")
    assert info.registered_model_version == 1
    client = mltrail.MlflowClient()
    client.set_registered_model_alias("tiny", "champion", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # resolving models:/name/latest must not warn
        for uri in ("models:/tiny@champion", "models:/tiny/1", "models:/tiny/latest", "models:/tiny@latest",
                    "models:/ti%6Ey@champion"):  # an encoded name is the same model
            loaded = mltrail.pyfunc.load_model(uri)
            np.testing.assert_allclose(np.asarray(loaded.predict(x)), expected, rtol=1e-5)
    keras_model = mltrail.tensorflow.load_model("models:/tiny@champion")
    np.testing.assert_allclose(keras_model.predict(x, verbose=0), expected, rtol=1e-5)
    with pytest.warns(FutureWarning):
        client.transition_model_version_stage("tiny", 2, "Staging")
    staged = mltrail.pyfunc.load_model("models:/tiny/Staging")
    np.testing.assert_allclose(np.asarray(staged.predict(x)), expected, rtol=1e-5)
    with pytest.raises(InvalidParameterValue, match="alias missing not found"):
        mltrail.pyfunc.load_model("models:/tiny@missing")
