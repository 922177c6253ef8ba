"""Tiny Keras models for the keras-flavor tests (imported inside fixtures, so collection stays TF-free).

The custom layer lives in a real module so that a saved model can record it by reference.
"""

from __future__ import annotations

import keras
import numpy as np


class Halver(keras.layers.Layer):
    """A custom layer: Keras needs it (by registration or `custom_objects`) to load the model."""

    def call(self, x):
        return x * 0.5


class Unbuilt(keras.Model):
    """A subclassed model: no symbolic inputs, so nothing but a signature tells its input shapes."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(2)

    def call(self, x, training=False):
        return self.dense(x)


def mlp() -> keras.Model:
    keras.utils.set_random_seed(11)
    return keras.Sequential([keras.Input([4]), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)])


def with_custom_layer() -> keras.Model:
    keras.utils.set_random_seed(12)
    x = keras.Input((4,), name="x")
    return keras.Model(x, Halver()(keras.layers.Dense(2)(x)))


def two_inputs() -> keras.Model:
    keras.utils.set_random_seed(13)
    a = keras.Input((4,), name="a")
    b = keras.Input((3,), name="b")
    return keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Concatenate()([a, b])))


def rows(n: int = 3, width: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, width)).astype("float32")
