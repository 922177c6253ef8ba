"""Load a saved model of either flavor, `tensorflow` or `keras`, from its local directory.

Both flavor packages call `load_flavor`: each prefers its own flavor's MLmodel entry and falls back
on the other's, so `mltrail.tensorflow.load_model` and `mltrail.keras.load_model` read models that
mltrail or the real MLflow saved with either flavor. Layouts read (MLflow's and ours):

- `tensorflow`: `data/model.keras`, `data/model.h5` or a SavedModel in `data/model/` (the entry's
  `model_file` and `save_format` say which when mltrail wrote it), or `tf2model/` for a tf.Module;
- `keras` (MLflow 3): `data/model.keras`, or with `save_exported_model: true` an exported SavedModel
  in `data/model/`.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from mltrail._keras_common.custom_objects import load_pickled, pickled_files, resolve_custom_objects
from mltrail._paths import resolve_under
from mltrail.errors import InvalidParameterValue, MltrailWarning
from mltrail.models.mlmodel import Model
from mltrail.models.pickle_opt_in import pickle_allowed, pickle_refused

TENSORFLOW = "tensorflow"
KERAS = "keras"
DATA = "data"
# save_format spellings (ours and MLflow's) -> the format: "keras", "h5" or "tf" (a SavedModel)
SAVE_FORMATS = {"keras": "keras", "h5": "h5", "tf": "tf", "tf_saved_model": "tf", "saved_model": "tf",
                "savedmodel": "tf"}
# the format -> its file (or directory) under data/
MODEL_FILES = {"keras": "model.keras", "h5": "model.h5", "tf": "model"}


def flavor_conf(path: str, meta: Model, prefer: str) -> tuple[str, dict[str, Any]]:
    """(flavor name, MLmodel entry) of the model: `prefer`'s entry when it has one, else the other flavor's."""
    for name in (prefer, KERAS if prefer == TENSORFLOW else TENSORFLOW):
        conf = meta.flavors.get(name)
        if isinstance(conf, dict):
            return name, conf
    raise InvalidParameterValue(
        f"The model at {path!r} has no {prefer!r} flavor (its flavors: {sorted(meta.flavors)}); it was not saved "
        "by mltrail.tensorflow / mltrail.keras (or mlflow.tensorflow / mlflow.keras).")


def tensorflow_model_file(path: str, conf: dict[str, Any]) -> tuple[str, str]:
    """(file or directory, format) of a `tensorflow`-flavor model; also reads MLflow's layouts."""
    fmt = str(conf.get("save_format") or "")
    rel = conf.get("model_file")
    if rel:
        return resolve_under(path, str(rel)), SAVE_FORMATS.get(fmt, fmt) or "keras"
    data = resolve_under(path, str(conf.get("data") or DATA))
    if conf.get("model_type") == "tf2-module" or conf.get("saved_model_dir"):
        return resolve_under(path, str(conf.get("saved_model_dir") or "tf2model")), "tf"
    # MLflow writes data/model.keras with save_format "tf" on TensorFlow >= 2.16: trust the files
    for candidate, kind in (("model.keras", "keras"), ("model.h5", "h5"), ("model", "tf")):
        full = os.path.join(data, candidate)
        if os.path.exists(full):
            if kind == "tf" and not os.path.exists(os.path.join(full, "saved_model.pb")):
                continue
            return full, kind
    raise InvalidParameterValue(
        f"Cannot find the saved model under {path!r}: expected data/model.keras, data/model.h5 or a SavedModel "
        "in data/model.")


def keras_model_file(path: str, conf: dict[str, Any]) -> tuple[str, str]:
    """(file or directory, format) of a `keras`-flavor model, where MLflow 3's `mlflow.keras` puts it."""
    data = resolve_under(path, str(conf.get("data") or "model"))  # MLflow's default when the key is absent
    exported = bool(conf.get("save_exported_model"))
    target = os.path.join(data, "model") if os.path.isdir(data) else data
    file = target if exported else target + ".keras"
    if not os.path.exists(file):
        what = "an exported SavedModel in" if exported else "the Keras file"
        raise InvalidParameterValue(
            f"Cannot find the saved model under {path!r}: its keras flavor (save_exported_model={exported}) expects "
            f"{what} {os.path.relpath(file, path)!r}.")
    return file, "tf" if exported else "keras"


