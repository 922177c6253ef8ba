"""`pyfunc.save_model` / `log_model` for custom Python models, writing the MLmodel as MLflow 3 does.

`python_model` is a path to a model file (a model from code: the file is copied to the model's
root and recorded as `model_code_path`, loader `mlflow.pyfunc.loaders.code_model`), a
`PythonModel` instance or a one-argument callable (pickled with cloudpickle into
`python_model.pkl`, loader `mlflow.pyfunc.model`; loading it needs the pickle opt-in). The
loader names are MLflow's, so MLflow and mltrail read each other's custom models.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any

from mltrail.errors import InvalidParameterValue, MltrailException, ResourceAlreadyExists
from mltrail.models.mlmodel import MLMODEL_FILE_NAME, Model, ModelInfo
from mltrail.models.pyfunc import FLAVOR_NAME, MAIN, read_model_config
from mltrail.models.signature import ModelSignature
from mltrail.pyfunc.artifacts import save_artifacts
from mltrail.pyfunc.code_model import MODEL_CODE_PATH, load_model_code, resolve_code_path
from mltrail.pyfunc.model import (
    FunctionPythonModel,
    PythonModel,
    PythonModelContext,
    PythonModelWrapper,
    is_streamable,
)
from mltrail.pyfunc.pickled import PICKLE_FILE, cloudpickle_version, dump_python_model

__all__ = ["CODE", "CODE_MODEL_LOADER", "DATA", "ENV", "MODEL_CONFIG", "PICKLED_MODEL_LOADER", "PY_VERSION", "TASK",
           "EnvType", "add_to_model", "get_default_conda_env", "get_default_pip_requirements", "log_model", "save_model"]

CODE_MODEL_LOADER = "mlflow.pyfunc.loaders.code_model"
PICKLED_MODEL_LOADER = "mlflow.pyfunc.model"
CODE = "code"
DATA = "data"
ENV = "env"
PY_VERSION = "python_version"
MODEL_CONFIG = "config"
TASK = "task"


class EnvType:
    """The keys of the pyfunc flavor's `env` entry: the conda file and the virtualenv (python_env) file."""

    CONDA = "conda"
    VIRTUALENV = "virtualenv"

    def __init__(self) -> None:
        raise NotImplementedError("EnvType holds constants; it is not meant to be instantiated.")

_log = logging.getLogger(__name__)


def get_default_pip_requirements() -> list[str]:
    """The requirements every custom model gets: mltrail and cloudpickle (pinned to what is installed)."""
    from mltrail.models.environment import default_requirements

    return default_requirements(["cloudpickle"])


def get_default_conda_env() -> dict[str, Any]:
    """A conda environment holding the default pip requirements."""
    from mltrail.models.environment import installed_version, python_version

    pip = installed_version("pip")
    return {"name": "mltrail-env", "channels": ["conda-forge"],
            "dependencies": [f"python={python_version()}", f"pip<={pip}" if pip else "pip",
                             {"pip": get_default_pip_requirements()}]}


def _requirements_in_use() -> list[str]:
    """The defaults, plus numpy and pandas when this process uses them (what nearly every custom model needs)."""
    import sys

    from mltrail.models.environment import default_requirements

    return default_requirements(["cloudpickle", *[m for m in ("numpy", "pandas") if m in sys.modules]])


def add_to_model(model: Model, loader_module: str, data: str | None = None, code: str | None = None,
                 conda_env: str | None = None, python_env: str | None = None,
                 model_config: dict[str, Any] | None = None, model_code_path: str | None = None,
                 **kwargs: Any) -> Model:
    """Add a `python_function` flavor to `model` (paths relative to the model directory), as MLflow's `add_to_model`."""
    from mltrail.models.environment import python_version

    params = dict(kwargs)
    params[MAIN] = loader_module
    params[PY_VERSION] = python_version()
    if code:
        params[CODE] = code
    if data:
        params[DATA] = data
    if conda_env or python_env:
        params[ENV] = {k: v for k, v in ((EnvType.CONDA, conda_env), (EnvType.VIRTUALENV, python_env)) if v}
    if model_config:
        params[MODEL_CONFIG] = model_config
    if model_code_path:
        params[MODEL_CODE_PATH] = model_code_path
    return model.add_flavor(FLAVOR_NAME, **params)


def _check_python_model(python_model: Any) -> Any:
    """The model object, checked as MLflow checks it: a PythonModel (or anything with predict) or a 1-argument callable."""
    if isinstance(python_model, PythonModel) or callable(getattr(python_model, "predict", None)):
        return python_model
    if callable(python_model):
        count = len(inspect.signature(python_model).parameters)
        if count != 1:
            raise InvalidParameterValue(
                "When `python_model` is a callable object, it must accept exactly one argument. Found "
                f"{count} arguments.")
        return python_model
    raise InvalidParameterValue(
        "`python_model` must be a PythonModel instance, callable object, or path to a script that uses set_model() "
        f"to set a PythonModel instance or callable object; received {type(python_model).__name__}.")


