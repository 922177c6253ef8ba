"""A `PythonModel` instance stored as `python_model.pkl` (cloudpickle), as MLflow writes one, and the opt-in to load it.

Unpickling runs whatever code the file names, so loading needs two yeses: `allow_pickle=True`
from the caller and `MLTRAIL_ALLOW_PICKLE=true` in the environment (`mltrail.models.pickle_opt_in`). A pickle written by MLflow
names MLflow's classes (`mlflow.pyfunc.model.PythonModel`, ...); those few are mapped to ours, so
MLflow need not be installed; any other MLflow name is refused with its name.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import lzma
import os
import pickle
import sys
from collections.abc import Callable
from typing import IO, Any

from mltrail.errors import InvalidParameterValue, MltrailException
from mltrail.models.pickle_opt_in import ALLOW_PICKLE_ENV, load_opted_in, missing_opt_ins, pickle_allowed

__all__ = ["PICKLE_FILE", "add_code_to_sys_path", "check_pickle_allowed", "dump_python_model", "load_python_model"]

PICKLE_FILE = "python_model.pkl"
# MLflow's `python_model_compression` values -> how to open the file
_OPENERS: dict[str, Callable[..., Any]] = {"lzma": lzma.open, "bzip2": bz2.open, "gzip": gzip.open}


def add_code_to_sys_path(model_path: str, conf: dict[str, Any]) -> None:
    """Put the model's `code/` directory (its `code_paths`) first on sys.path, as MLflow does.

    Only for custom Python models, whose code runs by the user's choice (a model from code, or a pickle
    after the opt-in): a Keras model's files are data, and must not shadow a module this process imports.
    """
    code = conf.get("code")
    if code:
        from mltrail._paths import resolve_under

        path = resolve_under(model_path, str(code))
        if path not in sys.path:
            sys.path.insert(0, path)


def check_pickle_allowed(allow_pickle: bool, where: str) -> None:
    """Refuse to unpickle the model at `where` unless both the keyword and the environment variable say yes."""
    if pickle_allowed(allow_pickle):  # the one opt-in check, shared with the Keras flavors' custom objects
        return
    raise pickle_model_refused(allow_pickle, where)


def pickle_model_refused(allow_pickle: bool, where: str) -> InvalidParameterValue:
    """The refusal for a pickled model, in MLflow's words first, naming both opt-ins."""
    return InvalidParameterValue(
        "Deserializing model using pickle is disallowed, but this model is saved in cloudpickle format "
        f"({where}). Unpickling runs code from the model's files: load it only if you trust where it came "
        f"from, by passing allow_pickle=True to mltrail.pyfunc.load_model and setting {ALLOW_PICKLE_ENV}=true "
        f"(missing: {missing_opt_ins(allow_pickle)}). Safer: save the model as code (python_model='model.py', the file "
        "calling mltrail.models.set_model(...)), which needs no pickle.")


def cloudpickle_version() -> str | None:
    """The installed cloudpickle's version (what MLflow records as `cloudpickle_version`), or None."""
    from mltrail.models.environment import installed_version

    return installed_version("cloudpickle")


def dump_python_model(python_model: Any, file: str) -> None:
    """Pickle a model instance with cloudpickle (an optional dependency) into `file`."""
    try:
        import cloudpickle
    except ImportError:
        raise MltrailException(
            f"Saving a {type(python_model).__name__} instance needs cloudpickle, which is not installed. Install "
            "it (pip install cloudpickle), or better, save the model as code: python_model='model.py', a file "
            "that calls mltrail.models.set_model(...).", InvalidParameterValue.error_code) from None
    try:
        with open(file, "wb") as fh:
            cloudpickle.dump(python_model, fh)
    except Exception as e:
        raise InvalidParameterValue(
            f"Failed to serialize Python model {type(python_model).__name__}: {type(e).__name__}: {e}. Save the model "
            "into a Python file and log it as code instead (python_model='model.py' calling "
            "mltrail.models.set_model(...)).") from e


def _mlflow_names() -> dict[tuple[str, str], Any]:
    from mltrail.pyfunc.model import PythonModel, PythonModelContext, TypeHints

    return {("mlflow.pyfunc.model", "PythonModel"): PythonModel, ("mlflow.pyfunc", "PythonModel"): PythonModel,
            ("mlflow.pyfunc.model", "PythonModelContext"): PythonModelContext,
            ("mlflow.pyfunc", "PythonModelContext"): PythonModelContext,
            ("mlflow.models.signature", "_TypeHints"): TypeHints}


class _Unpickler(pickle.Unpickler):
    """The standard unpickler, with MLflow's base classes answered by ours."""

    def __init__(self, file: IO[bytes], where: str) -> None:
        super().__init__(file)
        self._where = where
        self._mapped = _mlflow_names()

    def find_class(self, module: str, name: str) -> Any:
        if module == "mlflow" or module.startswith("mlflow."):
            found = self._mapped.get((module, name))
            if found is None:
                raise InvalidParameterValue(
                    f"The pickled model at {self._where} needs MLflow's {module}.{name}, which mltrail does not "
                    f"provide (it maps only {sorted(f'{m}.{n}' for m, n in self._mapped)}). Save the model as "
                    "code instead.")
            return found
        return super().find_class(module, name)


def load_python_model(model_path: str, conf: dict[str, Any], allow_pickle: bool) -> Any:
    """The model instance pickled in the model directory, once the opt-in has been checked."""
    subpath = conf.get("python_model")
    if not subpath:
        raise InvalidParameterValue(
            f"Python model path was not specified in the model configuration of {model_path!r}: its "
            "python_function flavor has neither `python_model` nor `model_code_path`.")
    from mltrail._paths import resolve_under

    file = resolve_under(model_path, str(subpath))
    check_pickle_allowed(allow_pickle, repr(file))
    add_code_to_sys_path(model_path, conf)  # only now: the pickle may name modules of the model's code/
    compression = conf.get("python_model_compression")
    opener = _OPENERS.get(str(compression)) if compression else open
    if opener is None:
        raise InvalidParameterValue(
            f"Unsupported python_model_compression {compression!r} in {model_path!r}: expected one of "
            f"{sorted(_OPENERS)}.")
    saved_with = conf.get("cloudpickle_version")
    here = cloudpickle_version()
    if saved_with and here and saved_with != here:
        import logging

        logging.getLogger(__name__).warning(
            "The model at %r was pickled with cloudpickle %s; this is cloudpickle %s, and may be incompatible.",
            model_path, saved_with, here)
    try:
        with opener(file, "rb") as fh:
            return load_opted_in(fh, allow_pickle, lambda: pickle_model_refused(allow_pickle, repr(file)),
                                 functools.partial(_Unpickler, where=repr(file)))
    except ModuleNotFoundError as e:
        raise MltrailException(
            f"Cannot unpickle the model at {file!r}: it needs the module {e.name!r}, which is not installed "
            f"(the model's requirements: {os.path.join(model_path, 'requirements.txt')}).") from e
