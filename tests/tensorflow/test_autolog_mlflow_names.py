"""Autolog and callback output named as MLflow 3.17's, and `mltrail.autolog` taking MLflow's arguments.

The expected names and texts were read off runs that the real `mlflow.tensorflow.autolog()` and
`mlflow.keras.MlflowCallback` logged for the same tiny fits.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from autolog_models import artifact_paths, data, dense_model, models_of, only_run, steps, values

import mltrail
from mltrail.models import Model
from mltrail.tensorflow.autolog import autolog, get_autolog_config, keras_autolog
from mltrail.tensorflow.callback import KerasMlflowCallback, MLflowCallback, MlflowCallback

pytestmark = pytest.mark.tf


@pytest.fixture(autouse=True)
def _autolog_off(tracking):
    yield
    autolog(disable=True)


def test_fit_arguments_are_logged_as_given_with_sample_weight_as_mlflows_text():
    import tensorflow as tf

    autolog(log_models=False, checkpoint=False)
    x, y = data()
    weights = np.ones(len(x), dtype="float32")
    repeated = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat()
    with mltrail.start_run() as arrays:
        dense_model().fit(x, y, epochs=1, sample_weight=weights, verbose=0)
    with mltrail.start_run() as pipeline:
        dense_model().fit(repeated, epochs=2, steps_per_epoch=3, validation_data=repeated, validation_steps=2,
                          verbose=0)
    p = mltrail.get_run(arrays.info.run_id).data.params
    # arrays without batch_size: MLflow logs "None" (fit's default, 32, applies)
    assert (p["batch_size"], p["steps_per_epoch"], p["validation_steps"]) == ("None", "None", "None")
    assert p["sample_weight"] == str(weights)
    q = mltrail.get_run(pipeline.info.run_id).data.params
    assert (q["batch_size"], q["steps_per_epoch"], q["validation_steps"], q["sample_weight"]) == ("8", "3", "2", "None")
    assert steps(pipeline.info.run_id, "validation_loss") == [0, 1]


def test_the_callback_names_and_forms_of_mlflow():
    x, y = data()
    assert MLflowCallback is MlflowCallback and mltrail.tensorflow.MLflowCallback is MlflowCallback
    with mltrail.start_run() as run:
        # MLflow's positional form: MlflowCallback(log_every_epoch, log_every_n_steps)
        dense_model().fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), verbose=0,
                          callbacks=[MlflowCallback(False, 2)])
    rid = run.info.run_id
    assert steps(rid, "loss") == [2, 4, 6, 8]  # every 2 optimizer steps, Keras's names
    assert steps(rid, "validation_loss") == [0, 1] and steps(rid, "val_loss") == [0, 1]
    assert values(rid, "validation_accuracy") == values(rid, "val_accuracy")
    assert mltrail.get_run(rid).data.params["opt_name"].startswith("adam")


def test_the_keras_flavors_callback_logs_optimizer_params_and_links_metrics_to_a_model():
    x, y = data()
    with mltrail.start_run() as run:
        model_id = mltrail.initialize_logged_model(name="clf").model_id
        dense_model().fit(x, y, epochs=2, verbose=0, callbacks=[KerasMlflowCallback(model_id=model_id)])
    rid = run.info.run_id
    p = mltrail.get_run(rid).data.params
    assert p["optimizer_name"].startswith("adam") and float(p["optimizer_learning_rate"]) == pytest.approx(0.01)
    assert not [k for k in p if k.startswith("opt_")]
    assert steps(rid, "loss") == [0, 1]
    linked = mltrail.get_logged_model(model_id).metrics
    assert sorted(m.step for m in linked if m.key == "loss") == [0, 1] and {m.run_id for m in linked} == {rid}


def test_mltrail_autolog_takes_mlflows_arguments(caplog):
    x, y = data()
    with caplog.at_level(logging.DEBUG, logger="mltrail.tensorflow"):
        mltrail.autolog(log_models=False, log_datasets=False, log_traces=False, exclusive=False,
                        disable_for_unsupported_versions=True, silent=True, extra_tags={"team": "a"})
    config = get_autolog_config()
    assert config is not None and not config.log_models and not config.log_datasets and config.silent
    assert config.extra_tags == {"team": "a"}
    ignored = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert ignored == ["autolog: arguments the Keras autologging does not take, ignored: log_traces"]
    dense_model().fit(x, y, epochs=1, verbose=0)
    r = only_run()
    assert r.data.tags["team"] == "a" and r.data.tags["mlflow.autologging"] == "tensorflow"
    assert not r.inputs.dataset_inputs
    mltrail.autolog(disable=True)
    assert get_autolog_config() is None


@pytest.mark.parametrize("flavor", ["tensorflow", "keras"])
def test_exclude_flavors_leaves_keras_alone(flavor):
    mltrail.autolog(exclude_flavors=[flavor])
    assert get_autolog_config() is None
    x, y = data()
    dense_model().fit(x, y, epochs=1, verbose=0)
    assert mltrail.search_runs(output_format="list") == []
    mltrail.autolog(exclude_flavors=["sklearn"])  # another flavor excluded: Keras is autologged
    assert get_autolog_config() is not None


def test_keras_autolog_logs_as_mlflows_keras_flavor():
    keras_autolog(extra_tags={"team": "a"})
    x, y = data()
    dense_model().fit(x, y, epochs=2, validation_split=0.25, verbose=0)
    r = only_run()
    rid = r.info.run_id
    assert r.data.tags["mlflow.autologging"] == "keras" and r.data.tags["team"] == "a"
    assert r.data.params["optimizer_name"].startswith("adam") and not [k for k in r.data.params if k.startswith("opt_")]
    assert steps(rid, "loss") == [0, 1] and steps(rid, "validation_loss") == [0, 1]
    assert not [p for p in artifact_paths(rid) if p.startswith(("checkpoints/", "tensorboard_logs/"))]
    [logged] = models_of(rid)
    assert "keras" in Model.load(logged.model_uri).flavors
