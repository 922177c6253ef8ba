"""The real `mlflow` client (a separate venv, never installed here) uses our server's model registry:
it logs a tiny Keras model, registers it, sets an alias and loads `models:/name@alias`."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import numpy as np
import pytest
from test_registry_rest import server  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.slow, pytest.mark.tf]


CLIENT = textwrap.dedent("""
    import json, sys
    import keras, mlflow, numpy as np
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(sys.argv[1])
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input([4]), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)])
    x = np.random.default_rng(0).random((5, 4)).astype("float32")
    with mlflow.start_run() as run:
        info = mlflow.tensorflow.log_model(model, name="model")
    mv = mlflow.register_model(info.model_uri, "mlflow-clf")
    mv2 = mlflow.register_model(info.model_uri, "mlflow-clf")
    client = MlflowClient()
    client.set_registered_model_alias("mlflow-clf", "champion", mv.version)
    client.set_model_version_tag("mlflow-clf", mv.version, "validated", "yes")
    rm = client.get_registered_model("mlflow-clf")
    by_alias = client.get_model_version_by_alias("mlflow-clf", "champion")
    try:
        client.get_model_version_by_alias("mlflow-clf", "no-such-alias")
        missing_alias = None
    except mlflow.exceptions.MlflowException as e:
        missing_alias = [e.error_code, e.message]
    loaded = mlflow.pyfunc.load_model("models:/mlflow-clf@champion")
    np.testing.assert_allclose(np.asarray(loaded.predict(x)), model.predict(x, verbose=0), rtol=1e-5)
    keras_model = mlflow.tensorflow.load_model(f"models:/mlflow-clf/{mv2.version}")
    np.testing.assert_allclose(keras_model.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)
    print(json.dumps({
        "versions": [mv.version, mv2.version], "model_id": info.model_id, "run_id": run.info.run_id,
        "aliases": rm.aliases, "alias_version": by_alias.version, "tags": by_alias.tags, "missing_alias": missing_alias,
        "searched": [m.name for m in client.search_registered_models()],
        "found_versions": sorted(v.version for v in client.search_model_versions("name = 'mlflow-clf'")),
        "x": x.tolist(), "expected": model.predict(x, verbose=0).tolist(),
    }))
""")


def test_real_mlflow_client_registers_and_loads_by_alias(server, tmp_path, mlflow_python):  # noqa: F811
    python = str(mlflow_python)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
           "MLFLOW_TRACKING_URI": server}
    for var in ("MLTRAIL_TRACKING_URI", "PYTHONPATH"):
        env.pop(var, None)
    proc = subprocess.run([python, "-c", CLIENT, server], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=540)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["versions"] == ["1", "2"] and out["alias_version"] == "1"
    assert out["aliases"] == {"champion": "1"} and out["tags"] == {"validated": "yes"}
    assert out["searched"] == ["mlflow-clf"] and out["found_versions"] == ["1", "2"]
    code, message = out["missing_alias"]  # the REST client puts the code in front of the message
    assert code == "INVALID_PARAMETER_VALUE" and message.endswith("Registered model alias no-such-alias not found.")

    # what the real client registered is ours too: same lineage, same files, loadable by mltrail
    import mltrail

    mv = mltrail.MlflowClient().get_model_version_by_alias("mlflow-clf", "champion")
    assert mv.model_id == out["model_id"] and mv.run_id == out["run_id"]  # MLflow's client drops model_id
    loaded = mltrail.pyfunc.load_model("models:/mlflow-clf@champion")
    x = np.asarray(out["x"], dtype=np.float32)
    np.testing.assert_allclose(np.asarray(loaded.predict(x)), np.asarray(out["expected"]), rtol=1e-5)
