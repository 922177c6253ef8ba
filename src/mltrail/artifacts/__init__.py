"""Artifact repositories, chosen by URI scheme from one registry, and `download_artifacts`.

`file:`/plain paths are local directories; `s3://` is S3-compatible storage (boto3);
`mlflow-artifacts:/` and `http(s)://` go through a tracking server's artifact proxy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mltrail.errors import InvalidParameterValue

_factories: dict[str, Callable[[str], Any]] = {}


def register_artifact_repository(scheme: str, factory: Callable[[str], Any]) -> None:
    _factories[scheme] = factory


def _local(uri: str) -> Any:
    from mltrail.artifacts.local import LocalArtifactRepository

    return LocalArtifactRepository(uri)


def _s3(uri: str) -> Any:
    from mltrail.artifacts.s3 import S3ArtifactRepository

    return S3ArtifactRepository(uri)


def _proxy(uri: str) -> Any:
    from mltrail.artifacts.http import HttpArtifactRepository

    return HttpArtifactRepository(uri)


register_artifact_repository("", _local)
register_artifact_repository("file", _local)
register_artifact_repository("s3", _s3)
register_artifact_repository("mlflow-artifacts", _proxy)
register_artifact_repository("http", _proxy)
register_artifact_repository("https", _proxy)


def get_artifact_repository(uri: str) -> Any:
    """The repository rooted at `uri`."""
    from mltrail.store import scheme_of

    scheme = scheme_of(uri)
    factory = _factories.get(scheme)
    if factory is None:
        raise InvalidParameterValue(
            f"Unsupported artifact URI {uri!r}: expected a local path, file://, s3://, mlflow-artifacts:/ or "
            f"http(s):// (known schemes: {', '.join(sorted(s for s in _factories if s))}).")
    return factory(uri)


def download_artifacts(artifact_uri: str | None = None, run_id: str | None = None,
                       artifact_path: str | None = None, dst_path: str | None = None,
                       tracking_uri: str | None = None) -> str:
    """Download a run's artifact (`run_id` + `artifact_path`) or any artifact URI; return the local path."""
    if (artifact_uri is None) == (run_id is None):
        raise InvalidParameterValue(
            "Exactly one of `artifact_uri` and `run_id` must be given "
            f"(received artifact_uri={artifact_uri!r}, run_id={run_id!r}).")
    if run_id is not None:
        from mltrail.client import Client

        return Client(tracking_uri).download_artifacts(run_id, artifact_path or "", dst_path)
    if artifact_path is not None:
        raise InvalidParameterValue("`artifact_path` goes with `run_id`; with `artifact_uri`, put the path in the URI.")
    return download_uri(artifact_uri or "", dst_path, tracking_uri)


def download_uri(artifact_uri: str, dst_path: str | None = None, tracking_uri: str | None = None) -> str:
    """Download whatever an artifact URI (including `runs:/` and `models:/`) names."""
    if artifact_uri.startswith("runs:/"):
        from mltrail.client import Client

        run_id, _, path = artifact_uri[len("runs:/"):].partition("/")
        return Client(tracking_uri).download_artifacts(run_id, path, dst_path)
    if artifact_uri.startswith("models:/"):
        import tempfile

        from mltrail.models.model_uri import resolve_model_uri

        # a copy, never the store's own files (a user may edit what they downloaded)
        return resolve_model_uri(artifact_uri, dst_path=dst_path or tempfile.mkdtemp(prefix="mltrail-download-"))
    root, _, name = artifact_uri.rstrip("/").rpartition("/")
    repo = get_artifact_repository(root or artifact_uri)
    if not root:
        return repo.download_artifacts("", dst_path)
    return repo.download_artifacts(name, dst_path)