def _copy_code_paths(code_paths: list[str] | None, path: str) -> str | None:
    """Copy each code path into `<path>/code/` (put on sys.path at load time); the flavor's `code` entry."""
    if code_paths is None:
        return None
    if not isinstance(code_paths, list | tuple):
        raise InvalidParameterValue(
            f"Argument code_paths should be a list, not {type(code_paths).__name__}.")
    code_dir = os.path.join(path, CODE)
    os.makedirs(code_dir, exist_ok=True)
    for p in code_paths:
        source = os.fspath(p)
        if not os.path.exists(source):
            raise InvalidParameterValue(
                f"Failed to copy the specified code path '{source}' into the model artifacts. It does not exist.")
        dest = os.path.join(code_dir, os.path.basename(os.path.normpath(source)))
        if os.path.isdir(source):
            shutil.copytree(source, dest, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, dest)
    return CODE


@contextlib.contextmanager
def _on_sys_path(directory: str | None) -> Iterator[None]:
    """`directory` first on sys.path for the block (the model's code/ while it runs on its example)."""
    if directory is None:
        yield
        return
    sys.path.insert(0, directory)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(directory)


def _infer_signature(python_model: Any, context: PythonModelContext, example: Any) -> ModelSignature | None:
    """The signature from the example and the model's output on it (None, logged, when the model fails on it)."""
    from mltrail.models.signature import infer_signature

    try:
        load_context = getattr(python_model, "load_context", None)
        if callable(load_context):
            load_context(context)
        output = PythonModelWrapper(python_model, context).predict(example)
        return infer_signature(example, output)
    except Exception as e:  # as MLflow: a model that fails on its example is still saved, without a signature
        _log.warning("Failed to infer model signature from input example, error: %s", e)
        return None


def save_model(path: str | os.PathLike[str], loader_module: str | None = None, data_path: str | None = None,
               code_paths: list[str] | None = None, infer_code_paths: bool = False, conda_env: Any = None,
               mlflow_model: Model | None = None, python_model: Any = None, artifacts: dict[str, Any] | None = None,
               signature: ModelSignature | None = None, input_example: Any = None, pip_requirements: Any = None,
               extra_pip_requirements: Any = None, metadata: dict[str, Any] | None = None,
               model_config: dict[str, Any] | str | os.PathLike[str] | None = None, streamable: bool | None = None,
               **kwargs: Any) -> None:
    """Save a custom Python model to a new directory `path` in MLflow's layout.

    Args:
        python_model: a model file's path (models from code, recommended), a `PythonModel` instance or a
            one-argument callable (both pickled with cloudpickle; loading them needs the pickle opt-in).
        artifacts: `{name: URI}`; each is downloaded into the model and given to `load_context` as a local path.
        code_paths: files or directories copied into `code/`, which is put on `sys.path` at load time.
        model_config: a dict (or a YAML file's path) given to the model as `context.model_config`.
        signature: the model's signature; inferred from `input_example` and the model's output on it when absent.
        streamable: whether the model has `predict_stream` (default: whether it overrides it).
    """
    from mltrail.models.environment import resolve_requirements, write_environment
    from mltrail.models.input_example import normalize_example, save_input_example

    mlflow_model = kwargs.pop("model", mlflow_model)
    if kwargs:
        raise TypeError(f"save_model() got unexpected keyword arguments: {kwargs}")
    if loader_module is not None or data_path is not None:
        raise InvalidParameterValue(
            f"save_model(loader_module={loader_module!r}, data_path={data_path!r}) is not supported: mltrail loads "
            "only its registered flavors, never a module a model file names. Pass python_model= instead.")
    if infer_code_paths:
        raise InvalidParameterValue("infer_code_paths=True is not supported: list the files in code_paths=.")
    if python_model is None:
        raise InvalidParameterValue(
            "Either `loader_module` or `python_model` must be specified. A `python_model` should be a path to a "
            "model file, a PythonModel instance or a callable.")
    if signature is not None and not isinstance(signature, ModelSignature):
        if not isinstance(signature, dict):
            raise InvalidParameterValue(
                f"signature must be a ModelSignature (see mltrail.models.infer_signature); received "
                f"{type(signature).__name__}.")
        signature = ModelSignature.from_dict(signature)
    config = read_model_config(model_config)
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise ResourceAlreadyExists(f"Path '{path}' already exists and is not empty")

    code_file: str | None = None
    if isinstance(python_model, str | os.PathLike):
        code_file = resolve_code_path(python_model)
        python_model = load_model_code(code_file)
    python_model = _check_python_model(python_model)
    if callable(python_model) and not callable(getattr(python_model, "predict", None)):
        if all(a is None for a in (input_example, pip_requirements, extra_pip_requirements)):
            raise InvalidParameterValue(
                "If `python_model` is a callable object, at least one of `input_example`, `pip_requirements`, or "
                "`extra_pip_requirements` must be specified.")
        python_model = FunctionPythonModel(python_model)
    elif code_file is None:
        _log.warning("Passing a Python object as `python_model` causes it to be serialized using CloudPickle; "
                     "loading it back executes code from the model's files (mltrail asks for an opt-in). Consider "
                     "using a file path (str or Path) instead: models from code need no pickle.")
    requirements = resolve_requirements(_requirements_in_use(), pip_requirements, extra_pip_requirements, conda_env)
    mlmodel = mlflow_model if mlflow_model is not None else Model()
    os.makedirs(path, exist_ok=True)
    try:
        flavor: dict[str, Any] = {}
        version = cloudpickle_version()
        if version:
            flavor["cloudpickle_version"] = version
        if code_file is not None:
            shutil.copyfile(code_file, os.path.join(path, os.path.basename(code_file)))
        else:
            dump_python_model(python_model, os.path.join(path, PICKLE_FILE))
            flavor["python_model"] = PICKLE_FILE
        if artifacts:
            flavor["artifacts"] = save_artifacts(path, artifacts)
        from mltrail.pyfunc.artifacts import artifact_paths

        context = PythonModelContext(artifact_paths(path, flavor), config)
        code = _copy_code_paths(code_paths, path)
        if input_example is not None:
            example = normalize_example(input_example)
            mlmodel.saved_input_example_info = save_input_example(path, example)
            if signature is None:
                with _on_sys_path(os.path.join(path, CODE) if code else None):
                    signature = _infer_signature(python_model, context, example)
            else:
                _check_example(example, signature)
        if signature is not None:
            mlmodel.signature = signature
        if metadata is not None:
            mlmodel.metadata = metadata
        env = write_environment(path, requirements, conda_env)
        add_to_model(mlmodel, CODE_MODEL_LOADER if code_file else PICKLED_MODEL_LOADER,
                     conda_env=env["conda"], python_env=env["virtualenv"], model_config=config,
                     model_code_path=code_file,
                     streamable=bool(streamable) if streamable is not None else is_streamable(python_model),
                     **flavor)
        mlmodel.flavors[FLAVOR_NAME][CODE] = code  # MLflow writes `code: null` when there is none
        mlmodel.model_size_bytes = sum(os.path.getsize(os.path.join(d, f))
                                       for d, _, files in os.walk(path) for f in files)
        mlmodel.save(os.path.join(path, MLMODEL_FILE_NAME))
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)  # no half-written model left behind
        raise


