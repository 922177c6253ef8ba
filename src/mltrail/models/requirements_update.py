"""`update_model_requirements`: add or remove pip requirements in a saved model's environment files.

MLflow 3's `mlflow.models.update_model_requirements`. The model's `requirements.txt`, the pip
section of `conda.yaml` and any inline requirements of `python_env.yaml` are rewritten where the
model lives (a local directory, a run's artifacts or a logged model's, on a local or remote
store). Registered-model URIs are refused: the registry's copies are read-only, as in MLflow.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from mltrail.client import Client
from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.models.environment import CONDA_ENV_FILE, PYTHON_ENV_FILE, REQUIREMENTS_FILE
from mltrail.store.artifact import get_artifact_repository
from mltrail.tracking_uri import local_dir_of
from mltrail.uri_forms import is_models_uri, is_runs_uri, parse_model_uri
from mltrail.uris import stored_model_location

if TYPE_CHECKING:
    from packaging.requirements import Requirement

    from mltrail.store.artifact.base import ArtifactRepository

_log = logging.getLogger("mltrail.models")
_OPERATIONS = ("add", "remove")


def parse_requirements(requirement_list: Sequence[str]) -> list[Requirement]:
    """Each string as a PEP 508 requirement; all the invalid ones are named in one error."""
    from packaging.requirements import InvalidRequirement, Requirement

    parsed, invalid = [], {}
    for text in requirement_list:
        try:
            parsed.append(Requirement(str(text).strip()))
        except InvalidRequirement as e:
            invalid[text] = str(e)
    if invalid:
        raise InvalidParameterValue(f"Found invalid requirements: {invalid}")
    return parsed


def _name_of(line: str) -> str | None:
    """The canonical distribution name of a requirement line; None for comments, options and blanks."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    text = line.split(" #", 1)[0].strip()
    if not text or text.startswith(("#", "-")):
        return None
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return None


def edit_requirement_lines(lines: Sequence[str], requirements: Sequence[Requirement],
                           operation: Literal["add", "remove"]) -> list[str]:
    """`lines` with `requirements` added (replacing a line of the same package in place, else appended)
    or removed (by package name, whatever the version). Comments and pip options are kept as they are."""
    from packaging.utils import canonicalize_name

    out = list(lines)
    for req in requirements:
        name = canonicalize_name(req.name)
        where = [i for i, line in enumerate(out) if _name_of(line) == name]
        if operation == "add":
            if where:
                out[where[0]] = str(req)
                out = [line for i, line in enumerate(out) if i not in where[1:]]
            else:
                out.append(str(req))
        elif where:
            out = [line for i, line in enumerate(out) if i not in where]
        else:
            _log.warning('"%s" not found in requirements, ignoring', req.name)
    return out


def _edit_requirements_txt(text: str, requirements: Sequence[Requirement], operation: Any) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    lines = edit_requirement_lines([line for line in lines if line], requirements, operation)
    return "\n".join(lines) + ("\n" if lines else "")


def _edit_conda_yaml(text: str, requirements: Sequence[Requirement], operation: Any) -> str:
    import yaml

    env = yaml.safe_load(text) or {}
    deps = env.setdefault("dependencies", [])
    pip_section = next((d for d in deps if isinstance(d, dict) and "pip" in d), None)
    if pip_section is None:
        if operation == "remove":
            return text
        pip_section = {"pip": []}
        deps.append(pip_section)
    pip_section["pip"] = edit_requirement_lines([str(r) for r in pip_section["pip"] or []], requirements, operation)
    return str(yaml.safe_dump(env, default_flow_style=False, sort_keys=False))


