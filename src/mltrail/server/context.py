"""What every request handler shares: the settings, the tracking store, and artifact access.

Artifact locations the server itself reads or writes are resolved here, and only here: the
proxy root `mlflow-artifacts:/<path>` maps onto the artifacts destination, a local path must lie
under a root the server was configured with, and every relative path goes through
`safe_relpath`. Whatever a client stored as an experiment's location, the server never
serves a file outside those roots.
"""

from __future__ import annotations

import os
import urllib.parse

from mltrail._paths import safe_relpath
from mltrail.errors import InvalidParameterValue, MltrailException
from mltrail.server.auth.store import AuthStore
from mltrail.server.idempotency import IdempotencyRecords
from mltrail.server.settings import PROXY_ROOT, ServerSettings
from mltrail.store.artifact import get_artifact_repository
from mltrail.store.artifact.base import ArtifactRepository
from mltrail.store.artifact.local import LocalArtifactRepository
from mltrail.store.sql.store import SqlTrackingStore
from mltrail.tracking_uri import scheme_of
from mltrail.uri_forms import is_proxy_uri, parse_artifact_uri


class ArtifactsNotServed(MltrailException):
    """The artifact proxy is off (`--no-serve-artifacts`)."""

    error_code = "TEMPORARILY_UNAVAILABLE"
    http_status = 503


def _is_local(uri: str) -> bool:
    return scheme_of(uri) in ("", "file")


def _local_path(uri: str) -> str:
    if uri.startswith("file:"):
        return urllib.parse.unquote(urllib.parse.urlparse(uri).path)
    return uri


def proxy_relpath(uri: str) -> str | None:
    """The path under the proxy root that `mlflow-artifacts:/x` (or its http form) names, else None."""
    return parse_artifact_uri(uri).path if is_proxy_uri(uri) else None


class ServerContext:
    """Settings, the store, and the artifact repositories of one server app."""

    def __init__(self, settings: ServerSettings, store: SqlTrackingStore | None = None) -> None:
        self.settings = settings.resolved()
        if store is None:
            store = SqlTrackingStore(self.settings.backend_store_uri or "", self.settings.default_artifact_root or "")
        self.store = store
        dest = self.settings.artifacts_destination or ""
        self.destination = dest
        roots = [dest, *self.settings.extra_local_roots]
        root = self.settings.default_artifact_root or ""
        if _is_local(root):
            roots.append(_local_path(root))
        self.local_roots = sorted({os.path.realpath(_local_path(r)) for r in roots if r and _is_local(r)},
                                  key=len, reverse=True)
        self._dest_repo: ArtifactRepository | None = None
        # create requests resent after a lost answer, through any replica (records in the database)
        self.idempotency = IdempotencyRecords(store.engine)
        # accounts and permissions live in the tracking database (server/auth/store.py)
        self.auth: AuthStore | None = AuthStore(store.engine) if self.settings.auth else None

    # ------------------------------------------------------------------ repositories
    def proxy_repo(self) -> ArtifactRepository:
        """The repository behind `/mlflow-artifacts/` (the artifacts destination)."""
        if not self.settings.serve_artifacts:
            raise ArtifactsNotServed(
                "The artifact proxy is disabled: this server runs with --no-serve-artifacts. Clients must "
                "write to the artifact store directly.")
        if self._dest_repo is None:
            if _is_local(self.destination):
                os.makedirs(_local_path(self.destination), exist_ok=True)
            self._dest_repo = get_artifact_repository(self.destination)
        return self._dest_repo

    def repo_for(self, uri: str) -> tuple[ArtifactRepository, str]:
        """(repository, path prefix inside it) for an artifact location stored in the database."""
        rel = proxy_relpath(uri)
        if rel is not None:
            return self.proxy_repo(), rel
        if _is_local(uri):
            path = os.path.realpath(_local_path(uri))
            for root in self.local_roots:
                if path == root or path.startswith(root + os.sep):
                    rel = os.path.relpath(path, root).replace(os.sep, "/")
                    return LocalArtifactRepository(root), safe_relpath("" if rel == "." else rel)
            raise InvalidParameterValue(
                f"The artifact location {uri!r} lies outside this server's artifact roots; the server does "
                "not read or write local files elsewhere (for safety: a client must not choose which of the "
                "server's files it reaches). To keep artifacts there, start the server with "
                "--default-artifact-root (or --artifacts-destination) naming that directory.")
        if uri.startswith(("http://", "https://")):
            raise InvalidParameterValue(f"The artifact location {uri!r} is not served by this server.")
        return get_artifact_repository(uri), ""

    def check_artifact_location(self, location: str | None) -> str | None:
        """A location a client asks for on create-experiment: the proxy, a remote store, or under a root."""
        if not location:
            return None
        if proxy_relpath(location) is not None and location.startswith("mlflow-artifacts:"):
            return location
        if _is_local(location):
            path = _local_path(location)
            if not os.path.isabs(path):
                raise InvalidParameterValue(
                    f"Invalid artifact location {location!r}: expected an absolute path or a URI. A relative "
                    "location would resolve against the server's working directory, so this server refuses it; "
                    "give an absolute path under the server's artifact root, mlflow-artifacts:/PATH, or start the "
                    "server with --default-artifact-root naming where artifacts go.")
            safe_relpath(path.lstrip("/"), "artifact location")
            self.repo_for(location)  # refuses paths outside the server's roots
            return location
        if location.startswith(("http://", "https://")):
            if proxy_relpath(location) is None:  # the server must not fetch from hosts clients choose
                raise InvalidParameterValue(
                    f"Invalid artifact location {location!r}: an http(s) location must be this server's "
                    "artifact proxy (.../api/2.0/mlflow-artifacts/artifacts/...); use mlflow-artifacts:/PATH.")
            return location
        scheme = scheme_of(location)
        rest = location[len(scheme) + 1:]
        safe_relpath(rest.lstrip("/").partition("/")[2] if rest.startswith("//") else rest.lstrip("/"),
                     "artifact location")
        return location


__all__ = ["PROXY_ROOT", "ArtifactsNotServed", "ServerContext", "proxy_relpath"]
