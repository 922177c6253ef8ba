"""Models helpers: Model.log with a flavor, Model.load, get_model_info, set_signature and
convert_input_example_to_serving_input, against the embedded store and a real `mltrail server`.

The flavor here is a real, tiny one (a text file and its MLmodel entry): Model.log only needs a
module-like object with `save_model`, which is what MLflow asks of a flavor too.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mltrail
from mltrail.models import (
    Model,
    ModelSignature,
    convert_input_example_to_serving_input,
    get_model_info,
    infer_signature,
    set_signature,
)
from mltrail.models.input_example import save_input_example

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from server_fixture import start_server  # noqa: E402


class TextFlavor:
    """A flavor that saves a string: enough to exercise everything around `save_model`."""

    @staticmethod
    def save_model(path: str, mlflow_model: Model, text: str = "", signature: ModelSignature | None = None,
                   input_example=None) -> None:
        os.makedirs(path)
        Path(path, "data.txt").write_text(text)
        mlflow_model.add_flavor("text_flavor", data="data.txt")
        mlflow_model.signature = signature
        if input_example is not None:
            mlflow_model.saved_input_example_info = save_input_example(path, input_example)
        mlflow_model.save(os.path.join(path, "MLmodel"))


@pytest.fixture(params=["sqlite", "server"])
def backend(request, tmp_path) -> str:
    uri = f"sqlite:///{tmp_path}/mltrail.db" if request.param == "sqlite" else start_server(request, tmp_path)
    mltrail.set_tracking_uri(uri)
    return uri


def _log(**kw):
    x = np.zeros((2, 3), dtype=np.float32)
    return Model.log(flavor=TextFlavor, name="texty", text="hello", signature=infer_signature(x, x[:, :1]),
                     input_example=x, **kw)


def test_model_log_and_get_model_info_fill_every_field(backend):
    with mltrail.start_run() as run:
        mltrail.log_param("lr", "0.1")
        info = _log(metadata={"k": "v"}, params={"extra": 1}, tags={"team": "a"}, prompts=["prompts:/p/1"])
    got = get_model_info(info.model_uri)
    assert got.model_uri == info.model_uri == f"models:/{info.model_id}"
    assert got.model_id == info.model_id and got.model_uuid == info.model_id
    assert got.run_id == run.info.run_id and got.name == "texty"
    assert got.artifact_path and got.flavors["text_flavor"] == {"data": "data.txt"}
    assert got.signature == info.signature and got.signature_dict == info.signature.to_dict()
    assert got.saved_input_example_info["type"] == "ndarray"
    assert got.utc_time_created and got.mlflow_version == mltrail.__version__
    assert got.metadata == {"k": "v"} and got.prompts == ["prompts:/p/1"] and got.env_vars is None
    assert got.params == {"lr": "0.1", "extra": "1"} and got.tags["team"] == "a"
    assert got.metrics == []  # from the logged model (None without one); none were logged against it
    assert got.creation_timestamp and got.registered_model_version is None
    # the run's model by name, and a local copy of the files, give the same model
    assert get_model_info(f"runs:/{run.info.run_id}/texty").model_id == info.model_id
    local = mltrail.artifacts.download_artifacts(info.model_uri)
    assert get_model_info(local).model_id == info.model_id


def test_model_log_outside_a_run_with_run_id_and_registration(backend):
    run = mltrail.MlflowClient().create_run(mltrail.get_experiment_by_name("Default").experiment_id)
    info = _log(run_id=run.info.run_id, registered_model_name="reg")
    assert mltrail.active_run() is None
    assert info.run_id == run.info.run_id and info.registered_model_version == 1
    outputs = mltrail.get_run(run.info.run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [info.model_id]
    assert get_model_info("models:/reg/1").registered_model_version == 1
    with pytest.raises(mltrail.MlflowException, match="`flavor`, a module with a `save_model` function"):
        Model.log(name="x", flavor=object())


def test_model_load_forms(backend, tmp_path):
    with mltrail.start_run():
        info = _log()
    local = mltrail.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "m"))
    from_dir = Model.load(local)
    assert from_dir.flavors["text_flavor"] == {"data": "data.txt"}
    assert Model.load(os.path.join(local, "MLmodel")) == from_dir
    assert Model.load(info.model_uri).model_id == info.model_id
    loaded_example = from_dir.load_input_example(local)
    assert loaded_example.shape == (2, 3)
    with pytest.raises(mltrail.MlflowException, match='Could not find an "MLmodel" configuration file at'):
        Model.load(str(tmp_path / "nowhere"))


def test_set_signature_rewrites_the_stored_mlmodel(backend):
    with mltrail.start_run() as run:
        info = _log()
    new = infer_signature(pd.DataFrame({"a": [1.0], "b": ["x"]}), np.array([1]))
    set_signature(info.model_uri, new)
    assert get_model_info(info.model_uri).signature == new
    newer = infer_signature(np.zeros((1, 5)))
    set_signature(f"runs:/{run.info.run_id}/texty", newer)
    assert get_model_info(info.model_uri).signature == newer
    mltrail.register_model(info.model_uri, "named")
    with pytest.raises(mltrail.MlflowException,
                       match=r"Failed to set signature on 'models:/named/1'. Model URIs with the"):
        set_signature("models:/named/1", new)
    with pytest.raises(mltrail.MlflowException, match="must be a ModelSignature object"):
        set_signature(info.model_uri, {"inputs": "[]"})
    with pytest.raises(mltrail.MlflowException, match='Failed to download an "MLmodel" model file'):
        set_signature(f"runs:/{run.info.run_id}/not-a-model", new)


def test_set_signature_on_a_local_model(tmp_path):
    path = str(tmp_path / "m")
    TextFlavor.save_model(path, Model(), text="x")
    sig = infer_signature(np.zeros((1, 2)))
    set_signature(path, sig)
    assert Model.load(path).signature == sig
    assert Path(path, "data.txt").read_text() == "x"


# The expected strings are what MLflow 3.17.2's convert_input_example_to_serving_input returned for the same input.
def test_convert_input_example_to_serving_input_matches_mlflow():
    assert convert_input_example_to_serving_input(None) is None
    assert convert_input_example_to_serving_input(np.array([[1.0, 2.0]])) == (
        '{\n  "inputs": [\n    [\n      1.0,\n      2.0\n    ]\n  ]\n}')
    assert convert_input_example_to_serving_input(pd.DataFrame({"a": [1], "b": ["x"]})) == (
        '{\n  "dataframe_split": {\n    "columns": [\n      "a",\n      "b"\n    ],\n    "data": [\n      [\n'
        '        1,\n        "x"\n      ]\n    ]\n  }\n}')
    assert json.loads(convert_input_example_to_serving_input({"x": np.array([1, 2])})) == {"inputs": {"x": [1, 2]}}


def test_artifacts_api_on_logged_models_gives_mlflows_paths(backend, tmp_path):
    with mltrail.start_run() as run:
        info = _log(registered_model_name="reg")
    A = mltrail.artifacts
    files = {"MLmodel", "data.txt", "input_example.json", "serving_input_example.json"}
    dst = str(tmp_path / "a")
    # models:/ URIs: the model's files straight into dst_path
    assert A.download_artifacts(info.model_uri, dst_path=dst) == dst and set(os.listdir(dst)) == files
    dst = str(tmp_path / "b")
    assert A.download_artifacts("models:/reg/1", dst_path=dst) == dst and set(os.listdir(dst)) == files
    # runs:/<run_id>/<model name>: under the name
    dst = str(tmp_path / "c")
    got = A.download_artifacts(f"runs:/{run.info.run_id}/texty", dst_path=dst)
    assert got == os.path.join(dst, "texty") and set(os.listdir(got)) == files
    got = A.download_artifacts(run_id=run.info.run_id, artifact_path="texty/data.txt")
    assert os.path.basename(got) == "data.txt" and Path(got).read_text() == "hello"
    assert {f.path for f in A.list_artifacts(info.model_uri)} == files
    assert {f.path for f in A.list_artifacts("models:/reg/1")} == files
    with pytest.raises(mltrail.MlflowException, match="the run logged no model named 'nothing'"):
        A.download_artifacts(f"runs:/{run.info.run_id}/nothing")


def test_input_example_with_params_is_written_as_mlflow_writes_it(tmp_path):
    # MLflow 3.17.2 wrote exactly these files for the same example
    example = (pd.DataFrame({"a": [1.0]}), {"scale": 1})
    assert json.loads(convert_input_example_to_serving_input(example)) == {
        "dataframe_split": {"columns": ["a"], "data": [[1.0]]}, "params": {"scale": 1}}
    path = str(tmp_path / "m")
    TextFlavor.save_model(path, Model(), input_example=example)
    model = Model.load(path)
    assert model.saved_input_example_info["params"] == "true"
    assert json.loads(Path(path, "input_example.json").read_text()) == {
        "inputs": {"columns": ["a"], "data": [[1.0]]}, "params": {"scale": 1}}
    assert model.load_input_example(path).to_dict("list") == {"a": [1.0]}
    assert model.load_input_example_params(path) == {"scale": 1}
    path2 = str(tmp_path / "m2")
    TextFlavor.save_model(path2, Model(), input_example=(np.array([1, 2]), {"k": "v"}))
    assert json.loads(Path(path2, "input_example.json").read_text()) == {"inputs": [1, 2], "params": {"k": "v"}}
    assert Model.load(path2).load_input_example(path2).tolist() == [1, 2]


MODEL_CODE = '''
import mltrail


class Summer(mltrail.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input.sum(axis=1)


mltrail.models.set_model(Summer())
'''


def test_validate_serving_input_predicts_like_the_scoring_server(backend, tmp_path):
    from mltrail.models import validate_serving_input

    code = tmp_path / "summer.py"
    code.write_text(MODEL_CODE)
    example = pd.DataFrame({"a": [1.0], "b": [2.0]})
    with mltrail.start_run():
        info = mltrail.pyfunc.log_model(name="summer", python_model=str(code), input_example=example)
    body = convert_input_example_to_serving_input(example)
    assert validate_serving_input(info.model_uri, body).tolist() == [3.0]
    assert validate_serving_input(info.model_uri, {"dataframe_records": [{"a": 1.0, "b": 5.0}]}).tolist() == [6.0]
    with pytest.raises(mltrail.MlflowException, match=r"Model is missing inputs \['b'\]"):
        validate_serving_input(info.model_uri, {"dataframe_records": [{"a": 1.0}]})
    with pytest.raises(mltrail.MlflowException, match="must hold exactly one of the fields"):
        validate_serving_input(info.model_uri, {"data": [[1.0, 2.0]]})