def _keras_reason(error: Exception) -> str:
    """The last line of Keras' (often very long) deserialization message: the one that names the cause."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[-1] if lines else type(error).__name__)[:600]


def _keras_load(file: str, fmt: str, objects: dict[str, Any], kwargs: dict[str, Any]) -> Any:
    import keras

    try:
        return keras.saving.load_model(file, custom_objects=objects or None, **kwargs)
    except (TypeError, ValueError) as e:
        if fmt != "h5" or "compile" in kwargs:
            raise
        # Keras 3 cannot always rebuild an HDF5 file's training config (a loss saved by name, say):
        # the model itself is intact, so return it uncompiled rather than not at all.
        model = keras.saving.load_model(file, custom_objects=objects or None, compile=False, **kwargs)
        warnings.warn(f"Loaded the HDF5 model at {file!r} without its training configuration (Keras could not "
                      f"restore it: {e}); call model.compile(...) before training it further.", MltrailWarning,
                      stacklevel=4)
        return model


def load_flavor(path: str, meta: Model, prefer: str, custom_objects: dict[str, Any] | None = None,
                load_model_kwargs: dict[str, Any] | None = None, saved_model_kwargs: dict[str, Any] | None = None,
                for_inference: bool = False, allow_pickle: bool = False) -> Any:
    """Load the model saved in the local directory `path` (whose MLmodel is `meta`).

    Args:
        prefer: the flavor whose entry is read first ("tensorflow" or "keras").
        custom_objects: Keras custom objects; they override those recorded or pickled with the model.
        load_model_kwargs: extra arguments for `keras.saving.load_model`.
        saved_model_kwargs: extra arguments for `tf.saved_model.load`.
        for_inference: skip restoring the optimizer and loss (faster, never needed to predict).
        allow_pickle: opt in to MLflow's cloudpickled custom objects (with `MLTRAIL_ALLOW_PICKLE=true`).

    Returns:
        A Keras model, or for a SavedModel the object `tf.saved_model.load` returns.
    """
    name, conf = flavor_conf(path, meta, prefer)
    file, fmt = tensorflow_model_file(path, conf) if name == TENSORFLOW else keras_model_file(path, conf)
    if fmt == "tf":
        import tensorflow as tf

        return tf.saved_model.load(file, **(saved_model_kwargs or {}))
    objects, missing = resolve_custom_objects(conf.get("custom_objects"), custom_objects)
    pickles = pickled_files(os.path.dirname(file))
    unpickle = bool(pickles) and pickle_allowed(allow_pickle)
    if unpickle:
        objects = {**load_pickled(pickles, allow_pickle), **objects}
    kwargs: dict[str, Any] = {"compile": False} if for_inference else {}
    kwargs.update(load_model_kwargs or {})
    try:
        return _keras_load(file, fmt, objects, kwargs)
    except (TypeError, ValueError) as e:
        # without the opt-in the pickles were skipped: a model that needs them fails here, and says why
        if pickles and not unpickle:
            refused = pickle_refused("custom objects", ", ".join(pickles), allow_pickle)
            raise InvalidParameterValue(
                f"{refused.message} Alternatively import the module(s) that define them and pass "
                f"custom_objects={{name: object}}. Keras said: {_keras_reason(e)}") from e
        if missing:
            raise InvalidParameterValue(
                f"Cannot load the Keras model at {path!r}: it uses custom objects {missing} that are not available "
                "in this process. Import the module(s) that define them first, or pass "
                f"custom_objects={{name: object}}. Keras said: {_keras_reason(e)}") from e
        raise
