"""Save and log Keras 3 models in MLflow 3's `keras` flavor layout.

The model directory holds `MLmodel`, the environment files and `data/`: `data/keras_module.txt`
("keras"), and the model as `data/model.keras` (Keras' native file, `model.save`) or, with
`save_exported_model=True`, as an exported SavedModel in `data/model/` with a `serve` endpoint.
The MLmodel's `keras` entry has MLflow's keys (`data`, `keras_version`, `keras_backend`,
`save_exported_model`); its `python_function` entry names `loader_module: mlflow.keras`, which
mltrail's pyfunc maps to `mltrail.keras`, so the real MLflow loads these models as well.
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any

from mltrail._keras_common.custom_objects import custom_object_refs
from mltrail._keras_common.loading import DATA, KERAS
from mltrail._keras_common.saving import (
    TF_DISTRIBUTIONS,
    coerce_signature,
    dir_size,
    infer_from_example,
    new_model_dir,
)
from mltrail.errors import InvalidParameterValue
from mltrail.models.mlmodel import MLMODEL_FILE_NAME, Model, ModelInfo
from mltrail.models.signature import ModelSignature
from mltrail.types import TensorSpec

FLAVOR_NAME = KERAS
# MLflow's name, so that MLflow itself loads the model too (mltrail's pyfunc maps it to mltrail.keras)
PYFUNC_LOADER = "mlflow.keras"
KERAS_MODULE_FILE = "keras_module.txt"
MODEL_NAME = "model"
# the Keras backend -> the distributions that provide it
_BACKEND_DISTS: dict[str, Any] = {"tensorflow": TF_DISTRIBUTIONS, "jax": ("jax",), "torch": ("torch",)}

_logger = logging.getLogger(__name__)


def get_default_pip_requirements() -> list[str]:
    """Pinned requirements for a Keras model: keras and its backend's framework (the installed versions).

    MLflow lists only keras and finds the backend by running the model in a subprocess; mltrail
    names the backend directly.
    """
    from mltrail.models.environment import default_requirements

    backend = _backend()
    packages: list[Any] = ["keras"]
    if backend in _BACKEND_DISTS:
        packages.append(_BACKEND_DISTS[backend])
    return default_requirements(packages)


def get_default_conda_env() -> dict[str, Any]:
    """A conda environment holding the default pip requirements."""
    from mltrail.models.environment import installed_version, python_version

    pip = installed_version("pip")
    return {"name": "mltrail-env", "channels": ["conda-forge"],
            "dependencies": [f"python={python_version()}", f"pip<={pip}" if pip else "pip",
                             {"pip": get_default_pip_requirements()}]}


def _backend() -> str:
    """Keras' backend, read from its configuration without importing Keras when it is not loaded yet."""
    import sys

    if "keras" in sys.modules:
        return str(sys.modules["keras"].backend.backend())
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def _check_signature(signature: ModelSignature) -> None:
    """MLflow's rules for a Keras model's signature: tensor inputs with a variable batch dimension."""
    inputs = signature.inputs.inputs if signature.inputs is not None else []
    if not inputs:
        raise InvalidParameterValue("The model signature's input schema must contain at least one field; received "
                                    f"{signature.inputs!r}.")
    for field in inputs:
        if not isinstance(field, TensorSpec):
            raise InvalidParameterValue(
                "All fields in the model signature's input schema must be of type TensorSpec; received "
                f"{field!r}. Build the signature from arrays (mltrail.models.infer_signature(x, y)).")
        if not field.shape or field.shape[0] != -1:
            raise InvalidParameterValue(
                "All input schema' first dimension should be -1, which represents the dynamic batch dimension; "
                f"received shape {tuple(field.shape)} for {field!r}.")


def _export(model: Any, target: str, signature: ModelSignature | None) -> None:
    """Export `model` as a SavedModel with one `serve` endpoint.

    The endpoint's inputs are the model's own symbolic inputs (their dtypes and structure, batch
    dimension free) when it has them, else the signature's tensor specs.
    """
    import keras

    from mltrail._keras_common.pyfunc_wrappers import keras_input_structure

    structure = keras_input_structure(model, signature.inputs if signature is not None else None)
    if structure is None:
        raise InvalidParameterValue(
            "`signature` cannot be None when `save_exported_model=True` for a model whose inputs are not known "
            f"(the subclassed {type(model).__name__!r} was never built on symbolic inputs): pass signature=, or "
            "an input_example to infer it from.")

    def serve(inputs: Any) -> Any:
        return model(inputs, training=False)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serve", fn=serve, input_signature=[structure])
    archive.write_out(target, verbose=False)