def _edit_python_env_yaml(text: str, requirements: Sequence[Requirement], operation: Any) -> str:
    """Inline requirements are edited; `-r requirements.txt` (what mltrail and MLflow write) needs nothing."""
    import yaml

    env = yaml.safe_load(text) or {}
    deps = [str(d) for d in env.get("dependencies") or []]
    if all(_name_of(d) is None for d in deps):
        return text
    env["dependencies"] = edit_requirement_lines(deps, requirements, operation)
    return str(yaml.safe_dump(env, default_flow_style=False, sort_keys=False))


_EDITORS = {REQUIREMENTS_FILE: _edit_requirements_txt, CONDA_ENV_FILE: _edit_conda_yaml,
            PYTHON_ENV_FILE: _edit_python_env_yaml}


def _model_location(model_uri: str, client: Client) -> tuple[ArtifactRepository, str]:
    """The repository holding the model's files and the model's directory inside it."""
    if is_runs_uri(model_uri) or is_models_uri(model_uri):
        parsed = parse_model_uri(model_uri)
        if parsed.is_registered:
            raise InvalidParameterValue(
                f'Failed to set requirements on "{model_uri}". Model URIs with the `models:/` scheme are not '
                "supported for registered models (the registry's copies are read-only): use the model's "
                "runs:/ or models:/<model_id> URI.")
        root, path = stored_model_location(client, parsed)
        repo = client.artifact_repo_for(root)
        if not any(f.path.rstrip("/").rpartition("/")[2] == "MLmodel" for f in repo.list_artifacts(path or None)):
            raise ResourceDoesNotExist(f"No model at {model_uri!r}: it has no MLmodel file.")
        return repo, path
    local = local_dir_of(model_uri)
    if local is not None:
        if not os.path.isdir(local):
            raise ResourceDoesNotExist(f"No model at {model_uri!r}: {local!r} is not a directory.")
        return get_artifact_repository(local), ""
    return client.artifact_repo_for(model_uri), ""


def update_model_requirements(model_uri: str, operation: Literal["add", "remove"],
                              requirement_list: list[str]) -> None:
    """Add or remove pip requirements in a model's `requirements.txt`, `conda.yaml` and `python_env.yaml`.

    Adding replaces a requirement of the same package (whatever its version) or appends it;
    removing drops every requirement of the named packages, ignoring version specifiers (a
    package that is not there is logged and skipped).

    Args:
        model_uri: a local directory, `file://`, `runs:/<run_id>/<path>`, `models:/<model_id>` or an
            artifact URI (`s3://`, `mlflow-artifacts:/`, ...). Registered models (`models:/<name>/<version>`,
            `models:/<name>@<alias>`) are refused.
        operation: "add" or "remove".
        requirement_list: pip requirement specifiers, e.g. ["numpy==1.26.4", "pandas>=2"].
    """
    if operation not in _OPERATIONS:
        raise InvalidParameterValue(f"Invalid operation {operation!r}: expected 'add' or 'remove'.")
    if isinstance(requirement_list, str) or not isinstance(requirement_list, Sequence):
        raise InvalidParameterValue(
            f"requirement_list must be a list of requirement strings; received {type(requirement_list).__name__}.")
    requirements = parse_requirements(requirement_list)
    model_uri = os.fspath(model_uri)
    repo, model_dir = _model_location(model_uri, Client())
    updated = []
    for file_name, edit in _EDITORS.items():
        path = f"{model_dir}/{file_name}" if model_dir else file_name
        try:
            before = repo.read_bytes(path).decode("utf-8")
        except ResourceDoesNotExist:
            continue
        after = edit(before, requirements, operation)
        if after != before:
            repo.write_bytes(path, after.encode("utf-8"))
        updated.append(file_name)
    if REQUIREMENTS_FILE not in updated and CONDA_ENV_FILE not in updated:
        raise ResourceDoesNotExist(
            f"No {REQUIREMENTS_FILE} or {CONDA_ENV_FILE} at {model_uri!r}: expected the directory of a saved model.")
    _log.info("Updated the requirements of %s (%s): %s %s", model_uri, ", ".join(updated), operation,
              [str(r) for r in requirements])
