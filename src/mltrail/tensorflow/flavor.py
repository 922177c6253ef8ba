"""Save, log and load TensorFlow/Keras models in the MLmodel format.

Three formats, chosen with `keras_model_kwargs={"save_format": ...}`:

- `"keras"` (default): Keras' native `.keras` file, `data/model.keras`.
- `"h5"`: the legacy HDF5 file, `data/model.h5` (Sequential and Functional models only).
- `"tf"`: a TensorFlow SavedModel, `data/model/`, exported with `model.export` so that
  `tf.saved_model.load` and TensorFlow Serving find a `serving_default` signature. Keras 3 cannot
  turn a SavedModel back into a Keras model, so `load_model` returns the loaded SavedModel object
  (call `obj.serve(x)` or `obj.signatures["serving_default"](**inputs)`); pyfunc works as usual.

A plain `tf.Module` (not Keras) is saved with `tf.saved_model.save` in the "tf" format.

Custom objects are recorded by reference (`module:qualname`), never pickled: at load time they
are taken from modules already imported (or from `custom_objects=`), so loading a model never
imports or executes code that a model file names. A model that the real MLflow saved with
cloudpickled custom objects loads them only with the pickle opt-in (`allow_pickle=True` and
`MLTRAIL_ALLOW_PICKLE=true`). `load_model` also reads models saved with the `keras` flavor
(`mltrail.keras`, `mlflow.keras`); see `mltrail._keras_common.loading`.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from mltrail._keras_common.custom_objects import custom_object_refs
from mltrail._keras_common.loading import DATA as _DATA
from mltrail._keras_common.loading import MODEL_FILES as _FILES
from mltrail._keras_common.loading import SAVE_FORMATS as _FORMATS
from mltrail._keras_common.loading import TENSORFLOW, load_flavor
from mltrail._keras_common.saving import (
    TF_DISTRIBUTIONS,
    coerce_signature,
    dir_size,
    infer_from_example,
    is_keras_model,
    new_model_dir,
)
from mltrail.errors import InvalidParameterValue
from mltrail.models.mlmodel import MLMODEL_FILE_NAME, Model, ModelInfo
from mltrail.models.signature import ModelSignature

FLAVOR_NAME = TENSORFLOW
PYFUNC_LOADER = "mltrail.tensorflow"
_TF_DISTS = TF_DISTRIBUTIONS


def get_default_pip_requirements(save_format: str = "keras") -> list[str]:
    """Pinned requirements (the installed versions) for a model saved in `save_format`."""
    from mltrail.models.environment import default_requirements

    packages: list[Any] = [_TF_DISTS, "keras", "numpy"]
    if save_format == "h5":
        packages.append("h5py")
    return default_requirements(packages)


def get_default_conda_env(save_format: str = "keras") -> dict[str, Any]:
    """A conda environment holding the default pip requirements."""
    from mltrail.models.environment import installed_version, python_version

    pip = installed_version("pip")
    return {"name": "mltrail-env", "channels": ["conda-forge"],
            "dependencies": [f"python={python_version()}", f"pip<={pip}" if pip else "pip",
                             {"pip": get_default_pip_requirements(save_format)}]}


def get_global_custom_objects() -> dict[str, Any] | None:
    """A copy of Keras' global custom-object registry (`keras.saving.get_custom_objects()`); None without Keras.

    MLflow pickles this dict beside every Keras model; mltrail only reports it: register custom
    classes with `@keras.saving.register_keras_serializable()` and import them before loading.
    """
    try:
        import keras
    except ImportError:
        return None
    return dict(keras.saving.get_custom_objects())


def _versions() -> dict[str, str | None]:
    from mltrail.models.environment import installed_version

    keras_version = installed_version("keras")
    tf_version = next((v for v in (installed_version(d) for d in _TF_DISTS) if v), None)
    if tf_version is None:
        import tensorflow as tf

        tf_version = tf.__version__
    return {"keras_version": keras_version, "tensorflow_version": tf_version}


def _save_format(keras_model_kwargs: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    kwargs = dict(keras_model_kwargs or {})
    raw = kwargs.pop("save_format", "keras")
    fmt = _FORMATS.get(str(raw).lower().lstrip("."))
    if fmt is None:
        raise InvalidParameterValue(
            f"Unsupported save_format {raw!r}: expected 'keras' (native .keras file, the default), 'h5' or 'tf' "
            "(a TensorFlow SavedModel).")
    return fmt, kwargs


def _is_graph_model(model: Any) -> bool:
    """Sequential and Functional models (the only kinds HDF5 can rebuild)."""
    import keras

    if isinstance(model, keras.Sequential):
        return True
    try:
        from keras.src.models.functional import Functional
    except ImportError:  # a future Keras moved it: fall back on the attribute functional models carry
        return hasattr(model, "_inputs_struct")
    return isinstance(model, Functional)


def _model_io_names(model: Any) -> dict[str, Any]:
    """Input and output names of a Keras model, recorded so a SavedModel's outputs can be named."""
    out: dict[str, Any] = {}
    try:
        inputs = getattr(model, "inputs", None)
        if inputs:
            out["input_names"] = [str(getattr(t, "name", i)) for i, t in enumerate(inputs)]
        names = getattr(model, "output_names", None)
        if names:
            out["output_names"] = [str(n) for n in names]
    except (AttributeError, ValueError):  # subclassed models have no symbolic inputs
        pass
    return out