def save_model(model: Any, path: str | os.PathLike[str], save_exported_model: bool = False, conda_env: Any = None,
               mlflow_model: Model | None = None, signature: ModelSignature | None = None, input_example: Any = None,
               pip_requirements: Any = None, extra_pip_requirements: Any = None,
               save_model_kwargs: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
               custom_objects: dict[str, Any] | None = None) -> None:
    """Save a Keras 3 model with its MLmodel file and environment to a new directory `path`.

    Args:
        model: a `keras.Model`.
        save_exported_model: export a SavedModel (`data/model/`, callable as `loaded.serve(x)` and by
            TensorFlow Serving) instead of the native `data/model.keras` file.
        save_model_kwargs: extra arguments for `model.save`.
        signature: the model's signature (tensor inputs, batch dimension -1); inferred from
            `input_example` when not given.
        input_example: saved as `input_example.json` with its serving request.
        custom_objects: (mltrail only) Keras custom classes/functions the model needs at load time,
            recorded by reference (`module:qualname`) and never pickled.
        conda_env, pip_requirements, extra_pip_requirements: the environment, as in MLflow.
        metadata: free-form metadata written into the MLmodel file.
    """
    import keras

    from mltrail.models.environment import python_version, resolve_requirements, write_environment
    from mltrail.models.input_example import normalize_example, save_input_example

    if not isinstance(model, keras.Model):
        raise InvalidParameterValue(
            f"Cannot save a {type(model).__name__} with mltrail.keras: expected a keras.Model (use "
            "mltrail.tensorflow.save_model for a tf.Module).")
    path = new_model_dir(path)
    signature = coerce_signature(signature)
    requirements = resolve_requirements(get_default_pip_requirements(), pip_requirements, extra_pip_requirements,
                                        conda_env)
    refs = custom_object_refs(custom_objects)
    mlmodel = mlflow_model if mlflow_model is not None else Model()
    data_dir = os.path.join(path, DATA)
    os.makedirs(data_dir, exist_ok=True)
    try:
        if input_example is not None:
            example = normalize_example(input_example)
            mlmodel.saved_input_example_info = save_input_example(path, example)
            if signature is None:
                signature = infer_from_example(model, example)
        if signature is None:
            _logger.warning("You are saving a Keras model without specifying model signature.")
        else:
            _check_signature(signature)
            mlmodel.signature = signature
        if metadata is not None:
            mlmodel.metadata = metadata
        with open(os.path.join(data_dir, KERAS_MODULE_FILE), "w", encoding="utf-8") as fh:
            fh.write(keras.__name__)
        if save_exported_model:
            _export(model, os.path.join(data_dir, MODEL_NAME), signature)
        else:
            model.save(os.path.join(data_dir, f"{MODEL_NAME}.keras"), **(save_model_kwargs or {}))
        conf: dict[str, Any] = {"data": DATA, "keras_version": keras.__version__,
                                "keras_backend": keras.backend.backend(), "save_exported_model": save_exported_model}
        if refs:
            conf["custom_objects"] = refs
        env = write_environment(path, requirements, conda_env)
        mlmodel.add_flavor(FLAVOR_NAME, **conf)
        mlmodel.add_flavor("python_function", loader_module=PYFUNC_LOADER, python_version=python_version(),
                           env=env)
        mlmodel.model_size_bytes = dir_size(path)
        mlmodel.save(os.path.join(path, MLMODEL_FILE_NAME))
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)  # no half-written model left behind
        raise


def log_model(model: Any, artifact_path: str | None = None, save_exported_model: bool = False,
              conda_env: Any = None, signature: ModelSignature | None = None, input_example: Any = None,
              registered_model_name: str | None = None, await_registration_for: int | None = None,
              pip_requirements: Any = None, extra_pip_requirements: Any = None,
              save_model_kwargs: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
              name: str | None = None, params: dict[str, Any] | None = None, tags: dict[str, Any] | None = None,
              model_type: str | None = None, step: int = 0, model_id: str | None = None,
              custom_objects: dict[str, Any] | None = None) -> ModelInfo:
    """Log a Keras 3 model as a LoggedModel of the active run (or of the current experiment).

    Args:
        name: the model's name; `artifact_path` is its deprecated alias (FutureWarning).
        params, tags: recorded on the logged model (the run's params are added to params).
        step: the training step recorded with the run's model output.
        Other arguments: see `save_model`.

    Returns:
        A ModelInfo with `model_uri` = `models:/<model_id>`.
    """
    from mltrail.models.model_logging import log_model as log

    return log(save_model, name=name, artifact_path=artifact_path, registered_model_name=registered_model_name,
               await_registration_for=await_registration_for, metadata=metadata, params=params, tags=tags,
               model_type=model_type, step=step, model_id=model_id, model=model,
               save_exported_model=save_exported_model, conda_env=conda_env, signature=signature,
               input_example=input_example, pip_requirements=pip_requirements,
               extra_pip_requirements=extra_pip_requirements, save_model_kwargs=save_model_kwargs,
               custom_objects=custom_objects)
