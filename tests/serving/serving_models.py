"""Tiny Keras models and helpers for the serving tests (imported inside fixtures: collection stays TF-free)."""

from __future__ import annotations

import socket
import threading
import time

import keras
import numpy as np


def mlp(n_in: int = 20, n_out: int = 3) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input([n_in]), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(n_out, activation="softmax")])


def two_in_two_out() -> keras.Model:
    """Named inputs a (4,) and b (3,); named outputs y1 (2,) and y2 (1,)."""
    keras.utils.set_random_seed(1)
    a = keras.Input((4,), name="a")
    b = keras.Input((3,), name="b")
    h = keras.layers.Concatenate()([a, b])
    return keras.Model({"a": a, "b": b}, {"y1": keras.layers.Dense(2, name="y1")(h),
                                          "y2": keras.layers.Dense(1, name="y2")(h)})


def variable_length() -> keras.Model:
    """Input (batch, time, 4) with any number of time steps: requests with other lengths cannot merge."""
    keras.utils.set_random_seed(2)
    x = keras.Input((None, 4), name="seq")
    return keras.Model(x, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(x)))


class Gated:
    """Wraps a real pyfunc model: the first predict waits until the test opens the gate.

    While the model is held, the test's other requests queue up in the server, so they are merged
    into the next model call for certain. `calls` records each call's rows and params.
    """

    def __init__(self, model):
        self.model = model
        self.metadata = model.metadata
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.calls: list[tuple[object, object]] = []

    def predict(self, data, params=None):
        self.entered.set()
        self.gate.wait(60)
        rows = {k: v.shape for k, v in data.items()} if isinstance(data, dict) else data.shape
        self.calls.append((rows, params))
        return self.model.predict(data, params=params) if params else self.model.predict(data)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Nothing listens on `port`: connecting is refused, and it can be bound again (TIME_WAIT aside)."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class ThreadServer:
    """A real uvicorn server (httptools) on 127.0.0.1 in a background thread."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, http="httptools", access_log=False,
                                log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)


def random_rows(n: int, n_in: int = 20, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, n_in)).astype("float32")
