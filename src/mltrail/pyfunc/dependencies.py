"""`get_model_dependencies`: the local path of a model's `requirements.txt` (or its `conda.yaml`), as MLflow returns it."""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.models.environment import CONDA_ENV_FILE, REQUIREMENTS_FILE
from mltrail.models.mlmodel import Model
from mltrail.models.pyfunc import FLAVOR_NAME

__all__ = ["get_model_dependencies"]

_log = logging.getLogger(__name__)


def _conda_yaml(model_dir: str) -> str:
    from mltrail._paths import resolve_under

    conf = Model.load(model_dir).flavors.get(FLAVOR_NAME) or {}
    env = conf.get("env")
    name = env if isinstance(env, str) else (env or {}).get("conda", CONDA_ENV_FILE)
    path = resolve_under(model_dir, str(name))
    if not os.path.isfile(path):
        raise ResourceDoesNotExist(f"The model at {model_dir!r} has no conda environment file ({name!r}).")
    return path


def _pip_from_conda(model_dir: str) -> str:
    """A requirements file made from the pip section of the model's conda.yaml (older models have no other)."""
    import yaml

    with open(_conda_yaml(model_dir), encoding="utf-8") as fh:
        conda: dict[str, Any] = yaml.safe_load(fh) or {}
    deps = list(conda.get("dependencies") or [])
    pip = next((d for d in deps if isinstance(d, dict) and "pip" in d), None)
    if pip is None:
        raise ResourceDoesNotExist("No pip section found in conda.yaml file in the model directory.")
    others = [str(d) for d in deps if d is not pip]
    if others:
        _log.warning("The following conda dependencies have been excluded from the environment file: %s.",
                     ", ".join(others))
    out = os.path.join(tempfile.mkdtemp(prefix="mltrail-deps-"), REQUIREMENTS_FILE)
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("\n".join(str(r) for r in pip["pip"]) + "\n")
    return out


def get_model_dependencies(model_uri: str, format: str = "pip") -> str:  # noqa: A002 (MLflow's keyword)
    """The local path of the model's pip `requirements.txt` (`format="pip"`) or its `conda.yaml` (`format="conda"`).

    A model without `requirements.txt` gets one written from its conda.yaml's pip section.
    """
    from mltrail.uris import resolve_model_uri

    if format not in ("pip", "conda"):
        raise InvalidParameterValue(f"Illegal format argument '{format}': expected 'pip' or 'conda'.")
    model_dir = resolve_model_uri(model_uri)
    if format == "conda":
        return _conda_yaml(model_dir)
    requirements = os.path.join(model_dir, REQUIREMENTS_FILE)
    if os.path.isfile(requirements):
        _log.info("To install the dependencies that were used to train the model, run the following command: "
                  "'pip install -r %s'.", requirements)
        return requirements
    _log.info("%s is not found in the model directory. Falling back to extracting pip requirements from the "
              "model's 'conda.yaml' file. Conda dependencies will be ignored.", REQUIREMENTS_FILE)
    return _pip_from_conda(model_dir)
