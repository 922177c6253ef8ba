"""Models from code: run the user's model file and take the object it passed to `set_model`.

Running the file is the point (it defines the model), and happens only when the user saves or
loads such a model. No pickle is involved. The file may call `mltrail.models.set_model`, or
`mlflow.models.set_model` when it does `import mltrail as mlflow`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import uuid
from typing import Any

from mltrail.errors import InvalidParameterValue, MltrailException
from mltrail.models.model_code import set_model, take_model

__all__ = ["MODEL_CODE_PATH", "load_model_code", "resolve_code_path"]

MODEL_CODE_PATH = "model_code_path"
# set_model's slot is process-wide: one model file runs at a time (re-entrant: a model file may itself load
# a model from code while it runs)
_running = threading.RLock()


def resolve_code_path(python_model: str | os.PathLike[str]) -> str:
    """The absolute path of a model file given as `python_model`, which must exist."""
    path = os.path.abspath(os.fspath(python_model))
    if not os.path.isfile(path):
        hint = f" Perhaps you meant '{path}.py'?" if not os.path.splitext(path)[1] else ""
        raise InvalidParameterValue(
            f"The provided model path '{path}' does not exist. Ensure the file path is valid and try again.{hint}")
    return path


def load_model_code(code_path: str) -> Any:
    """Run the model file at `code_path` as a fresh module; return what it passed to `set_model`.

    Raises:
        MltrailException: the file failed to import or run, or never called `set_model`.
    """
    name = f"code_model_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, code_path)
    if spec is None or spec.loader is None:
        raise InvalidParameterValue(f"Failed to import code model from {code_path}: it is not a Python file.")
    module = importlib.util.module_from_spec(spec)
    with _running:
        outer = take_model()  # an enclosing model file's set_model (kept for it), or a stale one
        sys.modules[name] = module
        try:
            # compiled here rather than by the import system, so no __pycache__ lands in the model directory
            # (which may be the artifact store's own copy, used in place)
            with open(code_path, "rb") as fh:
                code = compile(fh.read(), code_path, "exec")
            exec(code, module.__dict__)  # noqa: S102 (the user's own model file, run because they load it)
        except ImportError as e:
            sys.modules.pop(name, None)
            raise MltrailException(f"Failed to import code model from {code_path}. Error: {e!s}") from e
        except Exception as e:
            sys.modules.pop(name, None)
            raise MltrailException(
                f"Failed to run user code from {code_path}. Error: {e!s}. Review the stack trace for more "
                "information.") from e
        finally:
            model = take_model()
            if outer is not None:
                set_model(outer)
    if model is None:
        raise MltrailException(
            "If the model is logged as code, ensure the model is set using mltrail.models.set_model() (or "
            f"mlflow.models.set_model() after `import mltrail as mlflow`) within the code file {code_path}.")
    return model
