"""Autologging of Keras fit: what is logged, into which run, at which steps. Real tiny models, real SQLite."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from autolog_models import (
    FEATURES,
    artifact_paths,
    data,
    dense_model,
    models_of,
    only_run,
    steps,
    two_input_model,
    values,
)

import mltrail
import mltrail.tensorflow as mtf
from mltrail.errors import InvalidParameterValue
from mltrail.models import Model
from mltrail.tensorflow.autolog import autolog, get_autolog_config
from mltrail.tensorflow.callback import load_checkpoint

pytestmark = pytest.mark.tf


@pytest.fixture(autouse=True)
def _autolog_off(tracking):
    yield
    autolog(disable=True)


def test_one_fit_logs_params_metrics_artifacts_datasets_and_model():
    autolog()
    x, y = data()
    model = dense_model()
    with mltrail.start_run() as run:
        history = model.fit(x, y, batch_size=8, epochs=2, validation_split=0.25, verbose=0)
    rid = run.info.run_id
    r = mltrail.get_run(rid)
    p = r.data.params
    # fit's arguments as MLflow logs them: as given, or fit's default (None stays "None")
    assert (p["batch_size"], p["epochs"], p["steps_per_epoch"], p["validation_steps"]) == ("8", "2", "None", "None")
    assert (p["validation_split"], p["shuffle"], p["initial_epoch"], p["class_weight"]) == ("0.25", "True", "0", "None")
    assert (p["sample_weight"], p["validation_batch_size"], p["validation_freq"]) == ("None", "None", "1")
    assert (p["train_samples"], p["validation_samples"]) == ("24", "8")
    assert p["train_shape"] == f"(24, {FEATURES})" and p["train_target_shape"] == "(24,)"
    assert p["validation_shape"] == f"(8, {FEATURES})"
    assert p["opt_name"].startswith("adam") and float(p["opt_learning_rate"]) == pytest.approx(0.01)
    assert {"opt_epsilon", "opt_beta_1", "opt_beta_2", "opt_amsgrad"} <= set(p)
    n_params = model.count_params()
    assert (p["total_params"], p["trainable_params"], p["non_trainable_params"]) == (str(n_params), str(n_params), "0")
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert steps(rid, key) == [0, 1], key
        assert values(rid, key)[1] == pytest.approx(history.history[key][1])
    # MLflow's callback names each validation result `validation_<name>` too (ours at the epoch's step)
    for key in ("loss", "accuracy"):
        assert steps(rid, f"validation_{key}") == [0, 1]
        assert list(values(rid, f"validation_{key}").values()) == pytest.approx(history.history[f"val_{key}"])
    assert "learning_rate" not in r.data.metrics  # a constant learning rate is a param, not a curve
    arts = artifact_paths(rid)
    assert {"model_summary.txt", "model_config.json"} <= set(arts)
    assert any(a.startswith("tensorboard_logs/train/events.out.tfevents") for a in arts)
    assert any(a.startswith("tensorboard_logs/validation/") for a in arts)
    client = mltrail.MlflowClient()
    summary = open(client.download_artifacts(rid, "model_summary.txt")).read()
    assert "Total params" in summary and "dense" in summary
    config = json.load(open(client.download_artifacts(rid, "model_config.json")))
    assert config["class_name"] == "Sequential" and len(config["config"]["layers"]) >= 2
    contexts = sorted(t.value for d in r.inputs.dataset_inputs for t in d.tags if t.key == "mlflow.data.context")
    assert contexts == ["eval", "train"]
    [logged] = models_of(rid)
    meta = Model.load(logged.model_uri)
    assert meta.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == [-1, FEATURES]
    assert meta.saved_input_example_info is None  # log_input_examples defaults to False
    np.testing.assert_allclose(mtf.load_model(logged.model_uri)(x).numpy(), model(x).numpy(), atol=1e-6)
    assert mltrail.active_run() is None  # the user's run was ended by the user, not by autolog


def test_without_an_active_run_autolog_starts_and_ends_its_own():
    autolog(log_models=False, extra_tags={"team": "vision"})
    x, y = data()
    dense_model().fit(x, y, epochs=1, verbose=0)
    assert mltrail.active_run() is None
    r = only_run()
    assert r.info.status == "FINISHED"
    assert r.data.tags["mlflow.autologging"] == "tensorflow" and r.data.tags["team"] == "vision"
    assert steps(r.info.run_id, "loss") == [0]


def test_with_an_active_run_autolog_logs_into_it_and_leaves_it_open():
    autolog(log_models=False, extra_tags={"team": "vision"})
    x, y = data()
    run = mltrail.start_run()
    dense_model().fit(x, y, epochs=1, verbose=0)
    assert mltrail.active_run().info.run_id == run.info.run_id
    r = mltrail.get_run(run.info.run_id)
    assert r.info.status == "RUNNING" and "team" not in r.data.tags  # extra_tags are for autolog's own runs
    assert "loss" in r.data.metrics
    mltrail.end_run()


def test_a_failing_fit_ends_autologs_run_as_failed_and_raises():
    autolog(log_models=False)
    model = dense_model()
    with pytest.raises(ValueError):
        model.fit(np.zeros((4, FEATURES + 1), "float32"), np.zeros(4), epochs=1, verbose=0)
    assert mltrail.active_run() is None
    assert only_run().info.status == "FAILED"


def test_fit_twice_in_one_run_continues_epochs_and_steps():
    autolog(log_models=False, log_every_n_steps=2)
    x, y = data()  # 32 rows, batch 8: 4 steps per epoch
    model = dense_model()
    with mltrail.start_run() as run:
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    rid = run.info.run_id
    assert steps(rid, "loss") == [0, 1, 2, 3]
    assert steps(rid, "batch/loss") == [2, 4, 6, 8, 10, 12, 14, 16]
    assert mltrail.get_run(rid).data.params["epochs"] == "2"  # the first fit's value stays


def test_initial_epoch_is_respected():
    autolog(log_models=False)
    x, y = data()
    with mltrail.start_run() as run:
        dense_model().fit(x, y, epochs=4, initial_epoch=2, verbose=0)
    assert steps(run.info.run_id, "loss") == [2, 3]
    assert mltrail.get_run(run.info.run_id).data.params["initial_epoch"] == "2"


@pytest.mark.parametrize("every_epoch", [True, False])
def test_per_step_and_per_epoch_metrics(every_epoch):
    autolog(log_models=False, log_every_epoch=every_epoch, log_every_n_steps=3)
    x, y = data()  # batch 4: 8 steps per epoch, 16 in all
    with mltrail.start_run() as run:
        dense_model().fit(x, y, batch_size=4, epochs=2, validation_split=0.25, verbose=0)
    rid = run.info.run_id
    metrics = set(mltrail.get_run(rid).data.metrics)
    assert steps(rid, "val_loss") == [0, 1]  # validation always shares the epoch axis
    # 24 training rows at batch 4: 6 steps per epoch, 12 in all
    if every_epoch:
        assert steps(rid, "loss") == [0, 1] and steps(rid, "batch/loss") == [3, 6, 9, 12]
        assert {"batch/accuracy", "accuracy"} <= metrics
    else:
        assert steps(rid, "loss") == [3, 6, 9, 12] and not any(m.startswith("batch/") for m in metrics)


def test_tf_data_pipeline_with_validation_data():
    import tensorflow as tf

    autolog(log_models=True)
    x, y = data()
    train = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(32, seed=0).batch(8).prefetch(2)
    val = tf.data.Dataset.from_tensor_slices((x[:8], y[:8])).batch(4)
    with mltrail.start_run() as run:
        dense_model().fit(train, validation_data=val, epochs=2, verbose=0)
    rid = run.info.run_id
    r = mltrail.get_run(rid)
    p = r.data.params
    # the batch size read from the pipeline, as MLflow does; steps as given
    assert (p["batch_size"], p["train_batches"], p["steps_per_epoch"], p["validation_batches"]) == ("8", "4", "None", "2")
    assert "TensorSpec" in p["train_element_spec"]
    assert steps(rid, "val_loss") == [0, 1] and steps(rid, "loss") == [0, 1]
    contexts = sorted(t.value for d in r.inputs.dataset_inputs for t in d.tags if t.key == "mlflow.data.context")
    assert contexts == ["eval", "train"]
    [logged] = models_of(rid)
    assert Model.load(logged.model_uri).signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == [-1, FEATURES]


def test_two_input_functional_model_with_input_example():
    autolog(log_input_examples=True)
    rng = np.random.default_rng(0)
    a, b, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 2)), rng.normal(size=(16, 1))
    model = two_input_model()
    with mltrail.start_run() as run:
        model.fit([a, b], y, batch_size=8, epochs=1, verbose=0)
    p = mltrail.get_run(run.info.run_id).data.params
    assert p["train_shape"] == "[(16, 3), (16, 2)]" and p["train_samples"] == "16"
    [logged] = models_of(run.info.run_id)
    meta = Model.load(logged.model_uri)
    assert [s["name"] for s in meta.signature.inputs.to_dict()] == ["a", "b"]
    example = meta.load_input_example(logged.artifact_location)
    np.testing.assert_allclose(example["a"], a[:5])
    loaded = mltrail.pyfunc.load_model(logged.model_uri)
    np.testing.assert_allclose(loaded.predict({"a": a[:2], "b": b[:2]}), model([a[:2], b[:2]]).numpy(), atol=1e-5)


def test_early_stopping_with_restore_best_weights():
    autolog(log_models=False)
    x, y = data()
    # min_delta so large that no epoch improves on the first: stops after epoch 1, restores epoch 0
    es = keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=100.0, restore_best_weights=True)
    with mltrail.start_run() as run:
        history = dense_model().fit(x, y, epochs=5, callbacks=[es], verbose=0)
    rid = run.info.run_id
    r = mltrail.get_run(rid)
    assert len(history.epoch) == 2
    assert (r.data.params["monitor"], r.data.params["patience"], r.data.params["min_delta"]) == ("loss", "1", "-100.0") \
        or (r.data.params["monitor"], r.data.params["patience"]) == ("loss", "1")
    assert (r.data.params["restore_best_weights"], r.data.params["baseline"]) == ("True", "None")
    assert r.data.metrics["stopped_epoch"] == 1 and r.data.metrics["restored_epoch"] == 0
    # the restored model's metrics are each curve's last point
    assert values(rid, "loss")[2] == pytest.approx(history.history["loss"][0])
    assert r.data.metrics["loss"] == pytest.approx(history.history["loss"][0])


def test_learning_rate_is_logged_when_a_schedule_changes_it():
    autolog(log_models=False)
    x, y = data()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    with mltrail.start_run() as run:
        dense_model(optimizer=keras.optimizers.SGD(schedule)).fit(x, y, batch_size=16, epochs=2, verbose=0)
    lr = values(run.info.run_id, "learning_rate")
    assert sorted(lr) == [0, 1] and lr[0] == pytest.approx(0.1 * 0.5 ** 2) and lr[1] == pytest.approx(0.1 * 0.5 ** 4)
    with mltrail.start_run() as run:
        scheduler = keras.callbacks.LearningRateScheduler(lambda epoch: 0.05 / (epoch + 1))
        dense_model().fit(x, y, epochs=2, callbacks=[scheduler], verbose=0)
    lr = values(run.info.run_id, "learning_rate")
    assert lr == pytest.approx({0: 0.05, 1: 0.025})


def test_nested_runs_each_get_their_own_logs():
    optuna = pytest.importorskip("optuna")
    autolog(log_models=False)
    x, y = data()

    def objective(trial):
        with mltrail.start_run(nested=True):
            model = dense_model(units=trial.suggest_int("units", 2, 4))
            history = model.fit(x, y, epochs=1, verbose=0)
            return history.history["loss"][-1]

    with mltrail.start_run() as parent:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        optuna.create_study().optimize(objective, n_trials=2)
    trials = mltrail.search_runs(filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
                                 output_format="list")
    assert len(trials) == 2
    for t in trials:
        assert steps(t.info.run_id, "loss") == [0] and "opt_name" in t.data.params
    assert "loss" not in mltrail.get_run(parent.info.run_id).data.metrics


def test_user_tensorboard_callback_directory_is_logged(tmp_path):
    autolog(log_models=False)
    x, y = data()
    tb = keras.callbacks.TensorBoard(str(tmp_path / "tb"), write_graph=False)
    with mltrail.start_run() as run:
        dense_model().fit(x, y, epochs=1, callbacks=[tb], verbose=0)
    assert any(a.startswith("tensorboard_logs/train/") for a in artifact_paths(run.info.run_id))
    assert (tmp_path / "tb" / "train").is_dir()  # the user's directory is theirs: not removed


def test_checkpoints_best_only_and_every_epoch():
    autolog(log_models=False)
    x, y = data()
    model = dense_model()
    with mltrail.start_run() as run:
        model.fit(x, y, epochs=2, validation_split=0.25, verbose=0)
    rid = run.info.run_id
    arts = artifact_paths(rid)
    assert {"checkpoints/latest_checkpoint.keras", "checkpoints/latest_checkpoint_metrics.json"} <= set(arts)
    tag = mltrail.get_run(rid).data.tags["mlflow.latest_checkpoint_artifact"]
    assert tag == "checkpoints/latest_checkpoint.keras"
    info = json.load(open(mltrail.MlflowClient().download_artifacts(rid, "checkpoints/latest_checkpoint_metrics.json")))
    assert {"val_loss", "loss", "epoch", "global_step"} <= set(info)
    loaded = load_checkpoint(run_id=rid)
    assert isinstance(loaded, keras.Model) and loaded.count_params() == model.count_params()

    autolog(log_models=False, checkpoint_save_best_only=False, checkpoint_save_weights_only=True)
    with mltrail.start_run() as run:
        model.fit(x, y, epochs=2, verbose=0)
    rid = run.info.run_id
    assert {"checkpoints/epoch_0/checkpoint.weights.h5", "checkpoints/epoch_1/checkpoint.weights.h5",
            "checkpoints/epoch_1/checkpoint_metrics.json"} <= set(artifact_paths(rid))
    fresh = dense_model()
    load_checkpoint(fresh, run_id=rid, epoch=1)
    np.testing.assert_allclose(fresh(x).numpy(), model(x).numpy(), atol=1e-6)


def test_checkpoint_keeps_the_best_weights_not_the_last():
    autolog(log_models=False, checkpoint_monitor="loss", checkpoint_mode="max")
    x, y = data()
    model = dense_model()
    with mltrail.start_run() as run:
        history = model.fit(x, y, epochs=3, verbose=0)
    best_epoch = int(np.argmax(history.history["loss"]))
    rid = run.info.run_id
    info = json.load(open(mltrail.MlflowClient().download_artifacts(rid, "checkpoints/latest_checkpoint_metrics.json")))
    assert info["epoch"] == best_epoch and info["loss"] == pytest.approx(max(history.history["loss"]))
    if best_epoch != 2:  # the written checkpoint is the best epoch's model, and training left the model as it was
        loaded = load_checkpoint(run_id=rid)
        assert not np.allclose(loaded(x).numpy(), model(x).numpy())


def test_disable_gives_keras_its_fit_back():
    original = keras.Model.fit
    autolog(log_models=False)
    assert keras.Model.fit is not original and get_autolog_config() is not None
    autolog(log_models=False, log_every_n_steps=5)  # calling again reconfigures, never wraps twice
    assert keras.Model.fit.__wrapped__ is original
    autolog(disable=True)
    assert keras.Model.fit is original and get_autolog_config() is None
    x, y = data()
    dense_model().fit(x, y, epochs=1, verbose=0)
    assert mltrail.search_runs(output_format="list") == []


def test_exclusive_leaves_user_runs_alone():
    autolog(log_models=False, exclusive=True)
    x, y = data()
    with mltrail.start_run() as run:
        dense_model().fit(x, y, epochs=1, verbose=0)
    assert mltrail.get_run(run.info.run_id).data.metrics == {}
    dense_model().fit(x, y, epochs=1, verbose=0)  # no user run: autolog's own run is logged
    assert len(mltrail.search_runs(output_format="list")) == 2


def test_mltrail_autolog_and_the_keras_flavors_autolog_enable_it():
    import mltrail.keras

    mltrail.autolog(log_models=False)
    assert get_autolog_config() is not None and not get_autolog_config().log_models
    mltrail.keras.autolog(disable=True)
    assert get_autolog_config() is None
    mtf.autolog(log_every_n_steps=3)
    assert get_autolog_config().log_every_n_steps == 3
    mltrail.keras.autolog(log_models=False)  # MLflow's keras flavor: its own tag and optimizer names
    assert get_autolog_config().flavor == "keras"
    from mltrail.tensorflow.callback import KerasMlflowCallback, MlflowCallback

    assert mtf.MlflowCallback is MlflowCallback and mtf.MLflowCallback is MlflowCallback
    assert mltrail.keras.MlflowCallback is KerasMlflowCallback and mltrail.keras.MLflowCallback is KerasMlflowCallback
    mtf.autolog(disable=True)


@pytest.mark.parametrize("kwargs", [{"log_every_n_steps": 0}, {"log_every_epoch": False},
                                    {"checkpoint_mode": "best"}, {"checkpoint_save_freq": "batch"}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(InvalidParameterValue):
        autolog(**kwargs)
    assert get_autolog_config() is None


def test_registered_model_name_registers_each_trained_model():
    autolog(registered_model_name="clf", checkpoint=False)
    x, y = data()
    dense_model().fit(x, y, epochs=1, verbose=0)
    dense_model().fit(x, y, epochs=1, verbose=0)
    versions = mltrail.MlflowClient().search_model_versions("name='clf'")
    runs = {r.info.run_id for r in mltrail.search_runs(output_format="list")}
    assert sorted(v.version for v in versions) == [1, 2] and {v.run_id for v in versions} == runs


def test_checkpoint_of_the_last_epoch_survives_early_stopping_restoring_an_earlier_one():
    autolog(log_models=False, checkpoint_monitor="loss")
    x, y = data()
    es = keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=100.0, restore_best_weights=True)
    model = dense_model()
    with mltrail.start_run() as run:
        history = model.fit(x, y, epochs=5, callbacks=[es], verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 2 and losses[1] < losses[0]  # Adam at 0.01 improves on 32 rows
    rid = run.info.run_id
    info = json.load(open(mltrail.MlflowClient().download_artifacts(rid, "checkpoints/latest_checkpoint_metrics.json")))
    assert info["epoch"] == 1
    # the model holds epoch 0's weights again (restored); the checkpoint is epoch 1's
    loaded = load_checkpoint(run_id=rid)
    assert not np.allclose(loaded(x).numpy(), model(x).numpy())
