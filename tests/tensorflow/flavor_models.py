"""Tiny Keras models for the flavor tests (imported inside fixtures, so collection stays TF-free).

The custom classes live in a real module so that a saved model can record them by reference.
"""

from __future__ import annotations

import keras
import numpy as np


class Doubler(keras.layers.Layer):
    """A custom layer (for custom_objects in Functional models, which HDF5 can hold)."""

    def call(self, x):
        return x * 2.0


class TinySubclassed(keras.Model):
    """A subclassed model with a config, as Keras needs to rebuild it."""

    def __init__(self, units: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units)

    def call(self, x, training=False):
        return self.dense(x) * 2.0

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def sequential() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input([4]), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)])


def two_inputs() -> keras.Model:
    a = keras.Input((4,), name="a")
    b = keras.Input((3,), name="b")
    out = keras.layers.Dense(2)(keras.layers.Concatenate()([a, b]))
    return keras.Model([a, b], out)


def two_outputs() -> keras.Model:
    x = keras.Input((4,), name="x")
    return keras.Model(x, [keras.layers.Dense(2, name="y1")(x), keras.layers.Dense(1, name="y2")(x)])


def subclassed() -> keras.Model:
    m = TinySubclassed()
    m(np.zeros((1, 4), np.float32))
    return m


def custom_layer() -> keras.Model:
    x = keras.Input((4,), name="x")
    return keras.Model(x, Doubler()(keras.layers.Dense(2)(x)))


INPUTS = {
    "sequential": lambda: np.random.default_rng(0).uniform(size=(5, 4)).astype(np.float32),
    "two_inputs": lambda: {"a": np.random.default_rng(1).uniform(size=(5, 4)).astype(np.float32),
                           "b": np.random.default_rng(2).uniform(size=(5, 3)).astype(np.float32)},
    "subclassed": lambda: np.random.default_rng(3).uniform(size=(5, 4)).astype(np.float32),
    "custom_layer": lambda: np.random.default_rng(4).uniform(size=(5, 4)).astype(np.float32),
}
BUILDERS = {"sequential": sequential, "two_inputs": two_inputs, "subclassed": subclassed,
            "custom_layer": custom_layer}
CUSTOM_OBJECTS = {"subclassed": {"TinySubclassed": TinySubclassed}, "custom_layer": {"Doubler": Doubler}}
