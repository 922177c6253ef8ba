"""The generic model interface: `load_model(uri)` returns a `PyFuncModel` with `predict`.

Only registered flavors load. The MLmodel's `python_function.loader_module` must be in the
allowlist below (MLflow's names for the same flavors map to ours); anything else is refused before
any import happens, so a model file cannot make this process import a module of its choosing.
"""

from __future__ import annotations

import importlib
import inspect
import os
import platform
import warnings
from typing import Any, Protocol

from mltrail.errors import InvalidParameterValue, MltrailWarning
from mltrail.models.enforce import enforce_params, enforce_schema
from mltrail.models.mlmodel import Model

FLAVOR_NAME = "python_function"
MAIN = "loader_module"

# loader_module written in MLmodel files -> the module of ours that loads it
_LOADERS: dict[str, str] = {
    "mltrail.tensorflow": "mltrail.tensorflow",
    "mltrail.keras": "mltrail.tensorflow",
    "mlflow.tensorflow": "mltrail.tensorflow",
    "mlflow.keras": "mltrail.tensorflow",
}

__all__ = ["FLAVOR_NAME", "PyFuncImplementation", "PyFuncModel", "allowed_loader_modules", "load_model", "register_loader_module"]


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


class PyFuncImplementation(Protocol):
    """What a flavor's `_load_pyfunc(path, model_meta)` returns: the model behind a `PyFuncModel`."""

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any: ...

    def get_raw_model(self) -> Any:
        """The framework's own model object."""
        ...


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

    @property
    def metadata(self) -> Model:
        """The model's MLmodel content."""
        return self._model_meta

    @property
    def model_id(self) -> str | None:
        return self._model_meta.model_id

    @property
    def loader_module(self) -> str | None:
        return self._loader_module

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
        return self._model_impl.predict(data)

    def get_raw_model(self) -> Any:
        """The framework's own model object (a Keras model, or a loaded SavedModel)."""
        return self._model_impl.get_raw_model()

    def unwrap_python_model(self) -> Any:
        """The object behind this pyfunc (for a TensorFlow model, the Keras model or SavedModel)."""
        return self.get_raw_model()

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


def load_model(model_uri: str | os.PathLike[str], suppress_warnings: bool = False, dst_path: str | None = None,
               model_config: dict[str, Any] | None = None) -> PyFuncModel:
    """Load any model URI (models:/, runs:/, a path, an artifact URI) as a PyFuncModel.

    Args:
        model_uri: where the model is (see `mltrail.uris`).
        suppress_warnings: don't warn about a Python version mismatch.
        dst_path: download the model here (default: used in place when local, else a temp dir).
        model_config: accepted for MLflow compatibility; TensorFlow models take none.

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
    impl = module._load_pyfunc(local, meta)
    if model_config:
        warnings.warn(f"model_config is ignored by {impl_name} models.", MltrailWarning, stacklevel=2)
    return PyFuncModel(meta, impl, local, str(loader))
