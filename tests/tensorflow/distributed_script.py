"""The training script test_distributed.py runs in subprocesses: fits under tf.distribute strategies.

`python distributed_script.py mirrored DB OUT.json`: splits the CPU into 2 logical devices, fits the
same tiny model plainly and under `MirroredStrategy`, with autolog and with the explicit callback, and
writes what each run holds to OUT.json.

`python distributed_script.py worker DB [mwms]`: one process of a distributed job (the parent sets
TF_CONFIG or a launcher's RANK): an autologged fit, then a fit with `MlflowCallback` and no run,
under `MultiWorkerMirroredStrategy` with `mwms`, else alone (a launcher's independent processes).
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import tensorflow as tf  # noqa: E402

FEATURES = 4


def split_cpu() -> None:
    """Two logical CPU devices (before TensorFlow initialises), so MirroredStrategy has 2 replicas."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


def data(n: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(n, FEATURES)).astype("float32")
    return x, (x.sum(1) > FEATURES / 2).astype("int32")


def classifier():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input([FEATURES]), keras.layers.Dense(3, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def multi_worker_model():
    """A model Keras 3 can fit under MultiWorkerMirroredStrategy with TF 2.21 (see README: its limits).

    Keras reduces a batch across workers before building, which fails for a tuple batch, so the data
    is x alone (the loss is the model's own, an activity penalty), and it averages each step's results
    over axis 0 across workers, which fails for scalars, so the steps return them with shape [1].
    """
    import keras

    class Rank1Results(keras.Sequential):
        def train_step(self, data):
            return {k: tf.reshape(v, [1]) for k, v in super().train_step(data).items()}

        def test_step(self, data):
            return {k: tf.reshape(v, [1]) for k, v in super().test_step(data).items()}

    keras.utils.set_random_seed(0)
    model = Rank1Results([keras.Input([FEATURES]), keras.layers.Dense(3, activation="relu"),
                          keras.layers.Dense(2), keras.layers.ActivityRegularization(l2=0.1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    return model


def summary(run_id: str) -> dict:
    """What a run holds, with the parts that differ between two equal fits (values, file names) left out."""
    import mltrail

    client = mltrail.MlflowClient()
    run = client.get_run(run_id)

    def paths(path=None):
        out = []
        for f in client.list_artifacts(run_id, path):
            out.extend(paths(f.path) if f.is_dir else [f.path])
        return out

    models = [m for m in mltrail.search_logged_models(output_format="list") if m.source_run_id == run_id]
    return {
        "params": run.data.params,
        "metric_steps": {k: sorted(m.step for m in client.get_metric_history(run_id, k)) for k in run.data.metrics},
        # TensorBoard event files are named after the host, time and process: keep their folders
        "artifacts": sorted({p.rsplit("/", 1)[0] + "/" if "tfevents" in p else p for p in paths()}),
        "models": len(models),
        "status": run.info.status,
    }


def mirrored(db: str, out: str) -> None:
    split_cpu()
    import keras

    import mltrail

    mltrail.set_tracking_uri(f"sqlite:///{db}")
    x, y = data()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    result: dict = {"replicas": strategy.num_replicas_in_sync}
    for how in ("plain", "mirrored"):
        for logger in ("autolog", "callback"):
            keras.backend.clear_session()  # Keras numbers its optimizers' names ("adam_1") per session
            if how == "mirrored":
                with strategy.scope():
                    model = classifier()
            else:
                model = classifier()
            if logger == "autolog":
                mltrail.tensorflow.autolog(log_every_n_steps=1)
                model.fit(x, y, epochs=2, batch_size=8, validation_split=0.25, verbose=0)
                mltrail.tensorflow.autolog(disable=True)
                run_id = mltrail.last_active_run().info.run_id
            else:
                with mltrail.start_run() as run:
                    model.fit(x, y, epochs=2, batch_size=8, validation_split=0.25, verbose=0,
                              callbacks=[mltrail.tensorflow.MlflowCallback(log_every_n_steps=1)])
                run_id = run.info.run_id
            entry = summary(run_id)
            if logger == "autolog":
                logged = next(m for m in mltrail.search_logged_models(output_format="list")
                              if m.source_run_id == run_id)
                loaded = mltrail.pyfunc.load_model(f"models:/{logged.model_id}")
                entry["prediction_shape"] = list(np.asarray(loaded.predict(x[:3])).shape)
                entry["same_predictions"] = bool(np.allclose(loaded.predict(x[:3]), model.predict(x[:3], verbose=0),
                                                             atol=1e-6))
            result[f"{how}/{logger}"] = entry
    with open(out, "w") as f:
        json.dump(result, f)


def worker(db: str, multi_worker: bool) -> None:
    import mltrail

    mltrail.set_tracking_uri(f"sqlite:///{db}")
    if multi_worker:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        with strategy.scope():
            model = multi_worker_model()
        x = data()[0]
        fit_args: dict = {"x": x, "validation_data": (x[:8],)}
    else:
        model = classifier()
        x, y = data()
        fit_args = {"x": x, "y": y, "validation_split": 0.25}
    mltrail.tensorflow.autolog()
    model.fit(epochs=2, batch_size=8, verbose=0, **fit_args)
    mltrail.tensorflow.autolog(disable=True)
    model.fit(epochs=1, batch_size=8, verbose=0, callbacks=[mltrail.tensorflow.MlflowCallback()], **fit_args)
    print("worker done", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "mirrored":
        mirrored(sys.argv[2], sys.argv[3])
    else:
        worker(sys.argv[2], multi_worker=sys.argv[3:] == ["mwms"])
