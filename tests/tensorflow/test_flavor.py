"""The TensorFlow/Keras flavor: three formats, pyfunc, signatures and logged models, with real tiny models."""

from __future__ import annotations

import importlib
import json
import os
import re
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

import mltrail
from mltrail import Client, pyfunc
from mltrail.entities import LoggedModelOutput
from mltrail.errors import InvalidParameterValue
from mltrail.models import Model, ModelSignature
from mltrail.models.environment import installed_version
from mltrail.types import Schema, TensorSpec

pytestmark = pytest.mark.tf

FORMATS = ("keras", "h5", "tf")
KINDS = ("sequential", "two_inputs", "subclassed", "custom_layer")
# Keras' HDF5 format cannot rebuild subclassed models (test_h5_refuses_subclassed_models)
CASES = [(f, k) for f in FORMATS for k in KINDS if (f, k) != ("h5", "subclassed")]


@pytest.fixture(scope="module")
def fm():
    import flavor_models

    return flavor_models


@pytest.fixture(scope="module")
def models(fm):
    return {kind: build() for kind, build in fm.BUILDERS.items()}


@pytest.fixture(scope="module")
def saved(fm, models, tmp_path_factory):
    import mltrail.tensorflow as mtf

    root = tmp_path_factory.mktemp("saved")
    out = {}
    for fmt, kind in CASES:
        path = root / f"{fmt}-{kind}"
        mtf.save_model(models[kind], str(path), custom_objects=fm.CUSTOM_OBJECTS.get(kind),
                       keras_model_kwargs={"save_format": fmt})
        out[(fmt, kind)] = str(path)
    return out


def _positional(kind, x):
    return [x["a"], x["b"]] if kind == "two_inputs" else x


def _expected(models, kind, x):
    return models[kind](_positional(kind, x), training=False).numpy()


@pytest.mark.parametrize(("fmt", "kind"), CASES)
def test_each_format_round_trips(fm, models, saved, fmt, kind):
    import mltrail.tensorflow as mtf

    x = fm.INPUTS[kind]()
    expected = _expected(models, kind, x)
    loaded = mtf.load_model(saved[(fmt, kind)])  # custom objects come back from their recorded references
    if fmt == "tf":
        got = loaded.serve(_positional(kind, x)).numpy()
    else:
        assert type(loaded) is type(models[kind])
        got = loaded(_positional(kind, x), training=False).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
    py = pyfunc.load_model(saved[(fmt, kind)])
    np.testing.assert_allclose(py.predict(x), expected, atol=1e-6)
    assert py.loader_module == "mltrail.tensorflow"


@pytest.mark.parametrize("kind", ["sequential", "two_inputs"])
def test_savedmodel_serves_through_serving_default(fm, models, saved, kind):
    import tensorflow as tf

    x = fm.INPUTS[kind]()
    obj = tf.saved_model.load(os.path.join(saved[("tf", kind)], "data", "model"))
    sig = obj.signatures["serving_default"]
    names = list(sig.structured_input_signature[1])
    feeds = x if kind == "two_inputs" else {names[0]: x}
    out = sig(**{k: tf.constant(v) for k, v in feeds.items()})
    assert list(out) == ["output_0"]
    np.testing.assert_allclose(out["output_0"].numpy(), _expected(models, kind, x), atol=1e-6)


