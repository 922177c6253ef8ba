"""`mltrail.models.build_docker`, MLflow's `mlflow.models.build_docker`: build an image serving a model.

It runs `mltrail models build-docker` in a child process (the serving layer sits above this one, so it is
reached through the command line, as `mltrail.models.predict` reaches the environment builder); the
build's output streams to this process's standard error as it comes.
"""

from __future__ import annotations

import subprocess
import sys

from mltrail.errors import InvalidParameterValue, MltrailException

_ENV_MANAGERS = ("local", "virtualenv", "uv", "conda")


def build_docker(model_uri: str | None = None, name: str = "mlflow-pyfunc", env_manager: str = "virtualenv",
                 mlflow_home: str | None = None, install_java: bool | None = False, install_mlflow: bool = False,
                 base_image: str | None = None) -> None:
    """Build a Docker image whose entry point serves the model on port 8080 (/invocations and V2).

    Without `model_uri` the image serves a model mounted at /opt/ml/model. The image is built by the
    local `docker` (or `podman` when docker is missing or its daemon does not answer).

    Args:
        model_uri: a local path, `runs:/`, `models:/` or artifact URI; None for an image without a model.
        name: the image's name (and optional `:tag`).
        env_manager: accepted for MLflow compatibility ("local", "virtualenv", "uv"); "conda" is refused.
        mlflow_home: a local clone of mltrail to install in the image (default: this mltrail).
        install_java: refused when true: mltrail's images serve Python and Keras models and need no Java.
        install_mlflow: accepted for MLflow compatibility: mltrail is always installed in the image.
        base_image: the image to build from (default: python:<this Python's major.minor>-slim).

    Raises:
        InvalidParameterValue: an argument mltrail does not support.
        MltrailException: the build could not run or failed (its output above says why).
    """
    if env_manager not in _ENV_MANAGERS:
        raise InvalidParameterValue(
            f"Invalid value for `env_manager`: {env_manager!r}. Must be one of {list(_ENV_MANAGERS)}.")
    if env_manager == "conda":
        raise InvalidParameterValue("env_manager 'conda' is not supported by mltrail: the image pip-installs the "
                                    "model's requirements; use 'virtualenv' (the default) or 'local'.")
    if install_java:
        raise InvalidParameterValue("install_java=True is not supported by mltrail: its images serve Python and "
                                    "Keras models (no Spark, H2O or John Snow Labs flavors) and need no Java.")
    cmd = [sys.executable, "-m", "mltrail.serving", "build-docker", "-n", name, "--env-manager", env_manager]
    if model_uri is not None:
        cmd += ["-m", str(model_uri)]
    if mlflow_home is not None:
        cmd += ["--mlflow-home", str(mlflow_home)]
    if install_mlflow:
        cmd.append("--install-mlflow")
    if base_image is not None:
        cmd += ["--base-image", base_image]
    proc = subprocess.run(cmd, check=False)  # its output streams to ours, as MLflow's `docker build` does
    if proc.returncode != 0:
        raise MltrailException(
            f"Docker build failed: `mltrail models build-docker` exited with status {proc.returncode} (its "
            "error is above).")
