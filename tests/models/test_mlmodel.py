"""The MLmodel file, input examples and environment files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.models import Model, ModelSignature, get_model_info
from mltrail.models.environment import (
    installed_version,
    requirement_name,
    resolve_requirements,
    write_environment,
)
from mltrail.models.input_example import load_input_example, save_input_example
from mltrail.types import Schema, TensorSpec


def _model() -> Model:
    sig = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float32"), (-1, 4), "x")]))
    m = Model(artifact_path="file:///store/models/m-1/artifacts", run_id="r1", signature=sig,
              model_id="m-0123456789abcdef0123456789abcdef", metadata={"owner": "me"}, model_size_bytes=10)
    m.add_flavor("python_function", loader_module="mltrail.tensorflow", python_version="3.11.7")
    return m


def test_mlmodel_yaml_round_trip(tmp_path):
    m = _model()
    m.save(str(tmp_path / "MLmodel"))
    raw = yaml.safe_load((tmp_path / "MLmodel").read_text())
    assert raw["signature"]["inputs"] == ('[{"type": "tensor", "tensor-spec": {"dtype": "float32", '
                                          '"shape": [-1, 4]}, "name": "x"}]')
    assert raw["signature"]["outputs"] is None
    assert raw["model_id"] == m.model_id and raw["run_id"] == "r1" and raw["mltrail_version"]
    assert raw["flavors"]["python_function"]["loader_module"] == "mltrail.tensorflow"
    assert "saved_input_example_info" not in raw
    again = Model.load(str(tmp_path))
    assert again == m
    assert again.get_input_schema() == m.signature.inputs
    assert again.get_output_schema() is None and again.get_params_schema() is None


def test_unknown_keys_survive_and_foreign_files_are_not_claimed(tmp_path):
    (tmp_path / "MLmodel").write_text(yaml.safe_dump({
        "flavors": {"tensorflow": {"save_format": "keras"}}, "mlflow_version": "3.1.0", "run_id": "abc",
        "utc_time_created": "2024-01-01 00:00:00", "model_uuid": "u"}))
    m = Model.load(str(tmp_path / "MLmodel"))
    assert m.mlflow_version == "3.1.0" and m.mltrail_version is None
    assert m.to_dict()["mlflow_version"] == "3.1.0" and "mltrail_version" not in m.to_dict()


def test_model_info(tmp_path):
    m = _model()
    info = m.get_model_info()
    assert info.model_uri == f"models:/{m.model_id}"
    assert info.model_id == m.model_id and info.run_id == "r1" and info.signature == m.signature
    assert info.metadata == {"owner": "me"} and info.mlflow_version == info.mltrail_version
    m.save(str(tmp_path / "MLmodel"))
    # as MLflow: the URI of the model itself (models:/<model_id>), not the path it was read from
    assert get_model_info(str(tmp_path)).model_uri == f"models:/{m.model_id}"


def test_load_errors(tmp_path):
    with pytest.raises(ResourceDoesNotExist, match="No MLmodel file"):
        Model.load(str(tmp_path))
    (tmp_path / "MLmodel").write_text("flavors: [unclosed")
    with pytest.raises(InvalidParameterValue, match="not valid YAML"):
        Model.load(str(tmp_path))


def test_input_examples(tmp_path):
    arr = np.random.uniform(size=[2, 3]).astype(np.float32)
    info = save_input_example(str(tmp_path), arr)
    assert info == {"artifact_path": "input_example.json", "type": "ndarray", "format": "tf-serving",
                    "serving_input_path": "serving_input_example.json"}
    payload = json.loads((tmp_path / "input_example.json").read_text())
    assert list(payload) == ["inputs"] and np.allclose(payload["inputs"], arr)
    assert np.allclose(load_input_example(str(tmp_path), info), arr)

    d = tmp_path / "dict"
    d.mkdir()
    info = save_input_example(str(d), {"a": np.zeros([1, 2]), "b": [[1, 2, 3]]})
    back = load_input_example(str(d), info)
    assert back["b"].tolist() == [[1, 2, 3]]

    t = tmp_path / "table"
    t.mkdir()
    df = pd.DataFrame({"x": [1.0, 2.0], "s": ["a", "b"]})
    info = save_input_example(str(t), df)
    assert info["type"] == "dataframe" and info["pandas_orient"] == "split"
    assert json.loads((t / "serving_input_example.json").read_text()) == {
        "dataframe_split": {"columns": ["x", "s"], "data": [[1.0, "a"], [2.0, "b"]]}}
    pd.testing.assert_frame_equal(load_input_example(str(t), info), df)


def test_requirements_resolution(tmp_path):
    defaults = ["mltrail==0.1.0", "keras==3.0.0", "numpy==2.0"]
    assert resolve_requirements(defaults) == defaults
    assert resolve_requirements(defaults, extra_pip_requirements=["Keras>=3.1", "pillow"]) == [
        "mltrail==0.1.0", "numpy==2.0", "Keras>=3.1", "pillow"]
    req_file = tmp_path / "req.txt"
    req_file.write_text("# pinned\nfoo==1\n\nbar\n")
    assert resolve_requirements(defaults, pip_requirements=str(req_file)) == ["foo==1", "bar"]
    assert resolve_requirements(defaults, conda_env={"dependencies": ["python=3.11", {"pip": ["x==1"]}]}) == ["x==1"]
    with pytest.raises(InvalidParameterValue, match="Only one of"):
        resolve_requirements(defaults, pip_requirements=["a"], extra_pip_requirements=["b"])
    assert requirement_name("Tensorflow_CPU[extra]>=2") == "tensorflow-cpu"
    assert requirement_name("-r requirements.txt") is None


def test_environment_files(tmp_path):
    env = write_environment(str(tmp_path), ["numpy==2.0"])
    assert env == {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    assert (tmp_path / "requirements.txt").read_text() == "numpy==2.0\n"
    python_env = yaml.safe_load((tmp_path / "python_env.yaml").read_text())
    assert python_env["dependencies"] == ["-r requirements.txt"]
    assert f"pip=={installed_version('pip')}" in python_env["build_dependencies"]
    conda = yaml.safe_load((tmp_path / "conda.yaml").read_text())
    assert {"pip": ["numpy==2.0"]} in conda["dependencies"]
