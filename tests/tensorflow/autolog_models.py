"""Tiny models, data and read-back helpers shared by the autologging and callback tests."""

from __future__ import annotations

import numpy as np

import mltrail

N, FEATURES = 32, 4


def data(n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, FEATURES)).astype("float32")
    return x, (x.sum(1) > FEATURES / 2).astype("int32")


def dense_model(optimizer=None, units: int = 3):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input([FEATURES]), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=optimizer or keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def two_input_model():
    import keras

    keras.utils.set_random_seed(0)
    a = keras.Input([3], name="a")
    b = keras.Input([2], name="b")
    h = keras.layers.Concatenate()([keras.layers.Dense(2)(a), b])
    model = keras.Model([a, b], keras.layers.Dense(1)(h))
    model.compile("sgd", "mse")
    return model


def steps(run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in mltrail.MlflowClient().get_metric_history(run_id, key))


def values(run_id: str, key: str) -> dict[int, float]:
    return {m.step: m.value for m in mltrail.MlflowClient().get_metric_history(run_id, key)}


def artifact_paths(run_id: str, path: str | None = None) -> list[str]:
    client = mltrail.MlflowClient()
    out: list[str] = []
    for f in client.list_artifacts(run_id, path):
        out.extend(artifact_paths(run_id, f.path) if f.is_dir else [f.path])
    return out


def only_run() -> mltrail.entities.Run:
    runs = mltrail.search_runs(output_format="list")
    assert len(runs) == 1, runs
    return runs[0]


def models_of(run_id: str) -> list:
    return [m for m in mltrail.search_logged_models(output_format="list") if m.source_run_id == run_id]
