"""Artifact repositories, chosen by URI scheme from one registry.

`file:`/plain paths are local directories; `s3://` is S3-compatible storage (boto3);
`mlflow-artifacts:/` and `http(s)://` go through a tracking server's artifact proxy.
"""

from __future__ import annotations

from collections.abc import Callable

from mltrail.errors import InvalidParameterValue
from mltrail.store.artifact.base import ArtifactRepository
from mltrail.tracking_uri import scheme_of

_factories: dict[str, Callable[[str], ArtifactRepository]] = {}


def register_artifact_repository(scheme: str, factory: Callable[[str], ArtifactRepository]) -> None:
    """Make `factory(uri)` the repository for URIs starting with `scheme:` ("" for plain paths)."""
    _factories[scheme] = factory


def _local(uri: str) -> ArtifactRepository:
    from mltrail.store.artifact.local import LocalArtifactRepository

    return LocalArtifactRepository(uri)


def _s3(uri: str) -> ArtifactRepository:
    from mltrail.store.artifact.s3 import S3ArtifactRepository  # boto3 loads only when S3 is used

    return S3ArtifactRepository(uri)


def _proxy(uri: str) -> ArtifactRepository:
    from mltrail.store.artifact.http import HttpArtifactRepository

    return HttpArtifactRepository(uri)


register_artifact_repository("", _local)
register_artifact_repository("file", _local)
register_artifact_repository("s3", _s3)
register_artifact_repository("mlflow-artifacts", _proxy)
register_artifact_repository("http", _proxy)
register_artifact_repository("https", _proxy)


def get_artifact_repository(uri: str) -> ArtifactRepository:
    """The repository rooted at `uri`."""
    scheme = scheme_of(uri)
    factory = _factories.get(scheme)
    if factory is None:
        raise InvalidParameterValue(
            f"Unsupported artifact URI {uri!r}: expected a local path, file://, s3://, mlflow-artifacts:/ or "
            f"http(s):// (known schemes: {', '.join(sorted(s for s in _factories if s))}).")
    return factory(uri)
