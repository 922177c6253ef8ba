"""A custom model's `artifacts=`: each URI downloaded into the model's `artifacts/` directory, as MLflow lays it out.

Each artifact lands at `artifacts/<the last component of its URI>`; two artifacts whose names would collide
(case-insensitively, as on macOS and Windows) go under numbered folders (`artifacts/0/...`,
`artifacts/1/...`) instead, and one URI named twice is downloaded once. The pyfunc flavor records
`{name: {"path": "artifacts/...", "uri": <the URI given>}}`; at load time the context maps each
name to the local path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

from mltrail.errors import InvalidParameterValue

__all__ = ["ARTIFACTS_DIR", "artifact_paths", "save_artifacts"]

ARTIFACTS_DIR = "artifacts"


@dataclass
class _Download:
    uri: str
    local: str  # where it was downloaded (inside a staging directory)
    relative: str  # its name under artifacts/ (before collisions are resolved)
    names: list[str] = field(default_factory=list)
    final: str = ""


def _fetch(uri: str, staging: str) -> str:
    """Download (or copy, for a local path) what `uri` names into `staging`; return its local path."""
    from mltrail.store.artifact.local import local_path_of
    from mltrail.tracking_uri import scheme_of

    if scheme_of(uri) in ("", "file"):
        source = os.path.abspath(local_path_of(uri))
        if not os.path.exists(source):
            raise InvalidParameterValue(f"The artifact {uri!r} does not exist: expected a file, a directory or a URI.")
        target = os.path.join(staging, os.path.basename(os.path.normpath(source)))
        if os.path.isdir(source):
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)
        return target
    if scheme_of(uri) == "hf":
        raise InvalidParameterValue(f"The artifact {uri!r} is a Hugging Face Hub URI, which mltrail does not download.")
    from mltrail.uris import download_uri

    return download_uri(uri, staging)


def _place(downloads: list[_Download]) -> None:
    """Each download's path under `artifacts/`: its own name, or a numbered folder where names collide."""
    names = [d.relative.casefold() for d in downloads]
    colliding = {i for i, n in enumerate(names) if names.count(n) > 1}
    taken = {n for i, n in enumerate(names) if i not in colliding}
    counter = 0
    for i, d in enumerate(downloads):
        if i not in colliding:
            d.final = d.relative
            continue
        while str(counter) in taken:
            counter += 1
        taken.add(str(counter))
        d.final = f"{counter}/{d.relative}"
        counter += 1


def save_artifacts(model_path: str, artifacts: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Download every artifact into `<model_path>/artifacts/`; return the flavor's `artifacts` entry."""
    if not isinstance(artifacts, dict):
        raise InvalidParameterValue(
            f"artifacts must be a dict of name -> URI (a local path, runs:/, models:/ or an artifact URI); received "
            f"{type(artifacts).__name__}.")
    by_uri: dict[str, _Download] = {}
    with tempfile.TemporaryDirectory(prefix="mltrail-artifacts-") as tmp:
        for name, uri in artifacts.items():
            if not isinstance(uri, str | os.PathLike):
                raise InvalidParameterValue(
                    f"artifacts[{name!r}] must be a URI or a path; received {type(uri).__name__} {uri!r:.80}.")
            uri = os.fspath(uri)
            if uri in by_uri:
                by_uri[uri].names.append(str(name))
                continue
            staging = os.path.join(tmp, str(len(by_uri)))
            os.makedirs(staging)
            local = os.path.abspath(_fetch(uri, staging))
            if os.path.commonpath([local, staging]) != staging or local == staging or os.path.islink(local):
                raise InvalidParameterValue(
                    f"The artifact {name!r} ({uri!r}) was downloaded to {local!r}, not to a file or directory inside "
                    "its download directory.")
            # as MLflow: what the URI's last component names lands under its own name
            by_uri[uri] = _Download(uri, local, os.path.basename(local), [str(name)])
        downloads = list(by_uri.values())
        _place(downloads)
        config: dict[str, dict[str, str]] = {}
        for d in downloads:
            destination = os.path.join(model_path, ARTIFACTS_DIR, *d.final.split("/"))
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            shutil.move(d.local, destination)
            for name in d.names:
                config[name] = {"path": f"{ARTIFACTS_DIR}/{d.final}", "uri": d.uri}
    return config


def artifact_paths(model_path: str, conf: dict[str, Any]) -> dict[str, str]:
    """`{name: local path}` for the artifacts a pyfunc flavor records (checked to stay inside the model)."""
    from mltrail._paths import resolve_under

    out = {}
    for name, info in (conf.get("artifacts") or {}).items():
        rel = info.get("path") if isinstance(info, dict) else None
        if not rel:
            raise InvalidParameterValue(
                f"The model at {model_path!r} records artifact {name!r} without a path: expected "
                "{'path': 'artifacts/...', 'uri': ...}.")
        out[str(name)] = resolve_under(model_path, str(rel))
    return out
