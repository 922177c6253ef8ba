"""Moving an MLflow store's artifact trees into mltrail's artifact root, and rewriting the URIs that name them.

MLflow writes artifact locations as plain paths, `file://` URIs, `s3://` URIs or, behind a
tracking server, `mlflow-artifacts:/...` paths that only mean something relative to the server's
artifact destination (`--artifacts`). A local tree is copied with `shutil`; any other goes
through our artifact repositories (`mltrail.store.artifact`), by way of a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.parse

from mltrail.errors import InvalidParameterValue
from mltrail.store.artifact import get_artifact_repository
from mltrail.uri_forms import is_models_uri, is_runs_uri, parse_artifact_uri

_PROXY_SCHEME = "mlflow-artifacts:"


def local_path(uri: str) -> str | None:
    """The local path a plain path or `file:` URI names, else None."""
    if uri.startswith("file:"):
        return urllib.parse.unquote(urllib.parse.urlparse(uri).path)
    head = uri.split("/", 1)[0]
    if ":" in head and len(head.split(":", 1)[0]) > 1:
        return None
    return os.path.abspath(uri)


def resolve_source_uri(uri: str, source_artifacts: str | None) -> str:
    """Where a source artifact URI really is: `mlflow-artifacts:/x` under `source_artifacts`, local paths absolute."""
    if uri.startswith(_PROXY_SCHEME):
        if not source_artifacts:
            raise InvalidParameterValue(
                f"The MLflow store names its artifacts as {uri!r}, which only its tracking server can resolve: "
                "pass where that server kept them (its --artifacts-destination) as --artifacts PATH_OR_S3.")
        rel = parse_artifact_uri(uri).path  # checked: a source's `..` cannot leave source_artifacts
        return "/".join([source_artifacts.rstrip("/"), rel]) if rel else source_artifacts
    path = local_path(uri)
    return path if path is not None else uri


def _comparable(uri: str) -> str:
    path = local_path(uri)
    return (path if path is not None else uri).rstrip("/")


class UriRewriter:
    """Maps source artifact URIs to their new homes by the longest matching prefix."""

    def __init__(self) -> None:
        self._prefixes: dict[str, str] = {}

    def add(self, source_uri: str, new_uri: str) -> None:
        self._prefixes[_comparable(source_uri)] = new_uri.rstrip("/")

    def rewrite(self, uri: str | None) -> str | None:
        """`uri` with its longest known prefix replaced; unchanged (`models:/`, `runs:/`, unknown) otherwise."""
        if not uri or is_models_uri(uri) or is_runs_uri(uri):
            return uri
        key = _comparable(uri)
        best = ""
        for prefix in self._prefixes:
            if len(prefix) > len(best) and (key == prefix or key.startswith(prefix + "/")):
                best = prefix
        if not best:
            return uri
        return self._prefixes[best] + key[len(best):]


def copy_tree(source_uri: str, dest_uri: str) -> tuple[int, int]:
    """Copy every file under `source_uri` to `dest_uri`; return (files, bytes). A missing source copies nothing."""
    src_local = local_path(source_uri)
    dest_local = local_path(dest_uri)
    if src_local is not None:
        if not os.path.isdir(src_local):
            return 0, 0
        files, size = _count(src_local)
        if dest_local is not None:
            shutil.copytree(src_local, dest_local, dirs_exist_ok=True)
        else:
            get_artifact_repository(dest_uri).log_artifacts(src_local)
        return files, size
    with tempfile.TemporaryDirectory(prefix="mltrail-import-") as tmp:
        get_artifact_repository(source_uri).download_artifacts(dst_path=tmp)
        files, size = _count(tmp)
        if files:
            get_artifact_repository(dest_uri).log_artifacts(tmp)
        return files, size


def _count(directory: str) -> tuple[int, int]:
    files = size = 0
    for root, _dirs, names in os.walk(directory):
        for name in names:
            files += 1
            size += os.path.getsize(os.path.join(root, name))
    return files, size
