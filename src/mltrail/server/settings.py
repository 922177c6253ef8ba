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
X_FRAME_OPTIONS = ("SAMEORIGIN", "DENY", "NONE")


def database_uri(uri: str | None, option: str) -> tuple[str, str]:
    """(the database URI a server opens for `uri`, the default artifacts destination beside it)."""
    from mltrail.tracking_uri import (
        DEFAULT_DIR,
        absolutize,
        default_artifact_root_for,
        local_dir_of,
        scheme_of,
    )

    backend = absolutize(uri or os.path.join(DEFAULT_DIR))
    scheme = scheme_of(backend)
    if scheme in ("", "file"):
        directory = local_dir_of(backend) or backend
        return "sqlite:///" + os.path.join(directory, "mltrail.db"), os.path.join(directory, "artifacts")
    if scheme in ("http", "https"):
        raise InvalidParameterValue(
            f"Invalid {option} {backend!r}: a tracking server needs a database "
            "(sqlite:///FILE, postgresql://...) or a directory, not another server.")
    return backend, default_artifact_root_for(backend)


def check_static_prefix(prefix: str | None) -> str | None:
    """MLflow's rules for --static-prefix: starts with '/', does not end with one, no braces."""
    if prefix is None or prefix == "":
        return None
    if not prefix.startswith("/"):
        raise InvalidParameterValue(f"--static-prefix must begin with a '/'; received {prefix!r}.")
    if prefix.endswith("/"):
        raise InvalidParameterValue(f"--static-prefix should not end with a '/'; received {prefix!r}.")
    if "{" in prefix or "}" in prefix:
        raise InvalidParameterValue(f"--static-prefix must not contain '{{' or '}}'; received {prefix!r}.")
    return prefix


def check_x_frame_options(value: str) -> str:
    """SAMEORIGIN, DENY or NONE, upper-cased (MLflow's values; ALLOW-FROM is obsolete in browsers)."""
    upper = value.strip().upper()
    if upper not in X_FRAME_OPTIONS:
        raise InvalidParameterValue(
            f"Invalid --x-frame-options {value!r}: expected one of {', '.join(X_FRAME_OPTIONS)} "
            "(NONE sends no header, so any site may frame the UI).")
    return upper


