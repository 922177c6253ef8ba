"""MlflowCallback, MlflowModelCheckpointCallback and the writer behind them, with real tiny models."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
from autolog_models import artifact_paths, data, dense_model, steps, values

import mltrail
from mltrail.errors import InvalidParameterValue
from mltrail.tensorflow._async_writer import MAX_METRICS_PER_BATCH, AsyncWriter, AutologWarning, FailureReport
from mltrail.tensorflow.callback import MlflowCallback, MlflowModelCheckpointCallback, MltrailCallback

pytestmark = pytest.mark.tf


@pytest.fixture(autouse=True)
def _store(tracking):
    return tracking


def test_the_seed_forms():
    x, y = np.random.default_rng(0).uniform(size=[64, 8]).astype("float32"), np.arange(64) % 2

    def make_model():
        model = keras.Sequential([keras.Input([8]), keras.layers.Dense(4, activation="relu"),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    with mltrail.start_run() as run:
        make_model().fit(x, y, batch_size=32, epochs=10, callbacks=[mltrail.tensorflow.MlflowCallback(run)],
                         verbose=0)
    assert steps(run.info.run_id, "loss") == list(range(10))
    with mltrail.start_run() as run2:
        make_model().fit(x, y, batch_size=8, epochs=2, verbose=0,
                         callbacks=[MlflowCallback(log_every_epoch=False, log_every_n_steps=2)])
    assert steps(run2.info.run_id, "loss") == [2, 4, 6, 8, 10, 12, 14, 16]
    assert "batch/loss" not in mltrail.get_run(run2.info.run_id).data.metrics


def test_model_info_is_logged_at_train_begin():
    x, y = data()
    model = dense_model()
    with mltrail.start_run() as run:
        model.fit(x, y, epochs=1, callbacks=[MlflowCallback(run.info.run_id)], verbose=0)
    rid = run.info.run_id
    p = mltrail.get_run(rid).data.params
    assert p["opt_name"].startswith("adam") and "opt_learning_rate" in p and "opt_beta_2" in p
    assert p["total_params"] == str(model.count_params())
    assert {"model_summary.txt", "model_config.json"} <= set(artifact_paths(rid))


def test_without_a_run_it_uses_the_active_run_at_train_begin():
    x, y = data()
    cb = MlflowCallback()
    with mltrail.start_run() as run:
        dense_model().fit(x, y, epochs=1, callbacks=[cb], verbose=0)
    assert steps(run.info.run_id, "loss") == [0]
    dense_model().fit(x, y, epochs=1, callbacks=[cb], verbose=0)  # no active run: it starts one
    started = mltrail.active_run()
    assert started is not None and started.info.run_id != run.info.run_id
    assert steps(started.info.run_id, "loss") == [0]
    mltrail.end_run()


def test_epochs_and_steps_both_with_batch_names_and_reuse_continues():
    x, y = data()  # 32 rows, batch 8: 4 steps per epoch
    model = dense_model()
    cb = MltrailCallback(log_every_epoch=True, log_every_n_steps=3)
    with mltrail.start_run() as run:
        model.fit(x, y, batch_size=8, epochs=2, callbacks=[cb], verbose=0)
        model.fit(x, y, batch_size=8, epochs=1, callbacks=[cb], verbose=0)
        model.fit(x, y, batch_size=8, epochs=2, callbacks=[cb], verbose=0)
    rid = run.info.run_id
    assert steps(rid, "loss") == [0, 1, 2, 3, 4]
    assert steps(rid, "batch/loss") == [3, 6, 9, 12, 15, 18]
    assert steps(rid, "batch/accuracy") == [3, 6, 9, 12, 15, 18]


def test_the_batch_hook_exists_only_when_asked_for():
    from keras.src.utils.python_utils import is_default

    assert is_default(MlflowCallback().on_train_batch_end)
    assert not is_default(MlflowCallback(log_every_n_steps=5).on_train_batch_end)
    assert MlflowCallback.async_safe  # Keras may dispatch our batch hook from its worker threads


@pytest.mark.parametrize("kwargs", [{"log_every_epoch": False}, {"log_every_n_steps": 0},
                                    {"log_every_n_steps": 1.5}, {"run": 42}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(InvalidParameterValue):
        MlflowCallback(**kwargs)


def test_a_deleted_run_gives_a_warning_and_training_finishes():
    x, y = data()
    client = mltrail.MlflowClient()
    run = client.create_run("0")
    client.delete_run(run.info.run_id)
    with pytest.warns(AutologWarning, match="could not log") as record:
        history = dense_model().fit(x, y, batch_size=4, epochs=2, verbose=0,
                                    callbacks=[MlflowCallback(run, log_every_n_steps=1)])
    assert len(history.epoch) == 2
    kinds = [re.match(r"mltrail could not log (.+?) to", str(w.message)).group(1) for w in record
             if issubclass(w.category, AutologWarning)]
    assert len(kinds) == len(set(kinds)) and "metrics" in kinds


def test_the_checkpoint_callback_on_its_own():
    x, y = data()
    model = dense_model()
    with mltrail.start_run() as run:
        cb = MlflowModelCheckpointCallback(client=mltrail.MlflowClient(), run_id=run.info.run_id, monitor="loss",
                                           mode="min", save_best_only=False, save_freq=4)
        model.fit(x, y, batch_size=8, epochs=2, callbacks=[cb], verbose=0)
    arts = set(artifact_paths(run.info.run_id))
    assert {"checkpoints/global_step_4/checkpoint.keras", "checkpoints/global_step_8/checkpoint.keras",
            "checkpoints/global_step_8/checkpoint_metrics.json"} <= arts
    with pytest.raises(InvalidParameterValue):
        MlflowModelCheckpointCallback(mode="best")


def test_the_learning_rate_from_a_plateau_callback_is_logged():
    x, y = data()
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=100.0)
    with mltrail.start_run() as run:
        dense_model().fit(x, y, epochs=3, callbacks=[plateau, MlflowCallback()], verbose=0)
    lr = values(run.info.run_id, "learning_rate")
    assert sorted(lr) == [0, 1, 2] and lr[2] < lr[0]


# ---------------------------------------------------------------------- the writer
def test_writer_batches_converts_and_skips_non_numbers():
    client = mltrail.MlflowClient()
    run = client.create_run("0")
    failures = FailureReport()
    writer = AsyncWriter(client, run.info.run_id, failures)
    n = 2 * MAX_METRICS_PER_BATCH + 500
    writer.add_metrics((f"m{i % 3}", np.float32(i), 1000 + i, i) for i in range(n))
    writer.add_metrics([("text", "not a number", 1, 0), ("ok", 1, 1, 0)])
    assert writer.flush(timeout=30)
    assert len(client.get_metric_history(run.info.run_id, "m0")) == (n + 2) // 3
    assert client.get_metric_history(run.info.run_id, "ok")[0].value == 1.0
    assert "text" not in client.get_run(run.info.run_id).data.metrics
    writer.close()
    assert failures.kinds == set()


def test_writer_keeps_existing_params_and_reports_each_failure_kind_once():
    client = mltrail.MlflowClient()
    run = client.create_run("0")
    client.log_param(run.info.run_id, "epochs", 5)
    failures = FailureReport()
    writer = AsyncWriter(client, run.info.run_id, failures)
    writer.log_params({"epochs": 2, "batch_size": 8})

    def boom():
        raise OSError("disk full")

    writer.submit("artifacts", boom)
    writer.submit("artifacts", boom)
    writer.close()
    assert client.get_run(run.info.run_id).data.params == {"epochs": "5", "batch_size": "8"}
    with pytest.warns(AutologWarning, match="could not log artifacts .*disk full") as record:
        failures.emit()
        failures.emit()
    assert len(record) == 1


def test_writer_stops_sending_to_a_store_that_keeps_failing():
    client = mltrail.MlflowClient()
    run = client.create_run("0")
    client.delete_run(run.info.run_id)
    failures = FailureReport(silent=True)
    writer = AsyncWriter(client, run.info.run_id, failures)
    for step in range(10):
        writer.add_metrics([("loss", 1.0, 1, step)])
        assert writer.flush(timeout=30)
    assert writer._metric_failures == 3 and failures.kinds == {"metrics"}
    writer.close()
    failures.emit()  # silent: nothing raised, nothing warned
    client.restore_run(run.info.run_id)
    assert client.get_metric_history(run.info.run_id, "loss") == []
