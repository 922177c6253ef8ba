"""Evaluating a tiny Keras classifier logged with mltrail.tensorflow, by model URI and as a PyFuncModel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk

import mltrail as mlflow

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def keras_softmax():
    import keras

    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = np.digitize(x[:, 0], [-0.4, 0.4])
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5, verbose=0)
    return model, x, y


def test_a_logged_keras_classifier_evaluated_by_models_uri(tracking, keras_softmax):
    model, x, y = keras_softmax
    proba = model.predict(x, verbose=0)
    with mlflow.start_run() as run:
        info = mlflow.tensorflow.log_model(model, name="classifier")
        data = pd.DataFrame(x, columns=[f"f{i}" for i in range(4)]).assign(label=y)
        result = mlflow.evaluate(info.model_uri, data, targets="label", model_type="classifier")

    y_pred = proba.argmax(axis=1)
    assert result.metrics["accuracy_score"] == pytest.approx(sk.accuracy_score(y, y_pred))
    assert result.metrics["log_loss"] == pytest.approx(sk.log_loss(y, proba), rel=1e-4)
    assert result.metrics["roc_auc"] == pytest.approx(
        sk.roc_auc_score(y, proba, multi_class="ovr", average="weighted"), rel=1e-4)
    assert "per_class_metrics" in result.artifacts and "confusion_matrix" in result.artifacts
    logged = mlflow.MlflowClient().get_run(run.info.run_id)
    assert logged.data.metrics["accuracy_score"] == pytest.approx(result.metrics["accuracy_score"])
    assert logged.data.metrics["log_loss"] == pytest.approx(result.metrics["log_loss"])
    with pytest.raises(mlflow.MlflowException, match="contradicts the model_id"):
        mlflow.evaluate(info.model_uri, data, targets="label", model_type="classifier", model_id="m-other")


def test_a_loaded_pyfunc_model_and_a_runs_uri(tracking, keras_softmax):
    model, x, y = keras_softmax
    with mlflow.start_run() as run:
        mlflow.tensorflow.log_model(model, name="classifier")
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/classifier")
    by_object = mlflow.evaluate(loaded, x, targets=y, model_type="classifier")
    by_uri = mlflow.evaluate(f"runs:/{run.info.run_id}/classifier", x, targets=y, model_type="classifier")
    assert by_object.metrics == pytest.approx(by_uri.metrics)
    assert by_object.run_id != by_uri.run_id != run.info.run_id  # each evaluation opened its own run