def save_model(model: Any, path: str | os.PathLike[str], conda_env: Any = None, code_paths: list[str] | None = None,
               mlflow_model: Model | None = None, custom_objects: dict[str, Any] | None = None,
               signature: ModelSignature | None = None, input_example: Any = None,
               pip_requirements: Any = None, extra_pip_requirements: Any = None,
               saved_model_kwargs: dict[str, Any] | None = None, keras_model_kwargs: dict[str, Any] | None = None,
               metadata: dict[str, Any] | None = None) -> None:
    """Save a Keras model (or a tf.Module) with its MLmodel file and environment to a new directory `path`.

    Args:
        keras_model_kwargs: `save_format` ('keras', 'h5' or 'tf') and extra arguments for `model.save`
            (or `model.export` for 'tf').
        saved_model_kwargs: extra arguments for `tf.saved_model.save` (tf.Module models).
        custom_objects: Keras custom classes/functions; recorded by reference, not pickled.
        code_paths: files copied into the model's `code/` directory (kept for reference; never imported).
        signature: the model's signature; inferred from `input_example` when not given.
        input_example: saved as `input_example.json` (TF-Serving JSON).
    """
    from mltrail.models.environment import python_version as _python_version
    from mltrail.models.environment import resolve_requirements, write_environment
    from mltrail.models.input_example import normalize_example, save_input_example

    path = new_model_dir(path)
    signature = coerce_signature(signature)
    fmt, save_kwargs = _save_format(keras_model_kwargs)
    requirements = resolve_requirements(get_default_pip_requirements(fmt), pip_requirements,
                                        extra_pip_requirements, conda_env)
    refs = custom_object_refs(custom_objects)
    mlmodel = mlflow_model if mlflow_model is not None else Model()
    data_dir = os.path.join(path, _DATA)
    os.makedirs(data_dir, exist_ok=True)
    target = os.path.join(data_dir, _FILES[fmt])
    try:
        if is_keras_model(model):
            model_type = "keras"
            if fmt == "h5" and not _is_graph_model(model):
                raise InvalidParameterValue(
                    f"save_format='h5' cannot hold the subclassed model {type(model).__name__!r}: Keras' HDF5 "
                    "format rebuilds only Sequential and Functional models. Use save_format='keras' or 'tf'.")
            if fmt == "tf":
                model.export(target, format="tf_saved_model", verbose=False, **save_kwargs)
            else:
                model.save(target, **save_kwargs)
        else:
            import tensorflow as tf

            if not isinstance(model, tf.Module):
                raise InvalidParameterValue(
                    f"Cannot save a {type(model).__name__} with mltrail.tensorflow: expected a Keras model or a "
                    "tf.Module.")
            if fmt != "tf" and keras_model_kwargs and "save_format" in keras_model_kwargs:
                raise InvalidParameterValue(
                    f"A tf.Module is saved as a TensorFlow SavedModel; save_format={fmt!r} needs a Keras model.")
            fmt, model_type, target = "tf", "tf2-module", os.path.join(data_dir, _FILES["tf"])
            tf.saved_model.save(model, target, **(saved_model_kwargs or {}))
        if code_paths:
            code_dir = os.path.join(path, "code")
            os.makedirs(code_dir, exist_ok=True)
            for p in code_paths:
                dest = os.path.join(code_dir, os.path.basename(os.path.normpath(p)))
                if os.path.isdir(p):
                    shutil.copytree(p, dest, dirs_exist_ok=True)
                else:
                    shutil.copyfile(p, dest)

        if input_example is not None:
            example = normalize_example(input_example)
            mlmodel.saved_input_example_info = save_input_example(path, example)
            if signature is None:
                signature = infer_from_example(model, example)
        if signature is not None:
            mlmodel.signature = signature
        if metadata is not None:
            mlmodel.metadata = metadata

        conf: dict[str, Any] = {"code": "code" if code_paths else None, "data": _DATA,
                                "model_file": f"{_DATA}/{_FILES[fmt]}", "model_type": model_type, "save_format": fmt,
                                **_versions()}
        if refs:
            conf["custom_objects"] = refs
        if model_type == "keras":
            conf.update(_model_io_names(model))
        env = write_environment(path, requirements, conda_env)
        mlmodel.add_flavor(FLAVOR_NAME, **conf)
        mlmodel.add_flavor("python_function", loader_module=PYFUNC_LOADER, python_version=_python_version(),
                           data=_DATA, env=env)
        mlmodel.model_size_bytes = dir_size(path)
        mlmodel.save(os.path.join(path, MLMODEL_FILE_NAME))
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)  # no half-written model left behind
        raise