@pytest.mark.parametrize("fmt", FORMATS)
def test_mlmodel_records_format_versions_and_environment(saved, fmt):
    path = saved[(fmt, "sequential")]
    raw = yaml.safe_load(open(os.path.join(path, "MLmodel")).read())
    conf = raw["flavors"]["tensorflow"]
    assert conf["save_format"] == fmt and conf["model_type"] == "keras"
    assert conf["keras_version"] == installed_version("keras")
    assert conf["tensorflow_version"] == (installed_version("tensorflow") or installed_version("tensorflow-cpu"))
    assert os.path.exists(os.path.join(path, conf["model_file"]))
    py = raw["flavors"]["python_function"]
    assert py["loader_module"] == "mltrail.tensorflow" and py["python_version"].count(".") == 2
    assert py["env"] == {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    assert raw["model_size_bytes"] > 0 and raw["mltrail_version"] == mltrail.__version__
    reqs = open(os.path.join(path, "requirements.txt")).read().splitlines()
    tf_dist = "tensorflow" if installed_version("tensorflow") else "tensorflow-cpu"
    for dist in (tf_dist, "keras", "numpy", "mltrail"):
        assert f"{dist}=={installed_version(dist)}" in reqs
    assert ("h5py" in " ".join(reqs)) == (fmt == "h5")
    assert yaml.safe_load(open(os.path.join(path, "python_env.yaml")).read())["dependencies"] == [
        "-r requirements.txt"]
    subclassed = yaml.safe_load(open(os.path.join(saved[(fmt, "subclassed")], "MLmodel")).read()) if fmt != "h5" \
        else yaml.safe_load(open(os.path.join(saved[(fmt, "custom_layer")], "MLmodel")).read())
    assert list(subclassed["flavors"]["tensorflow"]["custom_objects"].values())[0].startswith("flavor_models:")


def test_h5_refuses_subclassed_models(models, tmp_path):
    import mltrail.tensorflow as mtf

    with pytest.raises(InvalidParameterValue, match="cannot hold the subclassed model 'TinySubclassed'"):
        mtf.save_model(models["subclassed"], str(tmp_path / "m"), keras_model_kwargs={"save_format": "h5"})
    assert not (tmp_path / "m").exists()
    with pytest.raises(InvalidParameterValue, match="Unsupported save_format 'onnx'"):
        mtf.save_model(models["sequential"], str(tmp_path / "m"), keras_model_kwargs={"save_format": "onnx"})
    mtf.save_model(models["sequential"], str(tmp_path / "m"))
    with pytest.raises(mltrail.errors.ResourceAlreadyExists, match="already exists"):
        mtf.save_model(models["sequential"], str(tmp_path / "m"))


def test_missing_custom_object_is_a_clear_error(tmp_path, monkeypatch):
    import keras

    import mltrail.tensorflow as mtf

    (tmp_path / "tripler_mod.py").write_text(
        "import keras\nclass Tripler(keras.layers.Layer):\n    def call(self, x):\n        return x * 3.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("tripler_mod")
    x = keras.Input((2,), name="x")
    model = keras.Model(x, mod.Tripler()(x))
    mtf.save_model(model, str(tmp_path / "m"), custom_objects={"Tripler": mod.Tripler})
    monkeypatch.delitem(sys.modules, "tripler_mod")  # as in a fresh process that never imported it
    with pytest.raises(InvalidParameterValue, match=r"custom objects \['Tripler \(tripler_mod:Tripler\)'\].*Import"):
        mtf.load_model(str(tmp_path / "m"))
    assert "tripler_mod" not in sys.modules  # loading never imports what a model file names
    again = mtf.load_model(str(tmp_path / "m"), custom_objects={"Tripler": mod.Tripler})
    np.testing.assert_allclose(again(np.ones((1, 2), np.float32)).numpy(), [[3.0, 3.0]])


def test_input_example_gives_signature_and_example_files(models, tmp_path):
    import mltrail.tensorflow as mtf

    example = np.random.uniform(size=(2, 4))  # float64, as numpy makes it
    path = str(tmp_path / "m")
    mtf.save_model(models["sequential"], path, input_example=example)
    meta = Model.load(path)
    assert meta.signature.inputs == Schema([TensorSpec(np.dtype("float64"), (-1, 4))])
    assert meta.signature.outputs == Schema([TensorSpec(np.dtype("float32"), (-1, 2))])
    assert meta.saved_input_example_info == {"artifact_path": "input_example.json", "type": "ndarray",
                                             "format": "tf-serving", "serving_input_path": "serving_input_example.json"}
    payload = json.loads(open(os.path.join(path, "input_example.json")).read())
    np.testing.assert_allclose(payload["inputs"], example)
    np.testing.assert_allclose(meta.load_input_example(path), example)
    py = pyfunc.load_model(path)
    expected = _expected(models, "sequential", example.astype(np.float32))
    np.testing.assert_allclose(py.predict(example.astype(np.float32)), expected, atol=1e-6)
    with pytest.raises(InvalidParameterValue, match=r"Shape of input \(1, 10\) does not match expected shape "
                                                    r"\(-1, 4\)"):
        py.predict(np.zeros((1, 10)))


def test_explicit_signature_is_enforced(models, tmp_path):
    import mltrail.tensorflow as mtf

    sig = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 4), "input")]))
    mtf.save_model(models["sequential"], str(tmp_path / "m"), signature=sig)
    py = pyfunc.load_model(str(tmp_path / "m"))
    assert py.metadata.signature == sig
    with pytest.raises(InvalidParameterValue, match=r"Shape of input \(1, 10\) does not match expected shape "
                                                    r"\(-1, 4\) for input 'input'"):
        py.predict(np.zeros((1, 10), np.float32))
    with pytest.raises(InvalidParameterValue, match="dtype of input str does not match expected dtype float32"):
        py.predict(np.full((1, 4), "a"))
    x = np.arange(8).reshape(2, 4)  # ints: cast exactly to float32
    np.testing.assert_allclose(py.predict(x), _expected(models, "sequential", x.astype(np.float32)), atol=1e-6)
    assert py.predict({"input": x.tolist()}).shape == (2, 2)


