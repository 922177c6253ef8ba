"""`pyfunc.log_model` into a real SQLite store: artifacts given as runs:/ and models:/ URIs (downloaded into
the model), registration, `runs:/` and `models:/` loading, `get_model_dependencies`, `spark_udf`."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import yaml

import mltrail
import mltrail.pyfunc as pyfunc
from mltrail.errors import InvalidParameterValue, MltrailException

INNER = """
    import mltrail as mlflow


    class Double(mlflow.pyfunc.PythonModel):
        def predict(self, model_input, params=None):
            return model_input * 2


    mlflow.models.set_model(Double())
"""

OUTER = """
    import mltrail as mlflow


    class Chain(mlflow.pyfunc.PythonModel):
        def load_context(self, context):
            self.inner = mlflow.pyfunc.load_model(context.artifacts["inner"])
            with open(context.artifacts["bias"], encoding="utf-8") as fh:
                self.bias = float(fh.read())

        def predict(self, context, model_input, params=None):
            return self.inner.predict(model_input) + self.bias


    mlflow.models.set_model(Chain())
"""


@pytest.fixture
def logged(tracking, tmp_path, write_model_file):
    (tmp_path / "bias.txt").write_text("0.5")
    with mltrail.start_run() as run:
        mltrail.log_artifact(str(tmp_path / "bias.txt"), "files")
        inner = pyfunc.log_model(name="inner", python_model=write_model_file(INNER, "inner.py"))
        outer = pyfunc.log_model(
            name="chain", python_model=write_model_file(OUTER, "outer.py"), registered_model_name="chain",
            artifacts={"inner": inner.model_uri, "bias": f"runs:/{run.info.run_id}/files/bias.txt"},
            input_example=pd.DataFrame({"x": [1.0, 2.0]}), extra_pip_requirements=["pandas"])
    return run, inner, outer


def test_log_model_downloads_uri_artifacts_and_registers(logged):
    run, inner, outer = logged
    assert outer.model_uri.startswith("models:/m-") and outer.run_id == run.info.run_id
    assert outer.registered_model_version == 1
    flavor = outer.flavors["python_function"]
    assert flavor["artifacts"]["inner"]["uri"] == inner.model_uri
    assert flavor["artifacts"]["bias"] == {"path": "artifacts/bias.txt",
                                           "uri": f"runs:/{run.info.run_id}/files/bias.txt"}
    assert flavor["artifacts"]["inner"]["path"].startswith("artifacts/")
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    for uri in (outer.model_uri, "models:/chain/1", f"runs:/{run.info.run_id}/chain"):
        assert pyfunc.load_model(uri).predict(frame)["x"].tolist() == [2.5, 4.5]
    assert mltrail.get_logged_model(outer.model_id).status == "READY"


def test_get_model_dependencies(logged, tmp_path):
    _, _, outer = logged
    pip = pyfunc.get_model_dependencies(outer.model_uri)
    assert os.path.basename(pip) == "requirements.txt"
    lines = open(pip).read().splitlines()
    assert "pandas" in lines and any(line.startswith("cloudpickle==") for line in lines)
    conda = pyfunc.get_model_dependencies(outer.model_uri, format="conda")
    assert os.path.basename(conda) == "conda.yaml"
    assert {"pip": lines} in yaml.safe_load(open(conda))["dependencies"]
    with pytest.raises(InvalidParameterValue, match="Illegal format argument 'wheel'"):
        pyfunc.get_model_dependencies(outer.model_uri, format="wheel")


def test_get_model_dependencies_falls_back_on_conda_yaml(tmp_path, caplog):
    model = tmp_path / "m"
    model.mkdir()
    (model / "MLmodel").write_text(yaml.safe_dump({"flavors": {"python_function": {
        "loader_module": "mlflow.pyfunc.model", "env": "conda.yaml"}}}))
    (model / "conda.yaml").write_text(yaml.safe_dump({"dependencies": ["python=3.11", {"pip": ["numpy==2.0"]}]}))
    pip = pyfunc.get_model_dependencies(str(model))
    assert open(pip).read() == "numpy==2.0\n"
    assert "python=3.11" in caplog.text


def test_spark_udf_says_spark_is_not_supported():
    with pytest.raises(MltrailException, match="spark_udf is not supported: mltrail has no Spark integration"):
        pyfunc.spark_udf(None, "models:/m/1")
