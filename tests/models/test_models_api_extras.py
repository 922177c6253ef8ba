"""mltrail.models.predict, validate_schema and infer_pip_requirements, as MLflow 3.17.2's: on a real model
saved from code, real input and output files, a real (cached) model environment and real subprocesses."""

from __future__ import annotations

import json
import logging
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import mltrail
import mltrail.pyfunc as pyfunc
from mltrail.errors import InvalidParameterValue, MltrailException
from mltrail.models import get_model_info, infer_pip_requirements, infer_signature, predict, validate_schema
from mltrail.types import ColSpec, Schema, TensorSpec
from mltrail.version import __version__

MODEL_CODE = """
    import os

    import mltrail as mlflow


    class Doubler(mlflow.pyfunc.PythonModel):
        def load_context(self, context):
            import sklearn  # a package the model needs only when it loads

            self.version = sklearn.__version__

        def predict(self, context, model_input, params=None):
            offset = float(os.environ.get("DOUBLER_OFFSET", "0")) + (params or {}).get("shift", 0.0)
            return model_input["a"] * 2 + offset


    mlflow.models.set_model(Doubler())
"""


@pytest.fixture
def model_dir(tmp_path) -> str:
    code = tmp_path / "doubler.py"
    code.write_text(textwrap.dedent(MODEL_CODE))
    path = tmp_path / "model"
    example = pd.DataFrame({"a": [1.0, 2.0]})
    signature = infer_signature(example, example["a"] * 2, params={"shift": 0.0})
    pyfunc.save_model(path, python_model=str(code), input_example=example, signature=signature)
    return str(path)


def _predictions(path) -> list:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)["predictions"]


# --- predict ------------------------------------------------------------------------------------------------


def test_predict_locally_from_input_data_to_a_file_and_to_stdout(model_dir, tmp_path, capsys):
    out = tmp_path / "out.json"
    assert predict(model_dir, input_data=pd.DataFrame({"a": [1.0, 2.5]}), output_path=str(out),
                   env_manager="local") is None
    assert _predictions(out) == [2.0, 5.0]
    predict(model_dir, input_data={"a": [3.0]}, env_manager="local")
    assert json.loads(capsys.readouterr().out) == {"predictions": [6.0]}


def test_predict_locally_from_json_and_csv_files(model_dir, tmp_path):
    body = tmp_path / "in.json"
    body.write_text(json.dumps({"dataframe_split": {"columns": ["a"], "data": [[1.0], [4.0]]},
                                "params": {"shift": 0.5}}))
    out = tmp_path / "out.json"
    predict(model_dir, input_path=str(body), output_path=str(out), env_manager="local")
    assert _predictions(out) == [2.5, 8.5]
    table = tmp_path / "in.csv"
    table.write_text("a\n1\n2\n")  # integers in the file: read as the signature's double column
    predict(model_dir, input_path=str(table), content_type="csv", output_path=str(out), env_manager="local")
    assert _predictions(out) == [2.0, 4.0]
    predict(model_dir, input_data="a\n7\n", content_type="csv", output_path=str(out), env_manager="local")
    assert _predictions(out) == [14.0]


def test_predict_a_logged_model_by_its_uri(model_dir, tracking, tmp_path):
    with mltrail.start_run():
        info = pyfunc.log_model(name="doubler", python_model=str(tmp_path / "doubler.py"),
                                input_example=pd.DataFrame({"a": [1.0]}))
    out = tmp_path / "out.json"
    predict(info.model_uri, input_data=pd.DataFrame({"a": [0.5]}), output_path=str(out), env_manager="local")
    assert _predictions(out) == [1.0]


