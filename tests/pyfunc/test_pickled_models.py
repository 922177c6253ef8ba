"""A `PythonModel` instance (pickled with cloudpickle, as MLflow does): saved, refused at load without both
opt-ins, loaded with them; MLflow's own pickled and models-from-code fixtures load the same way."""

from __future__ import annotations

import os
import sys

import pandas as pd
import pytest
import yaml

import mltrail.pyfunc as pyfunc
from conftest import FIXTURES
from mltrail.errors import InvalidParameterValue


class AddOffset(pyfunc.PythonModel):
    def load_context(self, context):
        with open(context.artifacts["offset"], encoding="utf-8") as fh:
            self.offset = float(fh.read())

    def predict(self, context, model_input, params=None):
        return model_input + self.offset


@pytest.fixture
def pickled(tmp_path):
    offset = tmp_path / "offset.txt"
    offset.write_text("10")
    path = tmp_path / "model"
    pyfunc.save_model(path, python_model=AddOffset(), artifacts={"offset": str(offset)})
    return str(path)


def test_an_instance_is_pickled_in_mlflows_layout(pickled):
    flavor = yaml.safe_load(open(os.path.join(pickled, "MLmodel")))["flavors"]["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.model"
    assert flavor["python_model"] == "python_model.pkl"
    assert flavor["cloudpickle_version"]
    assert flavor["artifacts"]["offset"]["path"] == "artifacts/offset.txt"
    assert os.path.isfile(os.path.join(pickled, "python_model.pkl"))
    assert "model_code_path" not in flavor


@pytest.mark.parametrize(("keyword", "env"), [(False, None), (True, None), (False, "true"), (True, "false")])
def test_loading_a_pickle_needs_the_keyword_and_the_variable(pickled, monkeypatch, keyword, env):
    if env is None:
        monkeypatch.delenv("MLTRAIL_ALLOW_PICKLE", raising=False)
    else:
        monkeypatch.setenv("MLTRAIL_ALLOW_PICKLE", env)
    with pytest.raises(InvalidParameterValue) as raised:
        pyfunc.load_model(pickled, allow_pickle=keyword)
    message = str(raised.value)
    assert message.startswith("Deserializing model using pickle is disallowed, but this model is saved in cloudpickle")
    assert "allow_pickle=True" in message and "MLTRAIL_ALLOW_PICKLE=true" in message
    assert "python_model.pkl" in message


def test_a_refused_pickle_leaves_sys_path_alone(tmp_path, monkeypatch):
    # a refused model's code/ must not shadow a module the process imports later
    helper = tmp_path / "offset_helper.py"
    helper.write_text("OFFSET = 1\n")
    path = tmp_path / "model"
    pyfunc.save_model(path, python_model=AddOffset(), artifacts={"offset": str(helper)}, code_paths=[str(helper)])
    monkeypatch.delenv("MLTRAIL_ALLOW_PICKLE", raising=False)
    before = list(sys.path)
    with pytest.raises(InvalidParameterValue):
        pyfunc.load_model(str(path))
    assert sys.path == before


def test_loading_a_pickle_with_both_opt_ins(pickled, monkeypatch):
    monkeypatch.setenv("MLTRAIL_ALLOW_PICKLE", "true")
    model = pyfunc.load_model(pickled, allow_pickle=True)
    assert model.predict(pd.DataFrame({"x": [1.0, 2.0]}))["x"].tolist() == [11.0, 12.0]
    assert isinstance(model.unwrap_python_model(), AddOffset)


def test_mlflows_models_from_code_fixture_loads(tmp_path):
    model = pyfunc.load_model(str(FIXTURES / "mlflow_code_model"))
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    assert model.predict(frame).to_dict("list") == {"a": [4.0, 5.0], "b": [6.0, 7.0]}
    assert model.model_config == {"n": 3}
    assert model.metadata.mlflow_version == "3.17.2"  # MLflow's own keys are kept


def test_mlflows_pickled_fixture_needs_the_opt_in(monkeypatch):
    path = str(FIXTURES / "mlflow_pickled_model")
    with pytest.raises(InvalidParameterValue, match="allow_pickle=True"):
        pyfunc.load_model(path)
    monkeypatch.setenv("MLTRAIL_ALLOW_PICKLE", "1")
    model = pyfunc.load_model(path, allow_pickle=True)  # MLflow's PythonModel base maps to ours
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    assert model.predict(frame).to_dict("list") == {"a": [11.0, 12.0], "b": [13.0, 14.0]}
    assert isinstance(model.unwrap_python_model(), pyfunc.PythonModel)


def test_a_pickle_naming_other_mlflow_classes_is_refused(tmp_path, monkeypatch):
    model = tmp_path / "m"
    model.mkdir()
    # protocol 0 by hand: GLOBAL 'mlflow.tracking MlflowClient', STOP
    (model / "python_model.pkl").write_bytes(b"cmlflow.tracking\nMlflowClient\n.")
    (model / "MLmodel").write_text(yaml.safe_dump({"flavors": {"python_function": {
        "loader_module": "mlflow.pyfunc.model", "python_model": "python_model.pkl"}}}))
    monkeypatch.setenv("MLTRAIL_ALLOW_PICKLE", "true")
    with pytest.raises(InvalidParameterValue, match="needs MLflow's mlflow.tracking.MlflowClient"):
        pyfunc.load_model(str(model), allow_pickle=True)


def test_a_callable_is_pickled_too(tmp_path, monkeypatch):
    pyfunc.save_model(tmp_path / "m", python_model=lambda frame: frame * 3, pip_requirements=["pandas"])
    monkeypatch.setenv("MLTRAIL_ALLOW_PICKLE", "true")
    model = pyfunc.load_model(str(tmp_path / "m"), allow_pickle=True)
    assert model.predict(pd.DataFrame({"x": [1]}))["x"].tolist() == [3]
    assert open(tmp_path / "m" / "requirements.txt").read() == "pandas\n"


def test_a_callable_needs_an_example_or_requirements_and_one_argument(tmp_path):
    with pytest.raises(InvalidParameterValue, match="at least one of `input_example`"):
        pyfunc.save_model(tmp_path / "a", python_model=lambda frame: frame)
    with pytest.raises(InvalidParameterValue, match="exactly one argument. Found 2"):
        pyfunc.save_model(tmp_path / "b", python_model=lambda a, b: a, pip_requirements=[])
    with pytest.raises(InvalidParameterValue, match="must be a PythonModel instance"):
        pyfunc.save_model(tmp_path / "c", python_model=42)