def log_model(model: Any, artifact_path: str | None = None, custom_objects: dict[str, Any] | None = None,
              conda_env: Any = None, code_paths: list[str] | None = None, signature: ModelSignature | None = None,
              input_example: Any = None, registered_model_name: str | None = None,
              await_registration_for: int | None = None, pip_requirements: Any = None,
              extra_pip_requirements: Any = None, saved_model_kwargs: dict[str, Any] | None = None,
              keras_model_kwargs: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
              name: str | None = None, params: dict[str, Any] | None = None, tags: dict[str, Any] | None = None,
              model_type: str | None = None, step: int = 0, model_id: str | None = None) -> ModelInfo:
    """Log a Keras model (or tf.Module) as a LoggedModel of the active run (or the current experiment).

    Args:
        name: the model's name; `artifact_path` is its deprecated alias (FutureWarning).
        params, tags: recorded on the logged model (the run's params are added to params).
        step: the training step recorded with the run's model output.
        Other arguments: see `save_model`.

    Returns:
        A ModelInfo with `model_uri` = `models:/<model_id>`.
    """
    from mltrail.models.model_logging import log_model as _log

    return _log(save_model, name=name, artifact_path=artifact_path, registered_model_name=registered_model_name,
                await_registration_for=await_registration_for, metadata=metadata, params=params, tags=tags,
                model_type=model_type, step=step, model_id=model_id, model=model, conda_env=conda_env,
                code_paths=code_paths, custom_objects=custom_objects, signature=signature,
                input_example=input_example, pip_requirements=pip_requirements,
                extra_pip_requirements=extra_pip_requirements, saved_model_kwargs=saved_model_kwargs,
                keras_model_kwargs=keras_model_kwargs)


def load_model(model_uri: str | os.PathLike[str], dst_path: str | None = None,
               saved_model_kwargs: dict[str, Any] | None = None, keras_model_kwargs: dict[str, Any] | None = None,
               custom_objects: dict[str, Any] | None = None, allow_pickle: bool = False) -> Any:
    """Load a model saved with the `tensorflow` (or `keras`) flavor from any model URI.

    Args:
        keras_model_kwargs: extra arguments for `keras.saving.load_model`.
        saved_model_kwargs: extra arguments for `tf.saved_model.load`.
        custom_objects: Keras custom objects; they override those recorded with the model.
        allow_pickle: load the cloudpickled custom objects of a model that MLflow saved (this runs
            code from the model's files); the environment variable `MLTRAIL_ALLOW_PICKLE=true` is needed too.

    Returns:
        The Keras model for the 'keras' and 'h5' formats; for 'tf' (a SavedModel) the object
        `tf.saved_model.load` returns, callable as `obj.serve(x)` or through
        `obj.signatures["serving_default"]`.
    """
    from mltrail.uris import resolve_model_uri

    local = resolve_model_uri(model_uri, dst_path)
    return load_flavor(local, Model.load(local), FLAVOR_NAME, custom_objects, keras_model_kwargs, saved_model_kwargs,
                       allow_pickle=allow_pickle)


def _load_pyfunc(path: str, meta: Model | None = None, allow_pickle: bool = False) -> Any:
    """The pyfunc implementation for a model directory (called by `mltrail.pyfunc.load_model`)."""
    from mltrail._keras_common.loading import flavor_conf
    from mltrail._keras_common.pyfunc_wrappers import wrap

    meta = meta if meta is not None else Model.load(path)
    _, conf = flavor_conf(path, meta, FLAVOR_NAME)
    model = load_flavor(path, meta, FLAVOR_NAME, for_inference=True, allow_pickle=allow_pickle)
    return wrap(model, conf, meta.get_input_schema())