def test_pyfunc_accepts_lists_tensors_dataframes_and_dicts(fm, models, saved):
    import tensorflow as tf

    x = fm.INPUTS["sequential"]()
    expected = _expected(models, "sequential", x)
    py = pyfunc.load_model(saved[("keras", "sequential")])
    np.testing.assert_allclose(py.predict(x.tolist()), expected, atol=1e-6)
    np.testing.assert_allclose(py.predict(tf.constant(x)), expected, atol=1e-6)
    out = py.predict(pd.DataFrame(x, columns=list("abcd")))
    assert isinstance(out, pd.DataFrame) and out.shape == (5, 2)
    np.testing.assert_allclose(out.to_numpy(), expected, atol=1e-6)
    two = pyfunc.load_model(saved[("keras", "two_inputs")])
    x2 = fm.INPUTS["two_inputs"]()
    np.testing.assert_allclose(two.predict([x2["a"], x2["b"]]), _expected(models, "two_inputs", x2), atol=1e-6)
    with pytest.raises(InvalidParameterValue, match=r"Missing input\(s\) \['b'\]"):
        two.predict({"a": x2["a"]})
    assert two.get_raw_model() is two.unwrap_python_model()
    assert two.metadata.flavors["tensorflow"]["input_names"] == ["a", "b"]


@pytest.mark.parametrize("fmt", ["keras", "tf"])
def test_multi_output_models_return_a_dict(fm, tmp_path, fmt):
    import mltrail.tensorflow as mtf

    model = fm.two_outputs()
    mtf.save_model(model, str(tmp_path / "m"), keras_model_kwargs={"save_format": fmt})
    x = np.ones((3, 4), np.float32)
    out = pyfunc.load_model(str(tmp_path / "m")).predict(x)
    assert sorted(out) == ["y1", "y2"] and out["y1"].shape == (3, 2) and out["y2"].shape == (3, 1)
    y1, y2 = model(x)
    np.testing.assert_allclose(out["y1"], y1.numpy(), atol=1e-6)
    np.testing.assert_allclose(out["y2"], y2.numpy(), atol=1e-6)


