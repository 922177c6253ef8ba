"""Autologging never breaks or changes training: broken stores, odd inputs, TensorBoard missing."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
from autolog_models import FEATURES, artifact_paths, data, dense_model, only_run, steps

import mltrail
from mltrail.tensorflow._async_writer import AutologWarning
from mltrail.tensorflow.autolog import autolog
from mltrail.tensorflow.callback import MlflowCallback

pytestmark = pytest.mark.tf


@pytest.fixture(autouse=True)
def _autolog_off(tracking):
    yield
    autolog(disable=True)


def _kinds(record) -> list[str]:
    """The failure kinds named by the AutologWarnings in a pytest.warns record."""
    out = []
    for w in record:
        if issubclass(w.category, AutologWarning):
            m = re.match(r"mltrail could not log (.+?) to the tracking store", str(w.message))
            assert m, str(w.message)
            out.append(m.group(1))
    return out


class _AtEpochEnd(keras.callbacks.Callback):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.fn()


def test_a_store_that_breaks_mid_fit_gives_one_warning_per_kind_and_training_finishes(tracking):
    db = tracking[len("sqlite:///"):]

    def drop_metrics_table():
        with sqlite3.connect(db) as conn:
            conn.execute("DROP TABLE metrics")

    autolog(log_every_n_steps=1)
    x, y = data()
    with pytest.warns(AutologWarning) as record:
        history = dense_model().fit(x, y, batch_size=4, epochs=3, callbacks=[_AtEpochEnd(drop_metrics_table)],
                                    verbose=0)
    assert history.epoch == [0, 1, 2]  # training went on to the end
    kinds = _kinds(record)
    assert "metrics" in kinds and len(kinds) == len(set(kinds)), kinds
    assert mltrail.active_run() is None


def test_a_run_deleted_mid_fit_gives_one_metrics_warning():
    autolog(log_models=False, log_every_n_steps=1, checkpoint=False)
    x, y = data()
    with mltrail.start_run() as run:
        client = mltrail.MlflowClient()
        with pytest.warns(AutologWarning) as record:
            history = dense_model().fit(
                x, y, batch_size=4, epochs=3, verbose=0,
                callbacks=[_AtEpochEnd(lambda: client.delete_run(run.info.run_id))])
        client.restore_run(run.info.run_id)
    assert len(history.epoch) == 3
    kinds = _kinds(record)
    assert kinds.count("metrics") == 1 and len(kinds) == len(set(kinds)), kinds


def test_a_metric_name_the_store_refuses_costs_only_that_metric():
    autolog(log_models=False)
    x, y = data()
    model = dense_model()
    model.compile("adam", "sparse_categorical_crossentropy",
                  metrics=["accuracy", keras.metrics.SparseCategoricalAccuracy(name="acc@1")])
    with mltrail.start_run() as run, pytest.warns(AutologWarning) as record:
        model.fit(x, y, epochs=2, verbose=0)
    assert _kinds(record) == ["metrics"]
    metrics = mltrail.get_run(run.info.run_id).data.metrics
    assert "acc@1" not in metrics and steps(run.info.run_id, "accuracy") == [0, 1]


def test_no_tracking_store_means_no_logging_but_training_runs(monkeypatch, tmp_path):
    autolog(log_models=False)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's directory should be")
    mltrail.set_tracking_uri(f"sqlite:///{blocker}/db.sqlite")
    x, y = data()
    with pytest.warns(AutologWarning) as record:
        history = dense_model().fit(x, y, epochs=2, verbose=0)
    assert len(history.epoch) == 2 and _kinds(record) == ["the run"]


def test_warnings_set_to_errors_still_do_not_stop_training(tracking):
    db = tracking[len("sqlite:///"):]
    autolog(log_models=False)
    x, y = data()

    def drop():
        with sqlite3.connect(db) as conn:
            conn.execute("DROP TABLE metrics")

    with warnings.catch_warnings():
        warnings.simplefilter("error", AutologWarning)
        history = dense_model().fit(x, y, epochs=2, callbacks=[_AtEpochEnd(drop)], verbose=0)
    assert len(history.epoch) == 2


@pytest.mark.parametrize("logging_configured", [True, False])
def test_tensorboard_not_installed(tmp_path, logging_configured):
    """In a fresh interpreter where `tensorboard` cannot be imported: no logs, one info line, training fine.

    The line goes through `logging` when the program configured it, else straight to stderr.
    """
    script = tmp_path / "no_tb.py"
    setup = 'logging.basicConfig(level=logging.INFO, format="INFO %(name)s: %(message)s")' if logging_configured \
        else ""
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.modules["tensorboard"] = None  # importlib.util.find_spec("tensorboard") is None from here on
        import logging
        {setup}
        import numpy as np, keras, mltrail, mltrail.tensorflow
        mltrail.set_tracking_uri("sqlite:///{tmp_path}/t.db")
        mltrail.tensorflow.autolog(log_models=False)
        x = np.random.rand(16, 4).astype("float32"); y = (x.sum(1) > 2).astype("int32")
        m = keras.Sequential([keras.Input([4]), keras.layers.Dense(2, activation="softmax")])
        m.compile("adam", "sparse_categorical_crossentropy")
        for _ in range(2):
            m.fit(x, y, epochs=1, verbose=0)
            r = mltrail.last_active_run()
            print("ARTIFACTS", sorted(f.path for f in mltrail.MlflowClient().list_artifacts(r.info.run_id)))
            print("METRICS", sorted(r.data.metrics))
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLTRAIL_"))}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("ARTIFACTS ['model_config.json', 'model_summary.txt']") == 2, out.stdout
    assert out.stdout.count("METRICS ['loss']") == 2
    line = "INFO mltrail.tensorflow: autolog: TensorBoard is not installed" if logging_configured \
        else "mltrail: autolog: TensorBoard is not installed"
    assert out.stderr.count("TensorBoard is not installed") == 1 and line in out.stderr, out.stderr[-3000:]


def test_generator_input_is_not_consumed_by_autolog():
    autolog(log_models=True)  # no signature from a generator: the model is logged without one
    x, y = data()
    taken = []

    def batches():
        for i in range(4):
            taken.append(i)
            yield x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8]

    dense_model().fit(batches(), epochs=1, steps_per_epoch=4, verbose=0)
    assert taken == [0, 1, 2, 3]
    r = only_run()
    assert r.data.params["steps_per_epoch"] == "4" and "train_samples" not in r.data.params
    assert steps(r.info.run_id, "loss") == [0]


def test_py_dataset_input():
    x, y = data()

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8]

    autolog(log_models=False)
    dense_model().fit(Batches(), epochs=1, verbose=0)
    p = only_run().data.params
    assert (p["train_batches"], p["batch_size"], p["steps_per_epoch"]) == ("4", "8", "None")
    assert p["train_batch_shape"] == f"(8, {FEATURES})"


def test_dict_inputs_and_class_weight():
    autolog(log_models=True)
    rng = np.random.default_rng(0)
    inp = keras.Input([FEATURES], name="features")
    model = keras.Model({"features": inp}, keras.layers.Dense(2, activation="softmax")(inp))
    model.compile("adam", "sparse_categorical_crossentropy")
    x = {"features": rng.normal(size=(16, FEATURES)).astype("float32")}
    y = rng.integers(2, size=16)
    with mltrail.start_run() as run:
        model.fit(x, y, class_weight={0: 1.0, 1: 2.0}, epochs=1, verbose=0)
    r = mltrail.get_run(run.info.run_id)
    assert r.data.params["train_shape"] == f"{{'features': (16, {FEATURES})}}"
    assert r.data.params["class_weight"] == "{0: 1.0, 1: 2.0}"
    [logged] = [m for m in mltrail.search_logged_models(output_format="list") if m.source_run_id == run.info.run_id]
    from mltrail.models import Model

    assert [s["name"] for s in Model.load(logged.model_uri).signature.inputs.to_dict()] == ["features"]


def test_a_user_mlflow_callback_is_not_doubled():
    autolog(log_models=False)
    x, y = data()
    with mltrail.start_run() as run:
        dense_model().fit(x, y, epochs=2, callbacks=[MlflowCallback(run)], verbose=0)
    assert steps(run.info.run_id, "loss") == [0, 1]  # one point per epoch, not two
    assert "epochs" in mltrail.get_run(run.info.run_id).data.params  # autolog still logs fit's params


def test_a_callback_list_is_passed_through():
    autolog(log_models=False)
    x, y = data()
    model = dense_model()
    cbl = keras.callbacks.CallbackList([], add_history=True, model=model)
    model.fit(x, y, epochs=1, callbacks=cbl, verbose=0)
    r = only_run()
    assert r.data.params["epochs"] == "1" and r.info.status == "FINISHED"


def test_silent_autolog_says_nothing(caplog, tracking):
    db = tracking[len("sqlite:///"):]
    autolog(log_models=False, silent=True)
    x, y = data()

    def drop():
        with sqlite3.connect(db) as conn:
            conn.execute("DROP TABLE metrics")

    with warnings.catch_warnings():
        warnings.simplefilter("error", AutologWarning)
        caplog.set_level("INFO", logger="mltrail.tensorflow")
        dense_model().fit(x, y, epochs=2, callbacks=[_AtEpochEnd(drop)], verbose=0)
    assert [r for r in caplog.records if r.levelno >= 20 and r.name.startswith("mltrail")] == []


def test_the_fit_a_subclass_overrides_is_logged_once():
    autolog(log_models=False)
    x, y = data()

    class MyModel(keras.Sequential):
        def fit(self, *args, **kwargs):
            return super().fit(*args, **kwargs)

    keras.utils.set_random_seed(0)
    model = MyModel([keras.Input([FEATURES]), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)
    r = only_run()
    assert steps(r.info.run_id, "loss") == [0, 1]
    assert any(a.startswith("tensorboard_logs/") for a in artifact_paths(r.info.run_id))
