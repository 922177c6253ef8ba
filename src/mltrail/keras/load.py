"""Load Keras models saved with the `keras` flavor (or the `tensorflow` one), as MLflow 3's `mlflow.keras` does."""

from __future__ import annotations

import os
from typing import Any

from mltrail._keras_common.loading import KERAS, flavor_conf, load_flavor
from mltrail.models.mlmodel import Model


def load_model(model_uri: str | os.PathLike[str], dst_path: str | None = None,
               custom_objects: dict[str, Any] | None = None, load_model_kwargs: dict[str, Any] | None = None,
               allow_pickle: bool = False) -> Any:
    """Load a Keras model from any model URI (models:/, runs:/, a path, an artifact URI).

    Models saved with the `tensorflow` flavor (`mltrail.tensorflow`, `mlflow.tensorflow`) load too.

    Args:
        dst_path: download the model here (default: used in place when local, else a temp dir).
        custom_objects: the `custom_objects` argument of `keras.saving.load_model`.
        load_model_kwargs: extra arguments for `keras.saving.load_model`.
        allow_pickle: (mltrail only) load the cloudpickled custom objects of a model that
            `mlflow.tensorflow` saved, which runs code from the model's files; the environment
            variable `MLTRAIL_ALLOW_PICKLE=true` is needed too.

    Returns:
        A Keras model; for an exported model (`save_exported_model=True`) the object
        `tf.saved_model.load` returns, callable as `loaded.serve(x)`.
    """
    from mltrail.uris import resolve_model_uri

    local = resolve_model_uri(model_uri, dst_path)
    return load_flavor(local, Model.load(local), KERAS, custom_objects, load_model_kwargs, allow_pickle=allow_pickle)


def _load_pyfunc(path: str, meta: Model | None = None, allow_pickle: bool = False) -> Any:
    """The pyfunc implementation for a model directory (called by `mltrail.pyfunc.load_model`)."""
    from mltrail._keras_common.pyfunc_wrappers import wrap

    meta = meta if meta is not None else Model.load(path)
    _, conf = flavor_conf(path, meta, KERAS)
    model = load_flavor(path, meta, KERAS, for_inference=True, allow_pickle=allow_pickle)
    return wrap(model, conf, meta.get_input_schema())