def test_predict_compiles_once_for_every_batch_size(fm, saved):
    py = pyfunc.load_model(saved[("keras", "sequential")])
    for n in (1, 2, 7, 1):
        assert py.predict(np.zeros((n, 4), np.float32)).shape == (n, 2)
    assert py._model_impl._fn.experimental_get_tracing_count() == 1
    sub = pyfunc.load_model(saved[("keras", "subclassed")])  # no symbolic inputs, no signature
    for n in (1, 2, 3, 4, 5):
        sub.predict(np.zeros((n, 4), np.float32))
    assert sub._model_impl._fn.experimental_get_tracing_count() <= 2


def test_plain_tf_module_is_saved_as_a_savedmodel(tmp_path):
    import mltrail.tensorflow as mtf
    import tensorflow as tf

    class Affine(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable([[2.0], [3.0]])

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def __call__(self, x):
            return tf.matmul(x, self.w)

    module = Affine()
    mtf.save_model(module, str(tmp_path / "m"), saved_model_kwargs={"signatures": module.__call__})
    meta = Model.load(str(tmp_path / "m"))
    assert meta.flavors["tensorflow"]["model_type"] == "tf2-module"
    assert meta.flavors["tensorflow"]["save_format"] == "tf"
    out = pyfunc.load_model(str(tmp_path / "m")).predict(np.array([[1.0, 1.0]]))
    np.testing.assert_allclose(out, [[5.0]])


def test_log_model_in_a_run(fm, models, tracking):
    import mltrail.tensorflow as mtf

    x = fm.INPUTS["sequential"]()
    with mltrail.start_run() as run:
        mltrail.log_param("lr", 0.1)
        info = mtf.log_model(models["sequential"], name="model", input_example=x[:2], params={"units": 3},
                             tags={"team": "a"}, step=3, metadata={"owner": "me"})
    rid = run.info.run_id
    assert re.fullmatch(r"models:/m-[0-9a-f]{32}", info.model_uri)
    assert info.model_uri == f"models:/{info.model_id}" and info.run_id == rid
    assert info.flavors["tensorflow"]["save_format"] == "keras" and info.signature is not None
    assert info.saved_input_example_info["type"] == "ndarray" and info.metadata == {"owner": "me"}
    assert info.utc_time_created and info.name == "model"
    logged = mltrail.get_logged_model(info.model_id)
    assert logged.status == "READY" and logged.source_run_id == rid and logged.name == "model"
    assert logged.params == {"lr": "0.1", "units": "3"} and logged.tags["team"] == "a"
    assert info.artifact_path == logged.artifact_location
    assert mltrail.get_run(rid).outputs.model_outputs == [LoggedModelOutput(info.model_id, 3)]
    meta = Model.load(info.model_uri)
    assert (meta.model_id, meta.run_id, meta.artifact_path) == (info.model_id, rid, logged.artifact_location)
    expected = _expected(models, "sequential", x)
    for uri in (info.model_uri, f"runs:/{rid}/model"):
        np.testing.assert_allclose(mtf.load_model(uri)(x).numpy(), expected, atol=1e-6)
        py = pyfunc.load_model(uri)
        assert py.model_id == info.model_id
        np.testing.assert_allclose(py.predict(x), expected, atol=1e-6)
    found = Client().search_logged_models([run.info.experiment_id])
    assert [m.model_id for m in found] == [info.model_id]


def test_log_model_outside_a_run(models, tracking):
    import mltrail.tensorflow as mtf

    info = mtf.log_model(models["sequential"], name="free", keras_model_kwargs={"save_format": "h5"})
    assert info.run_id is None and info.flavors["tensorflow"]["save_format"] == "h5"
    logged = mltrail.get_logged_model(info.model_id)
    assert logged.source_run_id is None and logged.status == "READY"
    assert mtf.load_model(info.model_uri) is not None


def test_artifact_path_still_works_with_a_deprecation_warning(models, tracking):
    import mltrail.tensorflow as mtf

    with mltrail.start_run() as run:
        with pytest.warns(FutureWarning, match="artifact_path"):
            info = mtf.log_model(models["sequential"], artifact_path="keras_model")
        with pytest.raises(InvalidParameterValue, match="Both `name`"):
            mtf.log_model(models["sequential"], name="a", artifact_path="b")
    assert mltrail.get_logged_model(info.model_id).name == "keras_model"
    assert mtf.load_model(f"runs:/{run.info.run_id}/keras_model") is not None


def test_failed_save_marks_the_logged_model_failed(tracking):
    import mltrail.tensorflow as mtf

    with mltrail.start_run() as run:
        with pytest.raises(InvalidParameterValue, match="expected a Keras model or a tf.Module"):
            mtf.log_model("not a model", name="broken")
    (logged,) = Client().search_logged_models([run.info.experiment_id])
    assert logged.status == "FAILED" and logged.name == "broken"


def test_models_in_mlflows_own_layout_load(fm, models, saved, tmp_path):
    import shutil

    import mltrail.tensorflow as mtf

    path = tmp_path / "mlflow-model"
    shutil.copytree(saved[("keras", "sequential")], path)
    raw = yaml.safe_load((path / "MLmodel").read_text())
    raw.pop("mltrail_version")
    raw["mlflow_version"] = "2.19.0"
    raw["flavors"] = {
        "python_function": {"loader_module": "mlflow.tensorflow", "data": "data", "env": {"conda": "conda.yaml"},
                            "python_version": raw["flavors"]["python_function"]["python_version"]},
        "tensorflow": {"code": None, "data": "data", "keras_version": "3.6.0", "model_type": "keras",
                       "save_format": "keras"},
    }
    (path / "MLmodel").write_text(yaml.safe_dump(raw))
    x = fm.INPUTS["sequential"]()
    expected = _expected(models, "sequential", x)
    np.testing.assert_allclose(mtf.load_model(str(path))(x).numpy(), expected, atol=1e-6)
    py = pyfunc.load_model(str(path))
    assert py.loader_module == "mlflow.tensorflow" and py.metadata.mltrail_version is None
    np.testing.assert_allclose(py.predict(x), expected, atol=1e-6)


def test_compiled_h5_models_load(fm, tmp_path):
    import warnings

    import mltrail.tensorflow as mtf
    from mltrail.errors import MltrailWarning

    model = fm.sequential()
    model.compile(optimizer="adam", loss="mse")
    mtf.save_model(model, str(tmp_path / "m"), keras_model_kwargs={"save_format": "h5"})
    x = fm.INPUTS["sequential"]()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MltrailWarning)
        loaded = mtf.load_model(str(tmp_path / "m"))
    # Keras 3 may fail to rebuild an HDF5 training config; the model then comes back uncompiled, with a warning
    ours = [w for w in caught if issubclass(w.category, MltrailWarning)]
    assert all("model.compile" in str(w.message) for w in ours)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)
    np.testing.assert_allclose(pyfunc.load_model(str(tmp_path / "m")).predict(x), model(x).numpy(), atol=1e-6)


def test_registered_model_uris(fm, models, tracking):
    import mltrail.tensorflow as mtf

    with mltrail.start_run():
        first = mtf.log_model(models["sequential"], name="model", registered_model_name="clf")
        second = mtf.log_model(models["two_inputs"], name="model", registered_model_name="clf")
    assert (first.registered_model_version, second.registered_model_version) == (1, 2)
    Client().set_registered_model_alias("clf", "champion", 1)
    x = fm.INPUTS["sequential"]()
    expected = _expected(models, "sequential", x)
    for uri in ("models:/clf/1", "models:/clf@champion"):
        np.testing.assert_allclose(pyfunc.load_model(uri).predict(x), expected, atol=1e-6)
        assert Model.load(uri).model_id == first.model_id
    assert pyfunc.load_model("models:/clf/latest").model_id == second.model_id
    x2 = fm.INPUTS["two_inputs"]()
    np.testing.assert_allclose(mtf.load_model("models:/clf/2")([x2["a"], x2["b"]]).numpy(),
                               _expected(models, "two_inputs", x2), atol=1e-6)
