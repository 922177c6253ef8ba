"""A model from code behind the real scoring app (in-process) and `mltrail models predict`: no TensorFlow needed."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import mltrail.pyfunc as pyfunc

MODEL = """
    import mltrail as mlflow


    class AddN(mlflow.pyfunc.PythonModel):
        def load_context(self, context):
            self.n = context.model_config["n"]

        def predict(self, context, model_input, params=None):
            return model_input + self.n


    mlflow.models.set_model(AddN())
"""


@pytest.fixture
def model_dir(tmp_path, write_model_file):
    path = tmp_path / "model"
    pyfunc.save_model(path, python_model=write_model_file(MODEL), model_config={"n": 5},
                      input_example=pd.DataFrame({"a": [1.0], "b": [2.0]}))
    return str(path)


def test_scoring_app_serves_a_model_from_code(model_dir):
    from starlette.testclient import TestClient

    from mltrail.serving import ServingSettings, create_scoring_app
    from mltrail.serving.app import load_served_model

    with TestClient(create_scoring_app(load_served_model(model_dir), ServingSettings())) as client:
        assert client.get("/ping").status_code == 200
        split = client.post("/invocations", json={"dataframe_split": {"columns": ["a", "b"],
                                                                      "data": [[1.0, 2.0], [3.0, 4.0]]}})
        assert split.status_code == 200, split.text
        assert split.json() == {"predictions": [{"a": 6.0, "b": 7.0}, {"a": 8.0, "b": 9.0}]}
        records = client.post("/invocations", json={"dataframe_records": [{"a": 0.0, "b": 1.0}]})
        assert records.json() == {"predictions": [{"a": 5.0, "b": 6.0}]}
        csv = client.post("/invocations", content=b"a,b\n10,20\n", headers={"Content-Type": "text/csv"})
        assert csv.json() == {"predictions": [{"a": 15.0, "b": 25.0}]}
        bad = client.post("/invocations", json={"dataframe_records": [{"a": 1.0}]})
        assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_models_predict_command(model_dir, tmp_path):
    from click.testing import CliRunner

    from mltrail.serving.cli import models

    (tmp_path / "in.json").write_text(json.dumps({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}))
    result = CliRunner().invoke(models, ["predict", "-m", model_dir, "-i", str(tmp_path / "in.json"),
                                         "-o", str(tmp_path / "out.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out.json").read_text()) == {"predictions": [{"a": 6.0, "b": 7.0}]}
