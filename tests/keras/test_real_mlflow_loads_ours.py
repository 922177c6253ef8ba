"""Models saved by `mltrail.keras` load with the real MLflow 3.17.2 (its venv's python, in a subprocess).

Skipped when that venv is absent; mltrail's own code never imports `mlflow`.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

pytestmark = [pytest.mark.tf, pytest.mark.slow]

# runs in the MLflow venv: load each model with mlflow.pyfunc and mlflow.keras, print their predictions
LOAD_WITH_MLFLOW = """
import json, sys
import numpy as np
import mlflow

x = np.asarray(json.loads(sys.argv[1]), dtype="float32")
out = {}
for path in sys.argv[2:]:
    model = mlflow.keras.load_model(path)
    raw = model.serve(x) if hasattr(model, "serve") and not callable(model) else model(x)
    out[path] = {"pyfunc": np.asarray(mlflow.pyfunc.load_model(path).predict(x)).tolist(),
                 "keras": np.asarray(raw).tolist()}
print(json.dumps(out))
"""


def test_real_mlflow_loads_and_predicts_our_keras_models(tmp_path, mlflow_python):
    import keras_models

    import mltrail.keras as mk
    from mltrail.models import infer_signature

    model = keras_models.mlp()
    x = keras_models.rows(3, seed=9)
    expected = np.asarray(model(x))
    paths = [str(tmp_path / "default"), str(tmp_path / "exported")]
    mk.save_model(model, paths[0], input_example=x[:2])
    mk.save_model(model, paths[1], save_exported_model=True, signature=infer_signature(x, expected))
    done = subprocess.run([str(mlflow_python), "-c", LOAD_WITH_MLFLOW, json.dumps(x.tolist()), *paths],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for path in paths:
        np.testing.assert_allclose(results[path]["pyfunc"], expected, atol=1e-6)
        np.testing.assert_allclose(results[path]["keras"], expected, atol=1e-6)
