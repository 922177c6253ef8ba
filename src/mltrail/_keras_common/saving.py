"""Steps that the `tensorflow` and `keras` flavors' `save_model` share."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

from mltrail.errors import InvalidParameterValue, MltrailWarning, ResourceAlreadyExists
from mltrail.models.signature import ModelSignature

# the distributions that install TensorFlow (any one of them pins the requirement)
TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-gpu", "tensorflow-intel")


def new_model_dir(path: str | os.PathLike[str]) -> str:
    """The absolute path of a model directory to create; refuses one that exists and is not empty."""
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise ResourceAlreadyExists(f"Cannot save the model to {path!r}: it already exists. Expected a new path.")
    return path


def coerce_signature(signature: Any) -> ModelSignature | None:
    """A ModelSignature from one (or its dict form); None stays None."""
    if signature is None or isinstance(signature, ModelSignature):
        return signature
    if isinstance(signature, dict):
        return ModelSignature.from_dict(signature)
    raise InvalidParameterValue(
        f"signature must be a ModelSignature (see mltrail.models.infer_signature); received "
        f"{type(signature).__name__}.")


def is_keras_model(model: Any) -> bool:
    """Whether `model` is a Keras model (without importing Keras when nothing has loaded it yet)."""
    if "keras" not in sys.modules and "tensorflow" not in sys.modules:
        return False
    import keras

    return isinstance(model, keras.Model)


def dir_size(path: str) -> int:
    """The total size in bytes of the files under `path`."""
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def infer_from_example(model: Any, example: Any) -> ModelSignature | None:
    """Input schema from the (normalized) example, output schema from running the model on it."""
    from mltrail._keras_common.pyfunc_wrappers import model_outputs
    from mltrail.models.signature import infer_signature

    try:
        output = model_outputs(model, example)
    except Exception as e:  # an example the model can't run on still documents the inputs
        warnings.warn(f"Could not run the model on the input example to infer its outputs ({e}); the signature "
                      "describes the inputs only.", MltrailWarning, stacklevel=4)
        output = None
    return infer_signature(example, output)
