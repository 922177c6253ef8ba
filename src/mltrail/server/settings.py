"""The tracking server's settings: the CLI fills them, `create_app` reads them, and worker processes
get them through one environment variable (`MLTRAIL_SERVER_SETTINGS`, JSON)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

from mltrail.errors import InvalidParameterValue

SETTINGS_ENV = "MLTRAIL_SERVER_SETTINGS"
MiB = 1024 * 1024
PROXY_ROOT = "mlflow-artifacts:/"
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")


@dataclass
class ServerSettings:
    """What `mltrail server` was asked for; `resolved()` fills in the defaults.

    Args:
        backend_store_uri: `sqlite:///...`, `postgresql://...` or a directory (default `./mltrail`).
        default_artifact_root: where new experiments keep artifacts (default `mlflow-artifacts:/`
            when serving artifacts, else the artifacts destination).
        artifacts_destination: where the artifact proxy stores files (default beside a SQLite
            database, else `./mltrail/artifacts`).
        allowed_hosts: Host header values accepted (`*` = any); None means localhost names plus
            the bound host, or any host when bound to 0.0.0.0/::.
        max_json_bytes / max_artifact_bytes: request body limits, answered with 413 beyond them.
        ui: mount `mltrail.server.ui` at `/` when that package exists.
        auth: require an identity on every request but the public ones (`--auth`, or MLflow's
            `--app-name basic-auth`); users and permissions live in the tracking database.
        auth_default_permission: what a user may do with a resource nobody granted them anything on
            (`NO_PERMISSIONS` unless told otherwise: safe by default).
        auth_proxy_header: a header naming the user (e.g. `X-Forwarded-Email`), trusted only from
            `trusted_proxies` (addresses or CIDR networks).
    """

    backend_store_uri: str | None = None
    default_artifact_root: str | None = None
    artifacts_destination: str | None = None
    serve_artifacts: bool = True
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    allowed_hosts: list[str] | None = None
    max_json_bytes: int = 16 * MiB
    max_artifact_bytes: int = 1024 * MiB
    ui: bool = True
    extra_local_roots: list[str] = field(default_factory=list)
    auth: bool = False
    auth_default_permission: str = "NO_PERMISSIONS"
    auth_proxy_header: str | None = None
    trusted_proxies: list[str] = field(default_factory=list)

    def resolved(self) -> ServerSettings:
        """A copy with every default filled in and local paths made absolute."""
        from mltrail.tracking_uri import (
            DEFAULT_DIR,
            absolutize,
            default_artifact_root_for,
            local_dir_of,
            scheme_of,
        )

        backend = self.backend_store_uri or os.path.join(DEFAULT_DIR)
        backend = absolutize(backend)
        scheme = scheme_of(backend)
        if scheme in ("", "file"):
            directory = local_dir_of(backend) or backend
            backend = "sqlite:///" + os.path.join(directory, "mltrail.db")
            default_dest = os.path.join(directory, "artifacts")
        elif scheme in ("http", "https"):
            raise InvalidParameterValue(
                f"Invalid --backend-store-uri {backend!r}: a tracking server needs a database "
                "(sqlite:///FILE, postgresql://...) or a directory, not another server.")
        else:
            default_dest = default_artifact_root_for(backend)
        dest = self.artifacts_destination or default_dest
        if scheme_of(dest) in ("", "file"):
            dest = os.path.abspath(local_dir_of(dest) or dest)
        root = self.default_artifact_root
        if root is None:
            root = PROXY_ROOT if self.serve_artifacts else dest
        elif scheme_of(root) == "":
            root = os.path.abspath(root)
        hosts = self.allowed_hosts
        if hosts is None:
            hosts = ["*"] if self.host in ("0.0.0.0", "::", "[::]") else sorted({*_LOCAL_HOSTS, self.host})
        if self.workers < 1:
            raise InvalidParameterValue(f"Invalid --workers {self.workers}: expected 1 or more.")
        return dataclasses.replace(self, backend_store_uri=backend, artifacts_destination=dest,
                                   default_artifact_root=root, allowed_hosts=[h.strip().lower() for h in hosts
                                                                              if h.strip()])

    def to_env(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServerSettings:
        raw = (environ if environ is not None else os.environ).get(SETTINGS_ENV)
        if not raw:
            return cls()
        return cls(**json.loads(raw))
