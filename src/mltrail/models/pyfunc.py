"""The generic model interface: `load_model(uri)` returns a `PyFuncModel` with `predict`.

Only registered flavors load. The MLmodel's `python_function.loader_module` must be in the
allowlist below (MLflow's names for the same flavors map to ours); anything else is refused before
any import happens, so a model file cannot make this process import a module of its choosing.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import platform
import warnings
from collections.abc import Iterator
from typing import Any, Protocol

from mltrail.errors import InvalidParameterValue, MltrailException, MltrailWarning
from mltrail.models.enforce import enforce_params, enforce_schema
from mltrail.models.mlmodel import Model

FLAVOR_NAME = "python_function"
MAIN = "loader_module"
MODEL_CONFIG = "config"

# loader_module written in MLmodel files -> the module of ours that loads it
_LOADERS: dict[str, str] = {
    "mltrail.tensorflow": "mltrail.tensorflow",
    "mltrail.keras": "mltrail.keras",
    "mlflow.tensorflow": "mltrail.tensorflow",
    "mlflow.keras": "mltrail.keras",
    # custom Python models (mltrail.pyfunc): a pickled PythonModel, and a model from code
    "mlflow.pyfunc.model": "mltrail.pyfunc.loader",
    "mlflow.pyfunc.loaders.code_model": "mltrail.pyfunc.loader",
}

__all__ = ["FLAVOR_NAME", "PyFuncImplementation", "PyFuncModel", "allowed_loader_modules", "load_model", "read_model_config",
           "register_loader_module"]


def allowed_loader_modules() -> list[str]:
    """The `loader_module` values a model may name."""
    return sorted(_LOADERS)


def register_loader_module(loader_module: str, implementation: str | None = None) -> None:
    """Allow models whose MLmodel names `loader_module` (loaded by `implementation`, default the same).

    Only for flavors that ship with mltrail: the implementation module must live in the `mltrail` package.
    """
    impl = implementation or loader_module
    if not impl.startswith("mltrail."):
        raise InvalidParameterValue(
            f"Cannot register loader {impl!r}: pyfunc loaders must be mltrail modules (mltrail.<flavor>).")
    _LOADERS[loader_module] = impl


_log = logging.getLogger(__name__)


class PyFuncImplementation(Protocol):
    """What a flavor's `_load_pyfunc(path, model_meta)` returns: the model behind a `PyFuncModel`.

    It may also have `get_raw_model()` (the framework's own model), `predict_stream(data, params)`
    and a `python_model` attribute (the user's object, for `unwrap_python_model`).
    """

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any: ...


class PyFuncModel:
    """A loaded model with a uniform `predict(data, params=None)` that enforces its signature."""

    def __init__(self, model_meta: Model, model_impl: PyFuncImplementation, model_path: str | None = None,
                 loader_module: str | None = None) -> None:
        self._model_meta = model_meta
        self._model_impl = model_impl
        self._model_path = model_path
        self._loader_module = loader_module
        try:
            self._takes_params = "params" in inspect.signature(model_impl.predict).parameters
        except (TypeError, ValueError):
            self._takes_params = False
        self._input_schema = model_meta.get_input_schema()
        self._params_schema = model_meta.get_params_schema()
        self.input_example: Any = None

    @property
    def metadata(self) -> Model:
        """The model's MLmodel content."""
        return self._model_meta

    @property
    def model_id(self) -> str | None:
        return self._model_meta.model_id

    @property
    def loader_module(self) -> str | None:
        """The `loader_module` the MLmodel names (MLflow's name for the flavor's loader)."""
        return self._loader_module

    @property
    def model_config(self) -> dict[str, Any]:
        """The `model_config` saved in the pyfunc flavor ({} when none)."""
        conf = self._model_meta.flavors.get(FLAVOR_NAME) or {}
        return dict(conf.get(MODEL_CONFIG) or {})

    @property
    def model_path(self) -> str | None:
        return self._model_path

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predict on `data` (numpy array, list, dict of arrays, DataFrame, tensor) after checking the signature.

        Raises:
            InvalidParameterValue: the input does not match the signature (shape, dtype, names).
        """
        data = enforce_schema(data, self._input_schema)
        resolved = enforce_params(params, self._params_schema)
        if self._takes_params:
            return self._model_impl.predict(data, params=resolved)
        if resolved:
            _log.warning("The underlying model does not support passing additional parameters to the predict "
                         "function. `params` %s will be ignored.", resolved)
        return self._model_impl.predict(data)

    def predict_stream(self, data: Any, params: dict[str, Any] | None = None) -> Iterator[Any]:
        """An iterator over the model's output for one input (models whose MLmodel says `streamable: true`).

        Raises:
            MltrailException: the model does not stream.
        """
        conf = self._model_meta.flavors.get(FLAVOR_NAME) or {}
        stream = getattr(self._model_impl, "predict_stream", None)
        if not conf.get("streamable") or not callable(stream):
            raise MltrailException(
                "This model does not support predict_stream method: its MLmodel does not say `streamable: true` "
                f"(loader {self._loader_module!r}).")
        data = enforce_schema(data, self._input_schema) if self._input_schema is not None else data
        resolved = enforce_params(params, self._params_schema)
        return iter(stream(data, params=resolved))

    def get_raw_model(self) -> Any:
        """The framework's own model object (a Keras model, or a loaded SavedModel)."""
        raw = getattr(self._model_impl, "get_raw_model", None)
        if not callable(raw):
            raise NotImplementedError("`get_raw_model` is not implemented by the underlying model")
        return raw()

    def unwrap_python_model(self) -> Any:
        """The user's object behind this pyfunc: the `PythonModel` of a custom model, else the raw model."""
        python_model = getattr(self._model_impl, "python_model", None)
        if python_model is not None:
            return python_model
        try:
            return self.get_raw_model()
        except NotImplementedError:
            raise MltrailException("Unable to retrieve base model object from pyfunc.") from None

    def __repr__(self) -> str:
        return (f"mltrail.pyfunc.loaded_model:\n  model_id: {self.model_id}\n  run_id: {self._model_meta.run_id}\n"
                f"  flavor: {self._loader_module}")


def _check_python_version(conf: dict[str, Any], uri: str) -> None:
    saved = str(conf.get("python_version") or "")
    here = platform.python_version()
    if saved and saved.split(".")[:2] != here.split(".")[:2]:
        warnings.warn(
            f"The model at {uri!r} was saved with Python {saved}; this is Python {here}. It may not load or "
            "predict the same.", MltrailWarning, stacklevel=3)


def read_model_config(model_config: Any) -> dict[str, Any] | None:
    """`model_config` as a dict: given as one, or read from a YAML file path."""
    if model_config is None or isinstance(model_config, dict):
        return model_config
    if isinstance(model_config, str | os.PathLike):
        import yaml

        path = os.path.abspath(os.fspath(model_config))
        if not os.path.isfile(path):
            raise InvalidParameterValue(
                f"An invalid `model_config` file was passed. The provided `model_config` file '{path}' is not a "
                "valid file path.")
        with open(path, encoding="utf-8") as fh:
            try:
                loaded = yaml.safe_load(fh)
            except yaml.YAMLError as e:
                raise InvalidParameterValue(
                    f"The provided `model_config` file '{path}' is not a valid YAML file: {e}") from None
        if not isinstance(loaded, dict):
            raise InvalidParameterValue(
                f"The `model_config` file '{path}' must hold a mapping; it holds {type(loaded).__name__}.")
        return loaded
    raise InvalidParameterValue(
        f"model_config must be a dict or the path of a YAML file; received {type(model_config).__name__}.")


def _effective_model_config(saved: Any, given: dict[str, Any] | None) -> dict[str, Any] | None:
    """The saved config with overrides (`MLFLOW_PYFUNC_INFERENCE_CONFIG`, then `given`) for keys it already has."""
    overrides: dict[str, Any] = {}
    env = os.environ.get("MLFLOW_PYFUNC_INFERENCE_CONFIG")
    if env:
        try:
            overrides.update(dict(json.loads(env)))
        except (ValueError, TypeError) as e:
            raise InvalidParameterValue(
                f"MLFLOW_PYFUNC_INFERENCE_CONFIG must be a JSON object; received {env!r:.80} ({e}).") from None
    overrides.update(given or {})
    if not overrides:
        return dict(saved) if isinstance(saved, dict) else None
    if not isinstance(saved, dict) or not saved:
        _log.warning("Argument(s) %s were ignored since the model's ``pyfunc`` flavor doesn't accept model "
                     "configuration. Use ``model_config`` when logging the model to allow it.", ", ".join(overrides))
        return None
    ignored = sorted(set(overrides) - set(saved))
    if ignored:
        _log.warning("Argument(s) %s were ignored since they are not valid keys in the corresponding section of the "
                     "``pyfunc`` flavor. Current allowed configuration includes %s", ", ".join(ignored),
                     ", ".join(saved))
    return {**saved, **{k: v for k, v in overrides.items() if k in saved}}


def load_model(model_uri: str | os.PathLike[str], suppress_warnings: bool = False, dst_path: str | None = None,
               model_config: dict[str, Any] | str | os.PathLike[str] | None = None,
               allow_pickle: bool = False) -> PyFuncModel:
    """Load any model URI (models:/, runs:/, a path, an artifact URI) as a PyFuncModel.

    Args:
        model_uri: where the model is (see `mltrail.uris`).
        suppress_warnings: don't warn about a Python version mismatch.
        dst_path: download the model here (default: used in place when local, else a temp dir).
        model_config: overrides for the keys of the model's saved `model_config` (a dict or a YAML file's path);
            custom Python models get the result as `context.model_config`.
        allow_pickle: allow unpickling a custom model saved as a pickled instance; it also needs the
            environment variable MLTRAIL_ALLOW_PICKLE=true (unpickling runs code from the model's files).

    Raises:
        InvalidParameterValue: the model has no python_function flavor or names a loader that is not
            a registered flavor.
    """
    from mltrail.uris import resolve_model_uri

    uri = os.fspath(model_uri)
    local = resolve_model_uri(uri, dst_path)
    meta = Model.load(local)
    conf = meta.flavors.get(FLAVOR_NAME)
    if not isinstance(conf, dict):
        raise InvalidParameterValue(
            f"The model at {uri!r} has no {FLAVOR_NAME} flavor (its flavors: {sorted(meta.flavors)}), so it cannot "
            "be loaded as a pyfunc model. Load it with its own flavor's load_model.")
    loader = conf.get(MAIN)
    impl_name = _LOADERS.get(str(loader)) if loader is not None else None
    if impl_name is None:
        raise InvalidParameterValue(
            f"Refusing to load the model at {uri!r}: its MLmodel names loader_module {loader!r}, which is not a "
            f"registered flavor (allowed: {', '.join(allowed_loader_modules())}). Nothing was imported.")
    if not suppress_warnings:
        _check_python_version(conf, uri)
    module = importlib.import_module(impl_name)
    load = module._load_pyfunc
    accepted = inspect.signature(load).parameters
    given = read_model_config(model_config)
    options: dict[str, Any] = {}
    if "model_config" in accepted:
        options["model_config"] = _effective_model_config(conf.get(MODEL_CONFIG), given)
    elif given:
        warnings.warn(f"model_config is ignored by {impl_name} models.", MltrailWarning, stacklevel=2)
    if "allow_pickle" in accepted:
        options["allow_pickle"] = allow_pickle
    impl = load(local, meta, **options)
    model = PyFuncModel(meta, impl, local, str(loader))
    try:
        model.input_example = meta.load_input_example(local)
    except Exception as e:  # as MLflow: an unreadable example does not stop the model from loading
        _log.debug("Failed to load the input example of %r: %s", uri, e)
    return model
