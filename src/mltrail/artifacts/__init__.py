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
from mltrail.client import Client
from mltrail.entities import FileInfo
from mltrail.errors import BadRequest, InvalidParameterValue, ResourceDoesNotExist
from mltrail.uri_forms import ModelUri, is_models_uri, is_runs_uri, parse_models_uri, parse_runs_uri
from mltrail.uris import download_uri, run_artifact_target

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


def _split(uri: str) -> tuple[str, str]:
    """An artifact URI as (its parent URI, its last path segment)."""
    root, _, name = uri.rstrip("/").rpartition("/")
    return (root, name) if root and not root.endswith(":") else (uri, "")


def _logged_model_of(client: Client, parsed: ModelUri) -> tuple[str, str]:
    """(logged model id, path inside it) of `models:/<model_id>[/path]`, `models:/<name>/<version>[/path]`
    or `models:/<name>@<alias>[/path]` (and the other registry forms)."""
    if parsed.kind == "logged_model":
        return str(parsed.model_id), parsed.subpath
    version = client._version_from_uri(parsed)
    if not version.model_id:
        raise InvalidParameterValue(
            f"Cannot list '{parsed}': the version was registered from files, not from a logged model; "
            "download it with download_artifacts instead.")
    return version.model_id, parsed.subpath


def _download_under(client: Client, root_uri: str, path: str, dst_path: str | None) -> str:
    """`path` under the artifact root `root_uri`, landing as `<dst>/<its last segment>` (`<dst>` for the root)."""
    path = safe_relpath(path)
    parent, name = posixpath.split(path)
    # a repository rooted at the parent, so that the result is `<dst>/<name>` as in MLflow
    repo = client.artifact_repo_for(f"{root_uri.rstrip('/')}/{parent}" if parent else root_uri)
    return repo.download_artifacts(name, dst_path)


def _download_from_run(client: Client, parsed: ModelUri, dst_path: str | None) -> str:
    """`runs:/<run_id>/<path>` by the one rule (`mltrail.uris.run_artifact_target`): the run's logged model
    of that name if it has one, else the run's files."""
    root, path, model = run_artifact_target(client, parsed)
    if model is not None and not path:  # the whole model lands as `<dst>/<name>`, as in MLflow
        target = os.path.join(dst_path or tempfile.mkdtemp(prefix="mltrail-download-"), parsed.head)
        return client.artifact_repo_for(root).download_artifacts("", target)
    if model is None and path:
        parent = posixpath.dirname(path)
        if not any(f.path == path for f in client.list_artifacts(str(parsed.run_id), parent or None)):
            # MLflow's words (RunsArtifactRepository.download_artifacts), then what we looked for
            raise ResourceDoesNotExist(
                f"Failed to download artifacts from path {path!r}, please ensure that the path is correct. Run "
                f"{parsed.run_id} has no artifact there, and the run logged no model named {parsed.head!r}.")
    return _download_under(client, root, path, dst_path)


def _download_model(client: Client, parsed: ModelUri, dst_path: str | None) -> str:
    """A `models:/` URI: the logged model's files straight into `dst_path`, as MLflow lays them out."""
    try:
        model_id, path = _logged_model_of(client, parsed)
    except InvalidParameterValue:  # a version registered from files: the URI module finds them
        return download_uri(str(parsed), dst_path, client.tracking_uri)
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
        return _download_from_run(client, _run_uri(run_id, artifact_path), dst_path)
    uri = str(artifact_uri)
    if is_runs_uri(uri):
        return _download_from_run(client, parse_runs_uri(uri), dst_path)
    if is_models_uri(uri):
        return _download_model(client, parse_models_uri(uri), dst_path)
    root, name = _split(uri)
    return client.artifact_repo_for(root).download_artifacts(name, dst_path)


def _run_uri(run_id: str, artifact_path: str | None) -> ModelUri:
    """`run_id` + `artifact_path` read as `runs:/<run_id>/<artifact_path>` (the same rule applies)."""
    return parse_runs_uri(f"runs:/{run_id}/{artifact_path}" if artifact_path else f"runs:/{run_id}")


def _list_run(client: Client, parsed: ModelUri) -> list[FileInfo]:
    root, path, model = run_artifact_target(client, parsed)
    if model is None:
        return client.list_artifacts(str(parsed.run_id), path or None)
    # the logged model's files, named as run-relative paths (`<name>/...`), as MLflow lists them
    return [FileInfo(f"{parsed.head}/{f.path}", f.is_dir, f.file_size)
            for f in client.list_logged_model_artifacts(model.model_id, path or None)]


def list_artifacts(artifact_uri: str | None = None, run_id: str | None = None, artifact_path: str | None = None,
                   tracking_uri: str | None = None) -> list[FileInfo]:
    """The files and directories directly under a run's `artifact_path` or an artifact URI.

    Paths in the result are relative to the run's artifact root (for `runs:/` URIs and `run_id`) or
    to the parent of `artifact_uri`, as MLflow gives them.
    """
    _check_one_source(artifact_uri, run_id, artifact_path)
    client = Client(tracking_uri)
    if run_id is not None:
        return _list_run(client, _run_uri(run_id, artifact_path))
    uri = str(artifact_uri)
    if is_runs_uri(uri):
        return _list_run(client, parse_runs_uri(uri))
    if is_models_uri(uri):
        model_id, path = _logged_model_of(client, parse_models_uri(uri))
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

