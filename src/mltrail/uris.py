"""The one reader of model and artifact URIs: resolve them to a local directory, or download them.

Accepted: `models:/<model_id>[/path]` (a logged model), `models:/<name>/<version>`,
`models:/<name>/latest` and `models:/<name>@<alias>` (registry), `runs:/<run_id>/<name>[/path]`
(the run's logged model of that name, else the run's artifacts), a local path, `file://` and any
artifact URI (`s3://`, `mlflow-artifacts:/`, `http(s)://`).

A model in a local artifact store is used in place, not copied (loading is then instant): treat
the returned directory as read-only. With `dst_path`, the model is always copied there.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable

from mltrail._paths import resolve_under, safe_relpath
from mltrail.client import Client
from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.store.artifact import get_artifact_repository
from mltrail.store.artifact.local import local_path_of
from mltrail.tracking_uri import scheme_of

_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")


def is_model_id(value: str) -> bool:
    """Whether `value` looks like a logged model id (`m-` and 32 hex digits)."""
    return bool(_MODEL_ID.match(value))


def _local_path_of(uri: str) -> str | None:
    """The local directory a `file:` URI or plain path names; None for remote URIs."""
    if scheme_of(uri) in ("", "file"):
        return os.path.abspath(local_path_of(uri))
    return None


def _place(local: str, dst_path: str | None, what: str) -> str:
    """`local` itself, or a copy of it under `dst_path` when one was asked for."""
    if not os.path.exists(local):
        raise ResourceDoesNotExist(f"No model at {what}: {local!r} does not exist.")
    if dst_path is None:
        return local
    os.makedirs(dst_path, exist_ok=True)
    target = os.path.join(os.path.abspath(dst_path), os.path.basename(os.path.normpath(local)) or "model")
    if os.path.isdir(local):
        shutil.copytree(local, target, dirs_exist_ok=True)
    else:
        shutil.copyfile(local, target)
    return target


def _under(location: str, subpath: str, dst_path: str | None, what: str,
           download: Callable[[str, str], str]) -> str:
    """The model files at `location`/`subpath`: in place when local, else via `download(subpath, dst)`."""
    subpath = safe_relpath(subpath)
    local_root = _local_path_of(location)
    if local_root is not None:
        return _place(resolve_under(local_root, subpath), dst_path, what)
    return str(download(subpath, dst_path or tempfile.mkdtemp(prefix="mltrail-model-")))


def _resolve_logged_model(model_id: str, subpath: str, dst_path: str | None, tracking_uri: str | None) -> str:
    client = Client(tracking_uri)
    model = client.get_logged_model(model_id)
    return _under(model.artifact_location, subpath, dst_path, f"models:/{model_id}",
                  lambda p, d: client.download_logged_model_artifacts(model_id, p, d))


def _resolve_registry(uri: str, name: str, version: str | None, alias: str | None, subpath: str,
                      dst_path: str | None, tracking_uri: str | None) -> str:
    """`models:/<name>/<version|latest|stage>` and `models:/<name>@<alias>` through the model registry."""
    client = Client(tracking_uri)
    if alias is not None:
        mv = client.get_model_version_by_alias(name, alias)
    elif version is not None and version.isdigit():
        mv = client.get_model_version(name, version)
    else:
        stages = None if version is None or version.lower() == "latest" else [version]
        versions = client.get_latest_versions(name, stages=stages)
        if not versions:
            raise ResourceDoesNotExist(f"No versions of registered model {name!r} match {uri!r}.")
        mv = max(versions, key=lambda v: int(v.version))
    if mv.model_id:
        return _resolve_logged_model(mv.model_id, subpath, dst_path, tracking_uri)
    # the version's own files, wherever its source pointed (a copy's source is another version)
    location = client.get_model_version_download_uri(name, mv.version)
    return _under(location, subpath, dst_path, uri,
                  lambda p, d: client.artifact_repo_for(location).download_artifacts(p, d))


def _resolve_models_uri(uri: str, dst_path: str | None, tracking_uri: str | None) -> str:
    body = uri[len("models:"):].lstrip("/")
    parts = [p for p in body.split("/") if p]
    if not parts:
        raise InvalidParameterValue(
            f"Invalid model URI {uri!r}: expected models:/<model_id>, models:/<name>/<version> or "
            "models:/<name>@<alias>.")
    head = parts[0]
    if "@" in head:
        name, _, alias = head.rpartition("@")  # names may hold "@", aliases may not
        if not name or not alias:
            raise InvalidParameterValue(f"Invalid model URI {uri!r}: expected models:/<name>@<alias>.")
        return _resolve_registry(uri, name, None, alias, "/".join(parts[1:]), dst_path, tracking_uri)
    if is_model_id(head) or len(parts) == 1:
        return _resolve_logged_model(head, "/".join(parts[1:]), dst_path, tracking_uri)
    return _resolve_registry(uri, head, parts[1], None, "/".join(parts[2:]), dst_path, tracking_uri)


def _resolve_runs_uri(uri: str, dst_path: str | None, tracking_uri: str | None) -> str:
    body = uri[len("runs:"):].lstrip("/")
    run_id, _, path = body.partition("/")
    if not run_id:
        raise InvalidParameterValue(f"Invalid model URI {uri!r}: expected runs:/<run_id>/<artifact path>.")
    client = Client(tracking_uri)
    run = client.get_run(run_id)
    first, _, rest = path.strip("/").partition("/")
    if first:
        # MLflow 3 keeps a model under its logged model, not the run: find the run's output of that name
        matches = []
        for output in (run.outputs.model_outputs if run.outputs else []):
            try:
                model = client.get_logged_model(output.model_id)
            except ResourceDoesNotExist:
                continue
            if model.name == first:
                matches.append(model)
        if matches:
            ready = [m for m in matches if m.status == "READY"] or matches
            model = max(ready, key=lambda m: m.creation_timestamp)
            return _under(model.artifact_location, rest, dst_path, uri,
                          lambda p, d: client.download_logged_model_artifacts(model.model_id, p, d))
    return _under(run.info.artifact_uri, path, dst_path, uri,
                  lambda p, d: client.download_artifacts(run_id, p, d))


def resolve_model_uri(model_uri: str | os.PathLike[str], dst_path: str | None = None,
                      tracking_uri: str | None = None) -> str:
    """The local directory (or file) holding the model that `model_uri` names.

    Args:
        model_uri: any URI listed in the module doc.
        dst_path: copy (download) the model under this directory; by default a local model is used in
            place and a remote one goes to a new temporary directory.
        tracking_uri: the tracking server or database that knows the runs and models (default: current).

    Returns:
        A local path.
    """
    uri = os.fspath(model_uri)
    if not isinstance(uri, str) or not uri:
        raise InvalidParameterValue(f"Invalid model URI {model_uri!r}: expected a non-empty string.")
    if uri.startswith("models:"):
        return _resolve_models_uri(uri, dst_path, tracking_uri)
    if uri.startswith("runs:"):
        return _resolve_runs_uri(uri, dst_path, tracking_uri)
    local = _local_path_of(uri)
    if local is not None:
        return _place(local, dst_path, repr(uri))
    if scheme_of(uri) not in ("s3", "mlflow-artifacts", "http", "https", "gs", "wasbs", "hdfs"):
        raise InvalidParameterValue(
            f"Unsupported model URI {uri!r}: expected models:/..., runs:/..., a local path, file:// or an "
            "artifact URI (s3://, mlflow-artifacts:/, http(s)://).")
    return download_uri(uri, dst_path or tempfile.mkdtemp(prefix="mltrail-model-"), tracking_uri)


def download_uri(artifact_uri: str, dst_path: str | None = None, tracking_uri: str | None = None) -> str:
    """Download whatever an artifact URI (including `runs:/` and `models:/`) names; return the local path."""
    if artifact_uri.startswith("runs:/"):
        run_id, _, path = artifact_uri[len("runs:/"):].partition("/")
        return Client(tracking_uri).download_artifacts(run_id, path, dst_path)
    if artifact_uri.startswith("models:/"):
        # a copy, never the store's own files (a user may edit what they downloaded)
        return resolve_model_uri(artifact_uri, dst_path=dst_path or tempfile.mkdtemp(prefix="mltrail-download-"))
    root, _, name = artifact_uri.rstrip("/").rpartition("/")
    repo = get_artifact_repository(root or artifact_uri)
    if not root:
        return repo.download_artifacts("", dst_path)
    return repo.download_artifacts(name, dst_path)