def test_predict_refuses_what_it_cannot_do(model_dir, tmp_path):
    with pytest.raises(InvalidParameterValue, match="Content type must be one of json or csv. Received: 'xml'"):
        predict(model_dir, input_data={"a": [1.0]}, content_type="xml", env_manager="local")
    with pytest.raises(InvalidParameterValue, match="Both input_data and input_path are provided"):
        predict(model_dir, input_data={"a": [1.0]}, input_path=str(tmp_path / "x.json"), env_manager="local")
    with pytest.raises(InvalidParameterValue, match="Extra environment variables are only supported when "
                                                    "env_manager is set to 'virtualenv', 'conda' or 'uv'"):
        predict(model_dir, input_data={"a": [1.0]}, env_manager="local", extra_envs={"X": "1"})
    with pytest.raises(MltrailException, match="`pip_requirements_override` is not supported for local env manager"):
        predict(model_dir, input_data={"a": [1.0]}, env_manager="local", pip_requirements_override=["numpy"])
    with pytest.raises(InvalidParameterValue, match="env_manager 'conda' is not supported by mltrail.*"
                                                    "`mltrail models predict --env-manager`"):
        predict(model_dir, input_data={"a": [1.0]}, env_manager="conda")
    with pytest.raises(InvalidParameterValue, match="update_model_requirements"):
        predict(model_dir, input_data={"a": [1.0]}, pip_requirements_override=["numpy==2.0"])
    with pytest.raises(InvalidParameterValue, match="Input data must be one of .* when content type is 'csv', but "
                                                    "got <class 'int'>"):
        predict(model_dir, input_data=3, content_type="csv", env_manager="local")
    with pytest.raises(InvalidParameterValue, match="Failed to deserialize input string data to Pandas DataFrame"):
        predict(model_dir, input_data='a,b\n1,2\n3,"4', content_type="csv", env_manager="local")
    # the model's signature is enforced: a missing column is named
    with pytest.raises(InvalidParameterValue, match=r"Model is missing inputs \['a'\]"):
        predict(model_dir, input_data=pd.DataFrame({"b": [1.0]}), env_manager="local")


def _ready_environment(model_dir: str) -> None:
    """An environment a finished `mltrail models prepare-env` left for this model: this Python, marked ready."""
    from mltrail.serving import _env

    requirements, mltrail_args = _env.install_spec(_env.read_requirements(model_dir))
    env_dir = _env.env_root() / _env.env_key(requirements, mltrail_args)
    python = _env.env_python(env_dir)
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    (env_dir / _env.READY_MARKER).write_text("{}")


