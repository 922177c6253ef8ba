"""The Python environment a model needs: `requirements.txt`, `python_env.yaml` and `conda.yaml`.

Versions are the ones actually installed (importlib.metadata), so a model logged on this machine
records exactly what it was saved with. Users replace the list (`pip_requirements`), extend it
(`extra_pip_requirements`) or give a conda environment (`conda_env`), as in MLflow.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Iterable, Sequence
from typing import Any

from mltrail.errors import InvalidParameterValue

REQUIREMENTS_FILE = "requirements.txt"
PYTHON_ENV_FILE = "python_env.yaml"
CONDA_ENV_FILE = "conda.yaml"

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def installed_version(dist: str) -> str | None:
    """The installed version of distribution `dist`, or None."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def pin(*alternatives: str) -> str | None:
    """`name==version` for the first installed distribution among `alternatives` (e.g. tensorflow, tensorflow-cpu)."""
    for dist in alternatives:
        version = installed_version(dist)
        if version is not None:
            return f"{dist}=={version}"
    return None


def default_requirements(packages: Iterable[str | Sequence[str]]) -> list[str]:
    """Pinned requirements for each package (or group of alternatives) that is installed, plus mltrail."""
    out = [r for r in [pin("mltrail")] if r]
    for entry in packages:
        alternatives = (entry,) if isinstance(entry, str) else tuple(entry)
        req = pin(*alternatives)
        if req and req not in out:
            out.append(req)
    return out


def requirement_name(req: str) -> str | None:
    """The normalised distribution name of a requirement line, or None for options (`-r file`)."""
    m = _NAME.match(req)
    if not m or req.lstrip().startswith("-"):
        return None
    return re.sub(r"[-_.]+", "-", m.group(1)).lower()


def _read_list(reqs: str | os.PathLike[str] | Sequence[str], what: str) -> list[str]:
    if isinstance(reqs, str | os.PathLike):
        path = os.fspath(reqs)
        if not os.path.isfile(path):
            raise InvalidParameterValue(
                f"{what} {path!r} is not a file: expected a requirements file path or a list of requirements.")
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    elif isinstance(reqs, list | tuple):
        lines = [str(r) for r in reqs]
    else:
        raise InvalidParameterValue(
            f"{what} must be a list of requirement strings or a path to a requirements file; received "
            f"{type(reqs).__name__}.")
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def _from_conda_env(conda_env: str | os.PathLike[str] | dict[str, Any]) -> list[str]:
    import yaml

    if isinstance(conda_env, str | os.PathLike):
        with open(os.fspath(conda_env), encoding="utf-8") as fh:
            conda_env = yaml.safe_load(fh) or {}
    if not isinstance(conda_env, dict):
        raise InvalidParameterValue(
            f"conda_env must be a dict or a path to a YAML file; received {type(conda_env).__name__}.")
    for dep in conda_env.get("dependencies") or []:
        if isinstance(dep, dict) and "pip" in dep:
            return [str(r) for r in dep["pip"]]
    return []


def resolve_requirements(defaults: list[str], pip_requirements: Any = None, extra_pip_requirements: Any = None,
                         conda_env: Any = None) -> list[str]:
    """The final requirement list: the user's list, or the defaults with extras added (extras win by name)."""
    given = [x is not None for x in (pip_requirements, extra_pip_requirements, conda_env)]
    if sum(given) > 1:
        raise InvalidParameterValue(
            "Only one of `conda_env`, `pip_requirements` and `extra_pip_requirements` can be given; received "
            f"{[n for n, g in zip(('conda_env', 'pip_requirements', 'extra_pip_requirements'), given, strict=True) if g]}.")
    if pip_requirements is not None:
        return _read_list(pip_requirements, "pip_requirements")
    if conda_env is not None:
        return _from_conda_env(conda_env)
    reqs = list(defaults)
    if extra_pip_requirements is not None:
        extras = _read_list(extra_pip_requirements, "extra_pip_requirements")
        extra_names = {requirement_name(e) for e in extras} - {None}
        reqs = [r for r in reqs if requirement_name(r) not in extra_names] + extras
    return reqs


def python_version() -> str:
    return platform.python_version()


def write_environment(path: str, requirements: list[str], conda_env: Any = None) -> dict[str, str]:
    """Write the three environment files into `path`; return the `env` entry of the pyfunc flavor."""
    import yaml

    with open(os.path.join(path, REQUIREMENTS_FILE), "w", encoding="utf-8") as fh:
        fh.write("\n".join(requirements) + ("\n" if requirements else ""))
    build = [r for r in (pin("pip"), pin("setuptools"), pin("wheel")) if r]
    python_env = {"python": python_version(), "build_dependencies": build, "dependencies": ["-r requirements.txt"]}
    with open(os.path.join(path, PYTHON_ENV_FILE), "w", encoding="utf-8") as fh:
        yaml.safe_dump(python_env, fh, default_flow_style=False, sort_keys=False)
    if isinstance(conda_env, dict):
        conda = conda_env
    elif conda_env is not None:
        with open(os.fspath(conda_env), encoding="utf-8") as fh:
            conda = yaml.safe_load(fh) or {}
    else:
        pip_version = installed_version("pip")
        conda = {"name": "mltrail-env", "channels": ["conda-forge"],
                 "dependencies": [f"python={python_version()}",
                                  f"pip<={pip_version}" if pip_version else "pip",
                                  {"pip": list(requirements)}]}
    with open(os.path.join(path, CONDA_ENV_FILE), "w", encoding="utf-8") as fh:
        yaml.safe_dump(conda, fh, default_flow_style=False, sort_keys=False)
    return {"conda": CONDA_ENV_FILE, "virtualenv": PYTHON_ENV_FILE}
