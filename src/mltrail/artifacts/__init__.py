"""`mltrail.artifacts` (MLflow's `mlflow.artifacts`): list, download and read what a run or an artifact URI holds.

Paths returned are MLflow's: a file or directory named by a path lands in `dst_path` under its own
name (`dir/sub/a.txt` -> `<dst_path>/a.txt`), a run's whole artifact root becomes `dst_path` itself.
The repositories behind it are `mltrail.store.artifact`.
"""

from __future__ import annotations

import json
import os
import pathlib
import posixpath
import tempfile
from typing import Any

from mltrail._paths import safe_relpath
from mltrail._run_models import run_logged_model
from mltrail.client import Client
from mltrail.entities import FileInfo
from mltrail.errors import BadRequest, InvalidParameterValue, ResourceDoesNotExist
from mltrail.uris import download_uri, is_model_id

__all__ = ["download_artifacts", "list_artifacts", "load_dict", "load_image", "load_text"]


def _check_one_source(artifact_uri: str | None, run_id: str | None, artifact_path: str | None) -> None:
    if (artifact_uri is None) == (run_id is None):
        raise InvalidParameterValue(
            "Exactly one of `run_id` or `artifact_uri` must be specified "
            f"(received artifact_uri={artifact_uri!r}, run_id={run_id!r}).")
    if artifact_uri is not None and artifact_path is not None:
        raise InvalidParameterValue(
            "`artifact_path` cannot be specified if `artifact_uri` is specified "
            f"(received artifact_path={artifact_path!r}); put the path in the URI.")


def _parse_runs_uri(uri: str) -> tuple[str, str]:
    """(run id, run-relative path) of `runs:/<run_id>[/path]`."""
    run_id, _, path = uri[len("runs:"):].lstrip("/").partition("/")
    if not run_id:
        raise InvalidParameterValue(
            f"Not a proper runs:/ URI: {uri}. Runs URIs must be of the form "
            "'runs:/<run_id>/run-relative/path/to/artifact'")
    return run_id, path


def _split(uri: str) -> tuple[str, str]:
    """An artifact URI as (its parent URI, its last path segment)."""
    root, _, name = uri.rstrip("/").rpartition("/")
    return (root, name) if root and not root.endswith(":") else (uri, "")


def _logged_model_of(client: Client, uri: str) -> tuple[str, str]:
    """(logged model id, path inside it) of `models:/<model_id>[/path]`, `models:/<name>/<version>[/path]`
    or `models:/<name>@<alias>[/path]`."""
    head, _, rest = uri[len("models:"):].lstrip("/").partition("/")
    if is_model_id(head):
        return head, rest
    if "@" in head:
        name, _, alias = head.rpartition("@")
        version = client.get_model_version_by_alias(name, alias)
    else:
        number, _, rest = rest.partition("/")
        if not number.isdigit():
            raise InvalidParameterValue(
                f"Invalid model URI {uri!r}: expected models:/<model_id>, models:/<name>/<version> or "
                "models:/<name>@<alias>.")
        version = client.get_model_version(head, number)
    if not version.model_id:
        raise InvalidParameterValue(
            f"Cannot list {uri!r}: the version was registered from files, not from a logged model; "
            "download it with download_artifacts instead.")
    return version.model_id, rest


def _download_under(client: Client, root_uri: str, path: str, dst_path: str | None) -> str:
    """`path` under the artifact root `root_uri`, landing as `<dst>/<its last segment>` (`<dst>` for the root)."""
    path = safe_relpath(path)
    parent, name = posixpath.split(path)
    # a repository rooted at the parent, so that the result is `<dst>/<name>` as in MLflow
    repo = client.artifact_repo_for(f"{root_uri.rstrip('/')}/{parent}" if parent else root_uri)
    return repo.download_artifacts(name, dst_path)


def _download_from_run(client: Client, run_id: str, path: str, dst_path: str | None) -> str:
    path = safe_relpath(path)
    root = client.get_run(run_id).info.artifact_uri
    parent = posixpath.dirname(path)
    if not path or any(f.path == path for f in client.list_artifacts(run_id, parent or None)):
        return _download_under(client, root, path, dst_path)
    # not a file of the run: `runs:/<run_id>/<model name>[/path]` names a model the run logged
    first, _, rest = path.partition("/")
    model = run_logged_model(client, run_id, first)
    if model is None:
        raise ResourceDoesNotExist(
            f"No artifact at {path!r} in run {run_id}, and the run logged no model named {first!r}.")
    if rest:
        return _download_under(client, model.artifact_location, rest, dst_path)
    target = os.path.join(dst_path or tempfile.mkdtemp(prefix="mltrail-download-"), first)
    return client.artifact_repo_for(model.artifact_location).download_artifacts("", target)


