"""MLflow 3's `keras` flavor, written and read by `mltrail.keras`, with real tiny Keras models."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

import mltrail
from mltrail import pyfunc
from mltrail.errors import InvalidParameterValue
from mltrail.models import ModelSignature, infer_signature
from mltrail.models.environment import installed_version
from mltrail.types import ColSpec, Schema, TensorSpec

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def km():
    import keras_models

    return keras_models


@pytest.fixture(scope="module")
def mlp(km):
    return km.mlp()


@pytest.fixture(scope="module")
def saved(km, mlp, tmp_path_factory):
    """{kind: directory}: default (.keras file, signature from an example) and exported (SavedModel)."""
    import mltrail.keras as mk

    root = tmp_path_factory.mktemp("keras-flavor")
    x = km.rows(2)
    out = {"default": str(root / "default"), "exported": str(root / "exported")}
    mk.save_model(mlp, out["default"], input_example=x)
    mk.save_model(mlp, out["exported"], save_exported_model=True,
                  signature=infer_signature(x, np.asarray(mlp(x))))
    return out


def _mlmodel(path):
    with open(os.path.join(path, "MLmodel")) as fh:
        return yaml.safe_load(fh)


def test_import_does_not_load_tensorflow_and_keeps_the_autolog_names():
    code = ("import sys, mltrail.keras as mk; "
            "assert callable(mk.autolog) and mk.FLAVOR_NAME == 'keras'; "
            "print(','.join(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
    import mltrail.keras as mk
    import mltrail.tensorflow as mtf
    from mltrail.tensorflow.callback import KerasMlflowCallback

    # MLflow's keras flavor has its own callback (optimizer_* params, metrics linked to a logged model)
    assert mk.MlflowCallback is KerasMlflowCallback and mk.MLflowCallback is KerasMlflowCallback
    assert mk.MltrailCallback is mtf.MltrailCallback and mk.load_checkpoint is mtf.load_checkpoint
    assert mk.MlflowModelCheckpointCallback is mtf.MlflowModelCheckpointCallback
    assert mk.log_model is not mtf.log_model and mtf.FLAVOR_NAME == "tensorflow"
    assert mtf.MLflowCallback is mtf.MlflowCallback and "MLflowCallback" in dir(mk)
    import keras

    @keras.saving.register_keras_serializable(package="mltrail_test")
    def twice(x):
        return 2 * x

    assert mtf.get_global_custom_objects()["mltrail_test>twice"] is twice
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mk.nope  # noqa: B018


@pytest.mark.parametrize("kind", ["default", "exported"])
def test_layout_and_mlmodel_are_mlflows(saved, kind):
    import keras

    path = saved[kind]
    raw = _mlmodel(path)
    assert raw["flavors"]["keras"] == {"data": "data", "keras_version": keras.__version__,
                                       "keras_backend": keras.backend.backend(),
                                       "save_exported_model": kind == "exported"}
    py = raw["flavors"]["python_function"]
    assert py["loader_module"] == "mlflow.keras" and "data" not in py
    assert py["env"] == {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    with open(os.path.join(path, "data", "keras_module.txt")) as fh:
        assert fh.read() == "keras"
    model_file = os.path.join(path, "data", "model" if kind == "exported" else "model.keras")
    assert os.path.isfile(os.path.join(model_file, "saved_model.pb") if kind == "exported" else model_file)
    assert raw["signature"]["inputs"] == '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]'
    assert raw["model_size_bytes"] > 0
    with open(os.path.join(path, "requirements.txt")) as fh:
        reqs = fh.read().splitlines()
    tf_dist = "tensorflow" if installed_version("tensorflow") else "tensorflow-cpu"
    assert f"keras=={keras.__version__}" in reqs and f"{tf_dist}=={installed_version(tf_dist)}" in reqs


def test_round_trip_and_pyfunc(km, mlp, saved):
    import keras

    import mltrail.keras as mk
    import mltrail.tensorflow as mtf

    x = km.rows(5, seed=1)
    expected = np.asarray(mlp(x))
    loaded = mk.load_model(saved["default"])
    assert isinstance(loaded, keras.Model)
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, atol=1e-6)
    exported = mk.load_model(saved["exported"])
    assert not isinstance(exported, keras.Model)
    np.testing.assert_allclose(np.asarray(exported.serve(x)), expected, atol=1e-6)
    for kind in ("default", "exported"):
        model = pyfunc.load_model(saved[kind])
        assert model.loader_module == "mlflow.keras"
        np.testing.assert_allclose(model.predict(x), expected, atol=1e-6)
        # the tensorflow flavor's loader reads the keras flavor too (one reader for `models export`)
        assert mtf.load_model(saved[kind]) is not None
    with pytest.raises(InvalidParameterValue, match=r"shape"):
        pyfunc.load_model(saved["default"]).predict(km.rows(2, width=3))


def test_exported_model_without_signature_uses_the_models_inputs(km, mlp, tmp_path):
    import pandas as pd

    import mltrail.keras as mk

    model = km.two_inputs()
    mk.save_model(model, str(tmp_path / "m"), save_exported_model=True)
    a, b = km.rows(2, 4, seed=2), km.rows(2, 3, seed=3)
    loaded = mk.load_model(str(tmp_path / "m"))  # kept: the endpoint needs the object's variables alive
    served = loaded.serve([a, b])
    np.testing.assert_allclose(np.asarray(served), np.asarray(model([a, b])), atol=1e-6)
    # without a signature a DataFrame reaches the model as is, and the answer is a DataFrame (MLflow's wrapper)
    mk.save_model(mlp, str(tmp_path / "one"), save_exported_model=True)
    frame = pd.DataFrame(km.rows(3, seed=3), index=[4, 5, 6])
    out = pyfunc.load_model(str(tmp_path / "one")).predict(frame)
    assert isinstance(out, pd.DataFrame) and list(out.index) == [4, 5, 6]
    np.testing.assert_allclose(out.to_numpy(), np.asarray(mlp(frame.to_numpy())), atol=1e-6)
    with pytest.raises(InvalidParameterValue, match=r"^`signature` cannot be None when `save_exported_model=True`"):
        mk.save_model(km.Unbuilt(), str(tmp_path / "u"), save_exported_model=True)
    assert not (tmp_path / "u").exists()
    # a subclassed model (built by a call, without symbolic inputs): the endpoint's shapes come from the signature
    subclassed = km.Unbuilt()
    expected = np.asarray(subclassed(a))
    mk.save_model(subclassed, str(tmp_path / "u"), save_exported_model=True,
                  signature=ModelSignature(Schema([TensorSpec(np.dtype("float32"), (-1, 4))])))
    np.testing.assert_allclose(pyfunc.load_model(str(tmp_path / "u")).predict(a), expected, atol=1e-6)


@pytest.mark.parametrize(("signature", "message"), [
    (ModelSignature(Schema([ColSpec("double", "a")])), "must be of type TensorSpec; received"),
    (ModelSignature(Schema([TensorSpec(np.dtype("float32"), (2, 4))])),
     r"first dimension should be -1.*received shape \(2, 4\)"),
])
def test_signature_rules_are_mlflows(mlp, tmp_path, signature, message):
    import mltrail.keras as mk

    with pytest.raises(InvalidParameterValue, match=message):
        mk.save_model(mlp, str(tmp_path / "m"), signature=signature)
    assert not (tmp_path / "m").exists()


def test_save_and_load_kwargs_reach_keras(km, tmp_path):
    import mltrail.keras as mk

    model = km.mlp()
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="no_such_option"):
        mk.save_model(model, str(tmp_path / "bad"), save_model_kwargs={"no_such_option": 1})
    assert not (tmp_path / "bad").exists()
    mk.save_model(model, str(tmp_path / "m"))
    assert mk.load_model(str(tmp_path / "m")).optimizer is not None
    assert not mk.load_model(str(tmp_path / "m"), load_model_kwargs={"compile": False}).compiled


def test_custom_objects_are_recorded_by_reference(km, tmp_path, monkeypatch):
    import mltrail.keras as mk

    model = km.with_custom_layer()
    mk.save_model(model, str(tmp_path / "m"), custom_objects={"Halver": km.Halver})
    assert _mlmodel(str(tmp_path / "m"))["flavors"]["keras"]["custom_objects"] == {"Halver": "keras_models:Halver"}
    x = km.rows(2, seed=4)
    np.testing.assert_allclose(np.asarray(mk.load_model(str(tmp_path / "m"))(x)), np.asarray(model(x)), atol=1e-6)
    monkeypatch.delitem(sys.modules, "keras_models")  # as in a fresh process that never imported it
    with pytest.raises(InvalidParameterValue, match=r"custom objects \['Halver \(keras_models:Halver\)'\]"):
        mk.load_model(str(tmp_path / "m"))
    assert "keras_models" not in sys.modules  # loading never imports what a model file names
    again = mk.load_model(str(tmp_path / "m"), custom_objects={"Halver": km.Halver})
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-6)


def test_refuses_what_is_not_a_keras_model(tmp_path):
    import mltrail.keras as mk

    with pytest.raises(InvalidParameterValue, match="Cannot save a str with mltrail.keras: expected a keras.Model"):
        mk.save_model("model", str(tmp_path / "m"))


def test_default_requirements_and_conda_env():
    import keras

    import mltrail.keras as mk

    reqs = mk.get_default_pip_requirements()
    assert f"keras=={keras.__version__}" in reqs
    assert any(r.startswith(("tensorflow==", "tensorflow-cpu==")) for r in reqs)
    conda = mk.get_default_conda_env()
    assert conda["dependencies"][-1] == {"pip": reqs}


def test_log_model_in_a_run(km, mlp, tracking):
    import mltrail.keras as mk

    x = km.rows(3, seed=5)
    with mltrail.start_run() as run:
        info = mk.log_model(mlp, name="net", input_example=x[:2], registered_model_name="kerasnet")
    assert info.flavors["keras"]["save_exported_model"] is False and info.run_id == run.info.run_id
    assert info.registered_model_version == 1
    for uri in (info.model_uri, f"runs:/{run.info.run_id}/net", "models:/kerasnet/1"):
        np.testing.assert_allclose(np.asarray(mk.load_model(uri)(x)), np.asarray(mlp(x)), atol=1e-6)
        np.testing.assert_allclose(pyfunc.load_model(uri).predict(x), np.asarray(mlp(x)), atol=1e-6)