def check_trusted_proxy(value: str) -> str:
    """One --trusted-proxies entry, an address or a CIDR network, in its normal form."""
    import ipaddress

    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise InvalidParameterValue(
            f"Invalid --trusted-proxies entry {value!r}: expected an IP address or a CIDR network "
            "such as 10.0.0.0/8 or 127.0.0.1.") from None


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
        registry_store_uri: MLflow's separate registry database; mltrail keeps registered models in
            the tracking database, so only None or the backend store URI itself is accepted.
        artifacts_only: serve only the artifact proxy, health, version and server-info; every
            tracking route answers 503 as MLflow's does in that mode. No database is opened.
        static_prefix: serve the whole app (API, UI, health) under this path, e.g. `/mlflow`.
        cors_allowed_origins: origins allowed to call the API cross-site (exact or fnmatch patterns,
            `*` for any); None means MLflow's default, localhost origins on any port.
        x_frame_options: `SAMEORIGIN` (MLflow's default), `DENY`, or `NONE` (no header).
        disable_security_middleware: no Host check, no CORS checks, no security headers (MLflow's
            option of the same name; for tests behind a trusted proxy only).
        expose_prometheus: a directory for prometheus_client's multiprocess files; turns on `/metrics`.
        presigned_urls: with an S3 artifacts destination, multipart uploads and downloads go straight
            between client and store through presigned URLs (`--artifacts-presigned-urls`); the
            clients must then reach the store's endpoint themselves.
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
    registry_store_uri: str | None = None
    artifacts_only: bool = False
    static_prefix: str | None = None
    cors_allowed_origins: list[str] | None = None
    x_frame_options: str = "SAMEORIGIN"
    disable_security_middleware: bool = False
    expose_prometheus: str | None = None
    presigned_urls: bool = False

    def resolved(self) -> ServerSettings:
        """A copy with every default filled in and local paths made absolute."""
        from mltrail.tracking_uri import DEFAULT_DIR, absolutize, local_dir_of, scheme_of

        backend: str | None = None
        if self.artifacts_only:
            default_dest = os.path.abspath(os.path.join(DEFAULT_DIR, "artifacts"))
            self._check_artifacts_only()
        else:
            backend, default_dest = database_uri(self.backend_store_uri, "--backend-store-uri")
            self._check_registry(backend)
        dest = self.artifacts_destination or default_dest
        if scheme_of(dest) in ("", "file"):
            dest = os.path.abspath(local_dir_of(dest) or dest)
        root = self.default_artifact_root
        if root is None:
            root = PROXY_ROOT if self.serve_artifacts else dest
        elif scheme_of(root) == "":
            root = os.path.abspath(root)
        hosts = self.allowed_hosts
        if self.disable_security_middleware:
            hosts = ["*"]
        elif hosts is None:
            hosts = ["*"] if self.host in ("0.0.0.0", "::", "[::]") else sorted({*_LOCAL_HOSTS, self.host})
        if self.workers < 1:
            raise InvalidParameterValue(f"Invalid --workers {self.workers}: expected 1 or more.")
        return dataclasses.replace(
            self, backend_store_uri=backend, artifacts_destination=dest, default_artifact_root=root,
            registry_store_uri=backend if self.registry_store_uri else None,
            allowed_hosts=[h.strip().lower() for h in hosts if h.strip()],
            static_prefix=check_static_prefix(self.static_prefix),
            cors_allowed_origins=None if self.cors_allowed_origins is None
            else [o.strip() for o in self.cors_allowed_origins if o.strip()],
            x_frame_options=check_x_frame_options(self.x_frame_options),
            expose_prometheus=absolutize(self.expose_prometheus) if self.expose_prometheus else None,
            auth_default_permission=self._checked_auth_options(),
            trusted_proxies=[check_trusted_proxy(p) for p in self.trusted_proxies if p.strip()])

    def _check_registry(self, backend: str) -> None:
        if not self.registry_store_uri:
            return
        registry, _ = database_uri(self.registry_store_uri, "--registry-store-uri")
        if registry != backend:
            raise InvalidParameterValue(
                f"Invalid --registry-store-uri {self.registry_store_uri!r}: mltrail keeps registered models "
                f"in the tracking database ({backend}), because model versions refer to its runs and logged "
                "models; a separate registry database is not supported. Leave --registry-store-uri out "
                "(or give the same URI as --backend-store-uri).")

    def _check_artifacts_only(self) -> None:
        if self.backend_store_uri:  # MLflow's rule and words: the artifact server has no tracking store
            raise InvalidParameterValue(
                "You are starting a tracking server in `--artifacts-only` mode and have provided a value for "
                f"`--backend-store-uri`: {self.backend_store_uri!r}. A tracking server in `--artifacts-only` "
                "mode cannot have a value set for `--backend-store-uri`; leave it out.")
        if not self.serve_artifacts:
            raise InvalidParameterValue(
                "--artifacts-only serves the artifact proxy, so it cannot be combined with "
                "--no-serve-artifacts.")
        if self.auth:  # our users live in the tracking database, which this mode does not open
            raise InvalidParameterValue(
                "--auth cannot be combined with --artifacts-only: mltrail keeps users and permissions in the "
                "tracking database, which an --artifacts-only server does not open. Run the artifact proxy "
                "inside the authenticated tracking server (the default, --serve-artifacts) instead.")

    def _checked_auth_options(self) -> str:
        from mltrail.server.auth.levels import level

        permission = level(self.auth_default_permission.strip().upper()).name
        if self.auth_proxy_header is not None and not self.auth:
            raise InvalidParameterValue(
                f"--auth-proxy-header {self.auth_proxy_header!r} needs --auth (or --app-name basic-auth): "
                "without it the server checks no identity at all.")
        if self.auth_proxy_header is not None and not self.trusted_proxies:
            raise InvalidParameterValue(
                f"--auth-proxy-header {self.auth_proxy_header!r} needs --trusted-proxies: the addresses of the "
                "reverse proxies allowed to set it (anyone else could name any user).")
        return permission

    def to_env(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServerSettings:
        raw = (environ if environ is not None else os.environ).get(SETTINGS_ENV)
        if not raw:
            return cls()
        return cls(**json.loads(raw))