def test_predict_in_the_models_virtualenv_with_extra_envs(model_dir, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("MLTRAIL_ENV_ROOT", str(tmp_path / "envs"))
    _ready_environment(model_dir)
    out = tmp_path / "out.json"
    predict(model_dir, input_data=pd.DataFrame({"a": [1.0, 2.0]}), output_path=str(out), env_manager="uv",
            extra_envs={"DOUBLER_OFFSET": "10"})
    assert _predictions(out) == [12.0, 14.0]  # the variable reached the model in the child process
    predict(model_dir, input_data={"a": [5.0]}, env_manager="virtualenv")
    assert json.loads(capfd.readouterr().out.strip()) == {"predictions": [10.0]}
    with pytest.raises(MltrailException, match="An exception occurred while running model prediction within a "
                                               "virtualenv environment"):
        predict(model_dir, input_data={"b": [5.0]}, env_manager="virtualenv")
    assert "Model is missing inputs ['a']" in capfd.readouterr().err


# --- validate_schema ---------------------------------------------------------------------------------------------


def test_validate_schema_with_a_logged_signature(model_dir):
    schema = get_model_info(model_dir).signature.inputs
    assert validate_schema(pd.DataFrame({"a": [1.0, 2.0]}), schema) is None
    assert validate_schema([{"a": 1.5}], schema) is None
    with pytest.raises(InvalidParameterValue, match=r"Model is missing inputs \['a'\]"):
        validate_schema(pd.DataFrame({"b": [1.0]}), schema)
    with pytest.raises(InvalidParameterValue, match="Incompatible input types for column 'a': received (object|str), "
                                                    "expected double"):
        validate_schema(pd.DataFrame({"a": ["x"]}), schema)
    with pytest.raises(InvalidParameterValue, match="Expected input to be DataFrame. Found: NoneType"):
        validate_schema(None, schema)
    with pytest.raises(InvalidParameterValue, match="expected_schema must be a mltrail.types.Schema"):
        validate_schema(pd.DataFrame({"a": [1.0]}), None)  # type: ignore[arg-type]


def test_validate_schema_with_tensors():
    schema = Schema([TensorSpec(np.dtype("float32"), (-1, 3))])
    validate_schema(np.zeros((2, 3), dtype=np.float32), schema)
    with pytest.raises(InvalidParameterValue, match=r"Shape of input \(2, 4\) does not match expected shape "
                                                    r"\(-1, 3\)"):
        validate_schema(np.zeros((2, 4), dtype=np.float32), schema)
    with pytest.raises(InvalidParameterValue, match="Model is missing inputs: received None"):
        validate_schema(None, schema)
    required = Schema([ColSpec("long", "n")])
    with pytest.raises(InvalidParameterValue, match="Required column 'n' has missing values"):
        validate_schema(pd.DataFrame({"n": [1.0, None]}), required)


# --- infer_pip_requirements ----------------------------------------------------------------------------------------


def test_infer_pip_requirements_records_what_the_model_imports(model_dir):
    from importlib import metadata

    reqs = infer_pip_requirements(model_dir, "python_function")
    assert reqs[0] == f"mltrail=={__version__}"
    assert f"scikit-learn=={metadata.version('scikit-learn')}" in reqs
    names = [r.split("==")[0] for r in reqs]
    # numpy and pandas come with mltrail (and scikit-learn); the standard library never appears
    assert "numpy" not in names and "pandas" not in names and "os" not in names and "json" not in names
    assert all("==" in r for r in reqs)


def test_infer_pip_requirements_falls_back_with_a_warning(model_dir, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="mltrail.models.requirements_inference"):
        assert infer_pip_requirements(model_dir, "sklearn", fallback=["mltrail"]) == ["mltrail"]
    assert ("Encountered an unexpected error while inferring pip requirements (model URI: "
            f"{model_dir}, flavor: sklearn). Fall back to return ['mltrail']") in caplog.text
    with pytest.raises(InvalidParameterValue, match="Cannot infer the requirements of a model of flavor 'sklearn'"):
        infer_pip_requirements(model_dir, "sklearn")
    # a model that fails to load in the subprocess: its error comes back
    broken = tmp_path / "broken.py"
    broken.write_text(textwrap.dedent("""
        import mltrail


        class Broken(mltrail.pyfunc.PythonModel):
            def load_context(self, context):
                raise RuntimeError("this model cannot load")

            def predict(self, context, model_input, params=None):
                return model_input


        mltrail.models.set_model(Broken())
    """))
    pyfunc.save_model(tmp_path / "broken", python_model=str(broken))
    with pytest.raises(MltrailException, match="(?s)in a subprocess failed.*this model cannot load"):
        infer_pip_requirements(str(tmp_path / "broken"), "python_function")


def test_infer_pip_requirements_never_unpickles_without_the_opt_in(tmp_path, monkeypatch, caplog):
    class Pickled(pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    monkeypatch.setenv("MLTRAIL_ALLOW_PICKLE", "true")
    path = tmp_path / "pickled"
    pyfunc.save_model(path, python_model=Pickled())
    with caplog.at_level(logging.WARNING, logger="mltrail.models.requirements_inference"):
        assert infer_pip_requirements(str(path), "python_function", fallback=[]) == []
    assert "Deserializing" in caplog.text and "disallowed" in caplog.text
    reqs = infer_pip_requirements(str(path), "python_function", allow_pickle=True)
    assert reqs[0] == f"mltrail=={__version__}"