def _download_model(client: Client, uri: str, dst_path: str | None) -> str:
    """A `models:/` URI: the logged model's files straight into `dst_path`, as MLflow lays them out."""
    try:
        model_id, path = _logged_model_of(client, uri)
    except InvalidParameterValue:  # a version registered from files: the URI module finds them
        return download_uri(uri, dst_path, client.tracking_uri)
    return _download_under(client, client.get_logged_model(model_id).artifact_location, path, dst_path)


def download_artifacts(artifact_uri: str | None = None, run_id: str | None = None,
                       artifact_path: str | None = None, dst_path: str | None = None,
                       tracking_uri: str | None = None, registry_uri: str | None = None) -> str:
    """Download a run's artifact (`run_id` + `artifact_path`) or any artifact URI; return the local path.

    Args:
        artifact_uri: `runs:/...`, `models:/...`, a local path or `file://`, `s3://`, `mlflow-artifacts:/` URI.
        run_id: the run whose artifacts to download (with `artifact_path`, a file or directory in it).
        dst_path: the local directory to download into (made if missing); a new temporary one by default.
        tracking_uri: the tracking server or database (default: the current one).
        registry_uri: the model registry, for `models:/<name>/<version>` URIs.

    Returns:
        The local path of the file or directory (a copy, never the store's own files).
    """
    _check_one_source(artifact_uri, run_id, artifact_path)
    if dst_path is not None:
        pathlib.Path(dst_path).mkdir(parents=True, exist_ok=True)
    client = Client(tracking_uri, registry_uri)
    if run_id is not None:
        return _download_from_run(client, run_id, artifact_path or "", dst_path)
    uri = str(artifact_uri)
    if uri.startswith("runs:"):
        return _download_from_run(client, *_parse_runs_uri(uri), dst_path)
    if uri.startswith("models:"):
        return _download_model(client, uri, dst_path)
    root, name = _split(uri)
    return client.artifact_repo_for(root).download_artifacts(name, dst_path)


def list_artifacts(artifact_uri: str | None = None, run_id: str | None = None, artifact_path: str | None = None,
                   tracking_uri: str | None = None) -> list[FileInfo]:
    """The files and directories directly under a run's `artifact_path` or an artifact URI.

    Paths in the result are relative to the run's artifact root (for `runs:/` URIs and `run_id`) or
    to the parent of `artifact_uri`, as MLflow gives them.
    """
    _check_one_source(artifact_uri, run_id, artifact_path)
    client = Client(tracking_uri)
    if run_id is not None:
        return client.list_artifacts(run_id, artifact_path)
    uri = str(artifact_uri)
    if uri.startswith("runs:"):
        rid, path = _parse_runs_uri(uri)
        return client.list_artifacts(rid, path or None)
    if uri.startswith("models:"):
        model_id, path = _logged_model_of(client, uri)
        return client.list_logged_model_artifacts(model_id, safe_relpath(path) or None)
    root, name = _split(uri)
    return client.artifact_repo_for(root).list_artifacts(name or None)


def _read_text(artifact_uri: str) -> str:
    with tempfile.TemporaryDirectory(prefix="mltrail-load-") as tmp:
        local = download_artifacts(artifact_uri, dst_path=tmp)
        if os.path.isdir(local):
            raise InvalidParameterValue(f"Artifact {artifact_uri!r} is a directory: expected a file.")
        try:
            with open(local, encoding="utf-8") as fh:
                return fh.read()
        except UnicodeDecodeError as e:
            raise BadRequest(
                f"Artifact {artifact_uri!r} is not valid UTF-8. To read a file in another encoding, download it "
                "with `mltrail.artifacts.download_artifacts` and open it with the correct `encoding`.") from e


def load_text(artifact_uri: str) -> str:
    """The content of a text artifact (UTF-8), e.g. `load_text("runs:/<run_id>/notes.txt")`."""
    return _read_text(artifact_uri)


def load_dict(artifact_uri: str) -> dict[str, Any]:
    """A JSON artifact parsed, e.g. `load_dict("runs:/<run_id>/config.json")`."""
    text = _read_text(artifact_uri)
    try:
        value: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadRequest(f"Unable to form a JSON object from file content of {artifact_uri!r}: {e}.") from e
    return value  # MLflow returns whatever the JSON holds (a list too)


def load_image(artifact_uri: str) -> Any:
    """An image artifact as a PIL image (fully read, so the downloaded file can go)."""
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="mltrail-load-") as tmp:
        local = download_artifacts(artifact_uri, dst_path=tmp)
        try:
            image = Image.open(local)
            image.load()
        except (OSError, ValueError) as e:
            raise BadRequest(f"Unable to form a PIL Image object from file content of {artifact_uri!r}: {e}") from e
        return image