def _check_example(example: Any, signature: ModelSignature) -> None:
    from mltrail.models.enforce import enforce_schema

    try:
        enforce_schema(example, signature.inputs)
    except MltrailException as e:
        raise InvalidParameterValue(f"Input example does not match the model signature. {e.message}") from None


def log_model(artifact_path: str | None = None, loader_module: str | None = None, data_path: str | None = None,
              code_paths: list[str] | None = None, infer_code_paths: bool = False, conda_env: Any = None,
              python_model: Any = None, artifacts: dict[str, Any] | None = None,
              registered_model_name: str | None = None, signature: ModelSignature | None = None,
              input_example: Any = None, await_registration_for: int | None = None, pip_requirements: Any = None,
              extra_pip_requirements: Any = None, metadata: dict[str, Any] | None = None,
              model_config: dict[str, Any] | str | os.PathLike[str] | None = None, streamable: bool | None = None,
              name: str | None = None, params: dict[str, Any] | None = None, tags: dict[str, Any] | None = None,
              model_type: str | None = None, step: int = 0, model_id: str | None = None) -> ModelInfo:
    """Log a custom Python model as a LoggedModel of the active run (or the current experiment).

    Args:
        name: the model's name; `artifact_path` is its deprecated alias (FutureWarning).
        registered_model_name: also register the model under this name.
        Other arguments: see `save_model`.

    Returns:
        A ModelInfo with `model_uri` = `models:/<model_id>`.
    """
    from mltrail.models.model_logging import log_model as _log_model

    return _log_model(save_model, name=name, artifact_path=artifact_path,
                      registered_model_name=registered_model_name, await_registration_for=await_registration_for,
                      metadata=metadata, params=params, tags=tags, model_type=model_type, step=step,
                      model_id=model_id, loader_module=loader_module, data_path=data_path, code_paths=code_paths,
                      infer_code_paths=infer_code_paths, conda_env=conda_env, python_model=python_model,
                      artifacts=artifacts, signature=signature, input_example=input_example,
                      pip_requirements=pip_requirements, extra_pip_requirements=extra_pip_requirements,
                      model_config=model_config, streamable=streamable)
