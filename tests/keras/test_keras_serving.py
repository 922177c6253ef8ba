"""`mltrail models serve`'s scoring app (in-process) serves `keras`-flavor models; `models export` reads them."""

from __future__ import annotations

import numpy as np
import pytest

import mltrail
from mltrail import pyfunc

pytestmark = pytest.mark.tf


@pytest.mark.parametrize("exported", [False, True])
def test_scoring_app_serves_a_logged_keras_model(tracking, exported):
    import keras_models
    from starlette.testclient import TestClient

    import mltrail.keras as mk
    from mltrail.models import infer_signature
    from mltrail.serving import ServingSettings, create_scoring_app

    model = keras_models.mlp()
    x = keras_models.rows(4, seed=6)
    expected = np.asarray(model(x))
    with mltrail.start_run():
        info = mk.log_model(model, name="served", save_exported_model=exported,
                            signature=infer_signature(x, expected))
    loaded = pyfunc.load_model(info.model_uri)
    with TestClient(create_scoring_app(loaded, ServingSettings())) as client:
        assert client.get("/ping").status_code == 200
        for body in ({"inputs": x.tolist()}, {"instances": x.tolist()},
                     {"dataframe_split": {"columns": [f"f{i}" for i in range(4)], "data": x.tolist()}}):
            response = client.post("/invocations", json=body)
            assert response.status_code == 200, response.text
            np.testing.assert_allclose(response.json()["predictions"], expected, atol=1e-5)
        bad = client.post("/invocations", json={"inputs": x[:, :3].tolist()})
        assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("source", ["ours", "mlflow_exported"])
def test_tf_serving_export_reads_the_keras_flavor(tmp_path, source):
    import json
    from pathlib import Path

    import keras_models
    from click.testing import CliRunner

    import mltrail.keras as mk
    import tensorflow as tf
    from mltrail.serving.cli import models

    if source == "ours":
        model = keras_models.mlp()
        path = str(tmp_path / "m")
        mk.save_model(model, path)
        x = keras_models.rows(2, seed=8)
        expected = np.asarray(model(x))
    else:
        fixtures = Path(__file__).resolve().parent / "fixtures"
        path = str(fixtures / "keras_exported")
        with open(fixtures / "expected.json") as fh:
            data = json.load(fh)
        x = np.asarray(data["inputs"], dtype="float32")
        expected = np.asarray(data["models"]["keras_exported"]["model"])
    done = CliRunner().invoke(models, ["export", "-m", path, "--format", "tf-serving", "--name", "k",
                                       str(tmp_path / "serving")], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    loaded = tf.saved_model.load(str(tmp_path / "serving" / "k" / "1"))
    (out,) = loaded.signatures["serving_default"](tf.constant(x)).values()
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)
