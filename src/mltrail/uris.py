"""Resolve model and artifact URIs to a local directory, or download them: the one resolver.

`mltrail.uri_forms` reads the text (every caller parses through it); this module decides what a
parsed URI means. Accepted: `models:/<model_id>[/path]` (a logged model), `models:/<name>/<version>`,
`models:/<name>/latest`, `models:/<name>/<stage>` and `models:/<name>@<alias>` (registry),
`runs:/<run_id>/<name>[/path]`, a local path, `file://` and any artifact URI (`s3://`,
`mlflow-artifacts:/`, `http(s)://`).

One rule for `runs:/<run_id>/<name>[/path]` (MLflow 3's): the run's logged model called `<name>`
when the run has one, else `<name>[/path]` in the run's own artifacts. Loading, downloading,
listing, registering, `set_signature` and requirement updates all follow it (`run_artifact_target`).

A model in a local artifact store is used in place, not copied (loading is then instant): treat
the returned directory as read-only. With `dst_path`, the model is always copied there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable

from mltrail._paths import resolve_under, safe_relpath
from mltrail._run_models import run_logged_model
from mltrail.client import Client
from mltrail.entities import LoggedModel
from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.store.artifact import get_artifact_repository
from mltrail.store.artifact.local import local_path_of
from mltrail.tracking_uri import scheme_of
from mltrail.uri_forms import ModelUri, is_model_id, is_models_uri, is_runs_uri, parse_model_uri

__all__ = ["download_uri", "is_model_id", "resolve_model_uri", "resolve_parsed", "run_artifact_target",
           "stored_model_location"]


def _local_path_of(uri: str) -> str | None:
    """The local directory a `file:` URI or plain path names; None for remote URIs."""
    if scheme_of(uri) in ("", "file"):
        return os.path.abspath(local_path_of(uri))
    return None


def _place(local: str, dst_path: str | None, what: str, name: str | None = None) -> str:
    """`local` itself, or a copy of it as `dst_path`/`name` (default: its own name) when one was asked for."""
    if not os.path.exists(local):
        raise ResourceDoesNotExist(f"No model at {what}: {local!r} does not exist.")
    if dst_path is None:
        return local
    os.makedirs(dst_path, exist_ok=True)
    target = os.path.join(os.path.abspath(dst_path), name or os.path.basename(os.path.normpath(local)) or "model")
    if os.path.isdir(local):
        shutil.copytree(local, target, dirs_exist_ok=True)
    else:
        shutil.copyfile(local, target)
    return target


def _under(location: str, subpath: str, dst_path: str | None, what: str,
           download: Callable[[str, str], str], name: str | None = None) -> str:
    """The model files at `location`/`subpath`: in place when local, else via `download(subpath, dst)`.

    `name`: what a copy of the whole of `location` is called under `dst_path` (`runs:/<run>/<name>`
    lands as `<dst>/<name>`, as in MLflow, though the logged model's own folder is `artifacts`).
    """
    subpath = safe_relpath(subpath)
    local_root = _local_path_of(location)
    if local_root is not None:
        return _place(resolve_under(local_root, subpath), dst_path, what, None if subpath else name)
    dst = dst_path or tempfile.mkdtemp(prefix="mltrail-model-")
    if name and not subpath:
        dst = os.path.join(dst, name)
        os.makedirs(dst, exist_ok=True)
    return str(download(subpath, dst))


def _resolve_logged_model(model_id: str, subpath: str, dst_path: str | None, tracking_uri: str | None) -> str:
    client = Client(tracking_uri)
    model = client.get_logged_model(model_id)
    return _under(model.artifact_location, subpath, dst_path, f"models:/{model_id}",
                  lambda p, d: client.download_logged_model_artifacts(model_id, p, d))


def _resolve_registry(parsed: ModelUri, dst_path: str | None, tracking_uri: str | None) -> str:
    """`models:/<name>/<version|latest|stage>` and `models:/<name>@<alias>` through the model registry."""
    client = Client(tracking_uri)
    mv = client._version_from_uri(parsed)
    if mv.model_id:
        return _resolve_logged_model(mv.model_id, parsed.subpath, dst_path, tracking_uri)
    # the version's own files, wherever its source pointed (a copy's source is another version)
    location = client.get_model_version_download_uri(mv.name, mv.version)
    return _under(location, parsed.subpath, dst_path, str(parsed),
                  lambda p, d: client.artifact_repo_for(location).download_artifacts(p, d))


def run_artifact_target(client: Client, parsed: ModelUri) -> tuple[str, str, LoggedModel | None]:
    """(artifact root, path under it, the logged model or None) that `runs:/<run_id>/<path>` names.

    The one rule, MLflow 3's: `runs:/<run_id>/<name>[/<path>]` is the run's logged model called
    `<name>` when the run has one (its files win, as MLflow's download lets them overwrite the
    run's), else `<path>` in the run's own artifacts.
    """
    model = run_logged_model(client, str(parsed.run_id), parsed.head) if parsed.head else None
    if model is not None:
        return model.artifact_location, parsed.rest, model
    return client.get_run(str(parsed.run_id)).info.artifact_uri, parsed.subpath, None


def stored_model_location(client: Client, parsed: ModelUri) -> tuple[str, str]:
    """(artifact root, model directory under it) where a `runs:/` or `models:/<model_id>` model is stored.

    For editing a model in place (its signature, its requirements): a registered version is a
    read-only copy, so it is refused here; callers refuse it first in MLflow's words.
    """
    if parsed.kind == "run":
        root, path, _ = run_artifact_target(client, parsed)
        return root, path
    if parsed.kind == "logged_model":
        return client.get_logged_model(str(parsed.model_id)).artifact_location, parsed.subpath
    raise InvalidParameterValue(
        f"'{parsed}' names a registered model version, a read-only copy: use the runs:/ or models:/<model_id> "
        "URI of the model it came from.")


def _resolve_runs_uri(parsed: ModelUri, dst_path: str | None, tracking_uri: str | None) -> str:
    client = Client(tracking_uri)
    root, path, model = run_artifact_target(client, parsed)
    if model is not None:
        return _under(root, path, dst_path, str(parsed),
                      lambda p, d: client.download_logged_model_artifacts(model.model_id, p, d), parsed.head)
    return _under(root, path, dst_path, str(parsed),
                  lambda p, d: client.download_artifacts(str(parsed.run_id), p, d))


def resolve_parsed(parsed: ModelUri, dst_path: str | None = None, tracking_uri: str | None = None) -> str:
    """The local directory (or file) a parsed `runs:/` or `models:/` URI names (see `resolve_model_uri`)."""
    if parsed.kind == "run":
        return _resolve_runs_uri(parsed, dst_path, tracking_uri)
    if parsed.kind == "logged_model":
        return _resolve_logged_model(str(parsed.model_id), parsed.subpath, dst_path, tracking_uri)
    return _resolve_registry(parsed, dst_path, tracking_uri)


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
    if is_runs_uri(uri) or is_models_uri(uri):
        return resolve_parsed(parse_model_uri(uri), dst_path, tracking_uri)
    local = _local_path_of(uri)
    if local is not None:
        return _place(local, dst_path, repr(uri))
    if scheme_of(uri) not in ("s3", "mlflow-artifacts", "http", "https", "gs", "wasbs", "hdfs"):
        raise InvalidParameterValue(
            f"Unsupported model URI {uri!r}: expected models:/..., runs:/..., a local path, file:// or an "
            "artifact URI (s3://, mlflow-artifacts:/, http(s)://).")
    return download_uri(uri, dst_path or tempfile.mkdtemp(prefix="mltrail-model-"), tracking_uri)


def download_uri(artifact_uri: str, dst_path: str | None = None, tracking_uri: str | None = None) -> str:
    """Download whatever an artifact URI (including `runs:/` and `models:/`) names; return the local path.

    A copy, never the store's own files (a user may edit what they downloaded); `runs:/` and
    `models:/` follow the same rule as loading (`resolve_model_uri`).
    """
    if is_runs_uri(artifact_uri) or is_models_uri(artifact_uri):
        parsed = parse_model_uri(artifact_uri)
        return resolve_parsed(parsed, dst_path or tempfile.mkdtemp(prefix="mltrail-download-"), tracking_uri)
    root, _, name = artifact_uri.rstrip("/").rpartition("/")
    repo = get_artifact_repository(root or artifact_uri)
    if not root:
        return repo.download_artifacts("", dst_path)
    return repo.download_artifacts(name, dst_path)
