"""`mltrail.models.predict`, MLflow's `mlflow.models.predict`: score input data or a file with a saved model.

`env_manager="local"` loads the model in this process. `"virtualenv"` (and `"uv"`, the same here)
runs `mltrail models predict --env-manager virtualenv` in a child process: that command builds (once,
cached) an environment from the model's requirements and predicts inside it, so this module reaches
the environment builder through the command line, never by importing the serving layer.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from typing import Any

from mltrail.errors import InvalidParameterValue, MltrailException

_logger = logging.getLogger(__name__)

_JSON = "json"
_CSV = "csv"
_LOCAL = "local"
_VIRTUALENV = "virtualenv"
_UV = "uv"
_CONDA = "conda"
_ENV_MANAGERS = (_LOCAL, _VIRTUALENV, _UV, _CONDA)


def _check_arguments(content_type: str, env_manager: str, extra_envs: dict[str, str] | None,
                     pip_requirements_override: list[str] | None, input_data: Any, input_path: str | None) -> None:
    if content_type not in (_JSON, _CSV):
        raise InvalidParameterValue(f"Content type must be one of {_JSON} or {_CSV}. Received: {content_type!r}.")
    if env_manager not in _ENV_MANAGERS:
        raise InvalidParameterValue(
            f"Invalid value for `env_manager`: {env_manager!r}. Must be one of {list(_ENV_MANAGERS)}.")
    if env_manager == _CONDA:
        raise InvalidParameterValue(
            "env_manager 'conda' is not supported by mltrail: use 'local' (this Python) or 'virtualenv' (a cached "
            "environment built with venv and pip from the model's requirements.txt), as `mltrail models predict "
            "--env-manager` does.")
    if extra_envs and env_manager not in (_VIRTUALENV, _UV):
        raise InvalidParameterValue(
            "Extra environment variables are only supported when env_manager is set to 'virtualenv', 'conda' or "
            f"'uv'. Received env_manager={env_manager!r}.")
    if pip_requirements_override:
        if env_manager == _LOCAL:
            raise MltrailException(
                "`pip_requirements_override` is not supported for local env manager. Please use conda or virtualenv "
                "instead.")
        raise InvalidParameterValue(
            "`pip_requirements_override` is not supported by mltrail's virtualenv environments (they are built from "
            "the model's requirements.txt). Change the model's requirements with "
            "mltrail.models.update_model_requirements (or `mltrail models update-pip-requirements`), then predict "
            f"again. Received pip_requirements_override={pip_requirements_override!r}.")
    if input_data is not None and input_path is not None:
        raise InvalidParameterValue(
            "Both input_data and input_path are provided. Only one of them should be specified.")


def _serialize_input(input_data: Any, content_type: str) -> str:
    """`input_data` as the text of an input file: a scoring-server JSON body, or a CSV table."""
    import pandas as pd

    if content_type == _CSV:
        if isinstance(input_data, str):
            from io import StringIO

            try:
                pd.read_csv(StringIO(input_data))
            except (ValueError, pd.errors.ParserError) as e:
                raise InvalidParameterValue(
                    f"Failed to deserialize input string data to Pandas DataFrame: {e}.") from None
            return input_data
        if not isinstance(input_data, list | dict | pd.DataFrame):
            raise InvalidParameterValue(
                "Input data must be one of (str, list, dict, pandas.DataFrame) when content type is 'csv', but got "
                f"{type(input_data)}.")
        try:
            return str(pd.DataFrame(input_data).to_csv(index=False))
        except (ValueError, TypeError) as e:
            raise InvalidParameterValue(f"Failed to serialize input data to CSV format: {e}.") from None
    from mltrail.models.input_example import convert_input_example_to_serving_input

    try:
        body = convert_input_example_to_serving_input(input_data)
    except (ValueError, TypeError, MltrailException) as e:
        raise InvalidParameterValue(
            "Invalid input data, please make sure the data is acceptable by the loaded pyfunc model. Use "
            f"`mltrail.models.convert_input_example_to_serving_input` to manually validate your input data. "
            f"Received {type(input_data).__name__}: {e}") from None
    return str(body)


def _predict_here(model_uri: str, input_path: str | None, content_type: str, output_path: str | None) -> None:
    """Load the model in this process, predict, and write `{"predictions": ...}` (MLflow's local predict)."""
    from mltrail.models.pyfunc import load_model
    from mltrail.models.scoring_io import parse_csv, predictions_body
    from mltrail.models.serving_input import decode_json, split_payload

    model = load_model(model_uri)
    if input_path is None:
        input_text = sys.stdin.buffer.read()
    else:
        with open(input_path, "rb") as fh:
            input_text = fh.read()
    if content_type == _JSON:
        data, params = split_payload(decode_json(input_text))
    else:
        data, params = parse_csv(input_text, model.metadata.get_input_schema()), None
    predictions = model.predict(data, params=params) if params else model.predict(data)
    body = predictions_body(predictions)
    if output_path:
        with open(output_path, "wb") as fh:
            fh.write(body)
    else:
        sys.stdout.write(body.decode("utf-8") + "\n")
        sys.stdout.flush()


def _predict_in_env(model_uri: str, input_path: str | None, content_type: str, output_path: str | None,
                    extra_envs: dict[str, str] | None = None) -> None:
    """Run `mltrail models predict --env-manager virtualenv` in a child process, with `extra_envs` set for it."""
    cmd = [sys.executable, "-m", "mltrail.cli", "models", "predict", "-m", model_uri, "-t", content_type,
           "--env-manager", _VIRTUALENV]
    if input_path:
        cmd += ["-i", os.path.abspath(input_path)]  # else the child reads our standard input
    if output_path:
        cmd += ["-o", os.path.abspath(output_path)]
    env = {**os.environ, **{str(k): str(v) for k, v in (extra_envs or {}).items()}}
    # stdout is captured and written to sys.stdout (so notebooks show it); the child's stderr (the
    # environment build's progress, errors) goes straight to ours
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise MltrailException(
            f"Command {cmd!r} returned non zero return code {proc.returncode}.\n\nAn exception occurred while "
            f"running model prediction within a {_VIRTUALENV} environment. You can find the error message from the "
            "prediction subprocess by scrolling above.")
    if proc.stdout:
        sys.stdout.write(proc.stdout.decode("utf-8", errors="replace"))
        sys.stdout.flush()


def predict(model_uri: str, input_data: Any = None, input_path: str | None = None, content_type: str = _JSON,
            output_path: str | None = None, env_manager: str = _VIRTUALENV, install_mlflow: bool = False,
            pip_requirements_override: list[str] | None = None, extra_envs: dict[str, str] | None = None) -> None:
    """Predict with a saved model on `input_data` (or the file `input_path`); write `{"predictions": ...}` JSON.

    Args:
        model_uri: a local path, `runs:/`, `models:/` or artifact URI.
        input_data: what the pyfunc model takes (a DataFrame, an array, a list, a dict, ...); with
            `content_type="csv"` a CSV string, a list, a dict or a DataFrame.
        input_path: a file holding the input instead (a scoring-server JSON body, or CSV).
        content_type: "json" or "csv".
        output_path: where to write the predictions (default: standard output).
        env_manager: "local" (this Python), or "virtualenv"/"uv" (a cached environment built from the
            model's requirements.txt); "conda" is not supported.
        install_mlflow: accepted for MLflow compatibility (mltrail always goes into the environment).
        pip_requirements_override: not supported (refused with an error naming the alternative).
        extra_envs: environment variables for the prediction (virtualenv/uv only).

    Raises:
        InvalidParameterValue: an unsupported argument, or input data that cannot be serialized.
        MltrailException: the prediction failed in the environment's process.
    """
    _check_arguments(content_type, env_manager, extra_envs, pip_requirements_override, input_data, input_path)
    if install_mlflow:
        _logger.info("install_mlflow has no effect: mltrail installs itself in the model's environment.")
    from mltrail.uris import resolve_model_uri

    # resolved here, with this process's tracking URI, so the child process needs none
    local = resolve_model_uri(model_uri)
    run = _predict_here if env_manager == _LOCAL else _predict_in_env
    extra = {} if env_manager == _LOCAL else {"extra_envs": extra_envs}
    if input_data is None:
        run(local, input_path, content_type, output_path, **extra)  # no input_path: standard input
        return
    with tempfile.TemporaryDirectory() as tmp:
        # written to a file as MLflow does, so that both ways read exactly what a user's file would hold
        path = os.path.join(tmp, f"input.{content_type}")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(_serialize_input(input_data, content_type))
        run(local, path, content_type, output_path, **extra)

__all__ = ["predict"]
