"""`mltrail server` and `mltrail ui`: MLflow's option names and environment variables, uvicorn underneath.

Every option MLflow's `server` has for the tracking server reads the same environment variable
(`MLFLOW_BACKEND_STORE_URI`, `MLFLOW_HOST`, `MLFLOW_STATIC_PREFIX`, ...). As in MLflow, `ui`
takes the same options as `server`; it defaults to the embedded store (`./mltrail`, or the
tracking URI in force) and keeps artifacts in local paths, so the Python API and the UI see the
same files.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from typing import Any

import click

from mltrail.server.settings import SETTINGS_ENV, MiB, ServerSettings

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?)?\s*$", re.IGNORECASE)
PERMISSIONS = ("READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS")
APP_NAMES = ("basic-auth",)
# options of uvicorn's own CLI that mltrail sets itself: they have an option of their own here
_OWN_UVICORN_OPTIONS = {"host": "--host", "port": "--port", "workers": "--workers", "factory": None,
                        "app_dir": None}


def _size(ctx: Any, param: Any, value: str | None) -> int | None:
    """`16MiB`, `100M`, `1G`, `4096` (bytes)."""
    if value is None:
        return None
    m = _SIZE.match(value)
    if not m:
        raise click.BadParameter(f"{value!r}: expected a size such as 16MiB, 1GiB or a number of bytes.")
    unit = (m.group(2) or "").lower()[:1]
    return int(m.group(1)) * {"": 1, "k": 1024, "m": MiB, "g": 1024 * MiB}[unit]


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def uvicorn_options(text: str | None) -> dict[str, Any]:
    """`--uvicorn-opts "--timeout-keep-alive 60 --proxy-headers"` as keyword arguments of `uvicorn.run`.

    Parsed by uvicorn's own command line, so every uvicorn option is accepted with its own
    spelling and types; an unknown option, or one mltrail sets itself, is an error naming it.
    """
    if not text or not text.strip():
        return {}
    import importlib

    from click.core import ParameterSource

    command = importlib.import_module("uvicorn.main").main  # `uvicorn.main` the name is the command itself
    try:
        args = shlex.split(text)
        ctx = command.make_context("uvicorn", ["mltrail.server.app:app_from_env", *args],
                                   resilient_parsing=False)
    except (click.ClickException, ValueError) as e:
        message = e.format_message() if isinstance(e, click.ClickException) else str(e)
        raise click.BadParameter(f"{text!r}: {message.rstrip('.')}. Expected options of `uvicorn --help`, such as "
                                 "--timeout-keep-alive 60 --proxy-headers.", param_hint="'--uvicorn-opts'") from None
    given = {k: v for k, v in ctx.params.items()
             if k != "app" and ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE}
    for name, own in _OWN_UVICORN_OPTIONS.items():
        if name in given:
            flag = "--" + name.replace("_", "-")
            hint = f"give {own} to mltrail server itself" if own else "mltrail chooses how the app is loaded"
            raise click.BadParameter(f"{text!r}: {flag} is not accepted here: {hint}.",
                                     param_hint="'--uvicorn-opts'")
    if "headers" in given:  # uvicorn's CLI takes "name:value" strings, uvicorn.run pairs
        given["headers"] = [tuple(h.split(":", 1)) for h in given["headers"]]
    return given


def _options(fn: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("--backend-store-uri", default=None, envvar="MLFLOW_BACKEND_STORE_URI", metavar="URI",
                     help="Database for experiments and runs: sqlite:///FILE, postgresql://... or a directory "
                          "(default ./mltrail)."),
        click.option("--read-replica-backend-store-uri", default=None, metavar="URI",
                     envvar="MLFLOW_READ_REPLICA_BACKEND_STORE_URI",
                     help="MLflow's read replica: not supported (reads and writes use --backend-store-uri)."),
        click.option("--registry-store-uri", default=None, envvar="MLFLOW_REGISTRY_STORE_URI", metavar="URI",
                     help="Registered models live in the tracking database: only the --backend-store-uri value "
                          "itself is accepted here."),
        click.option("--default-artifact-root", default=None, envvar="MLFLOW_DEFAULT_ARTIFACT_ROOT", metavar="URI",
                     help="Artifact location of new experiments (default mlflow-artifacts:/ when serving "
                          "artifacts, so clients upload through this server)."),
        click.option("--serve-artifacts/--no-serve-artifacts", default=True, show_default=True,
                     envvar="MLFLOW_SERVE_ARTIFACTS",
                     help="Serve the artifact proxy (/api/2.0/mlflow-artifacts/...)."),
        click.option("--artifacts-only", is_flag=True, default=False, envvar="MLFLOW_ARTIFACTS_ONLY",
                     help="Serve only the artifact proxy (and health, version, server-info); every tracking "
                          "route answers 503. No database is opened."),
        click.option("--artifacts-destination", default=None, envvar="MLFLOW_ARTIFACTS_DESTINATION", metavar="URI",
                     help="Where the artifact proxy keeps files: a directory or s3://... (default beside a "
                          "SQLite database, else ./mltrail/artifacts)."),
        click.option("-h", "--host", default="127.0.0.1", show_default=True, envvar="MLFLOW_HOST",
                     help="Interface to listen on; 0.0.0.0 listens on every interface."),
        click.option("-p", "--port", default=5000, show_default=True, type=int, envvar="MLFLOW_PORT"),
        click.option("-w", "--workers", default=1, show_default=True, type=int, envvar="MLFLOW_WORKERS",
                     help="uvicorn worker processes."),
        click.option("--static-prefix", default=None, envvar="MLFLOW_STATIC_PREFIX",
                     help="Serve everything (API, UI, health) under this path, e.g. /mlflow."),
        click.option("--allowed-hosts", default=None, envvar="MLFLOW_SERVER_ALLOWED_HOSTS",
                     help="Comma-separated Host header values to accept ('*' for any, '*.example.com' for a "
                          "domain). Default: localhost names and the bound host; any host with --host 0.0.0.0."),
        click.option("--cors-allowed-origins", default=None, envvar="MLFLOW_SERVER_CORS_ALLOWED_ORIGINS",
                     help="Comma-separated origins allowed to call the API from a browser (patterns with '*' "
                          "allowed; '*' for any, without credentials). Default: http://localhost, "
                          "http://127.0.0.1 and http://[::1] on any port."),
        click.option("--disable-security-middleware", is_flag=True, default=False,
                     envvar="MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE",
                     help="DANGEROUS: no Host check, no CORS checks, no security headers."),
        click.option("--x-frame-options", default="SAMEORIGIN", show_default=True,
                     envvar="MLFLOW_SERVER_X_FRAME_OPTIONS",
                     help="X-Frame-Options header: SAMEORIGIN, DENY, or NONE (no header)."),
        click.option("--gunicorn-opts", default=None, envvar="MLFLOW_GUNICORN_OPTS",
                     help="Not supported: mltrail runs on uvicorn (use --workers and --uvicorn-opts)."),
        click.option("--waitress-opts", default=None,
                     help="Not supported: mltrail runs on uvicorn (use --workers and --uvicorn-opts)."),
        click.option("--uvicorn-opts", default=None, envvar="MLFLOW_UVICORN_OPTS",
                     help='Extra uvicorn options, e.g. "--timeout-keep-alive 60 --proxy-headers".'),
        click.option("--dev", is_flag=True, default=False,
                     help="Reload on code changes and log at debug level (development only)."),
        click.option("--expose-prometheus", default=None, envvar="MLFLOW_EXPOSE_PROMETHEUS", metavar="DIR",
                     help="Serve Prometheus metrics at /metrics; DIR holds the workers' metric files "
                          "(created if missing)."),
        click.option("--app-name", default=None,
                     help="MLflow's app plugin: 'basic-auth' is accepted and means --auth."),
        click.option("--auth/--no-auth", default=False, show_default=True,
                     help="Require a user (password, token, session, or a trusted proxy's header)."),
        click.option("--auth-default-permission", default="NO_PERMISSIONS", show_default=True,
                     type=click.Choice(PERMISSIONS, case_sensitive=False),
                     help="What a user may do with a resource nobody granted them anything on."),
        click.option("--auth-proxy-header", default=None,
                     help="A header naming the user (e.g. X-Forwarded-Email), trusted only from --trusted-proxies."),
        click.option("--trusted-proxies", default=None,
                     help="Comma-separated addresses or CIDR networks of reverse proxies allowed to set "
                          "--auth-proxy-header."),
        click.option("--max-json-size", default=None, callback=_size,
                     help="Largest JSON request body (default 16MiB)."),
        click.option("--max-artifact-size", default=None, callback=_size,
                     help="Largest artifact upload (default 1GiB)."),
        click.option("--artifacts-presigned-urls/--no-artifacts-presigned-urls", default=False, show_default=True,
                     envvar="MLTRAIL_ARTIFACTS_PRESIGNED_URLS",
                     help="With an s3:// --artifacts-destination, hand clients presigned URLs so large "
                          "uploads and downloads go straight to the store (clients must reach it)."),
        click.option("--access-log/--no-access-log", default=False, show_default=True,
                     help="Log every request (costs time on busy servers)."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _refuse_unsupported(kw: dict[str, Any]) -> None:
    for name in ("gunicorn_opts", "waitress_opts"):
        if kw[name] is not None:
            flag = "--" + name.replace("_", "-")
            raise click.UsageError(
                f"{flag} is not supported: mltrail runs on uvicorn. Use --workers N for worker processes and "
                f'--uvicorn-opts "..." for uvicorn options (e.g. "--timeout-keep-alive 60").')
    if kw["read_replica_backend_store_uri"]:
        raise click.UsageError(
            "--read-replica-backend-store-uri is not supported: mltrail reads and writes through "
            "--backend-store-uri (put a connection pooler or proxy in front of PostgreSQL to spread reads).")
    if kw["app_name"] is not None and kw["app_name"] not in APP_NAMES:
        raise click.BadParameter(
            f"{kw['app_name']!r}: mltrail serves one app plugin, 'basic-auth' (the same as --auth: users, "
            "tokens and permissions in the tracking database); MLflow's other app plugins are not supported.",
            param_hint="'--app-name'")
    if kw["dev"] and kw["uvicorn_opts"]:
        raise click.UsageError("'--dev' and '--uvicorn-opts' cannot be specified together.")


def _settings(**kw: Any) -> ServerSettings:
    s = ServerSettings(
        backend_store_uri=kw["backend_store_uri"], default_artifact_root=kw["default_artifact_root"],
        artifacts_destination=kw["artifacts_destination"], serve_artifacts=kw["serve_artifacts"],
        host=kw["host"], port=kw["port"], workers=kw["workers"], allowed_hosts=_csv(kw["allowed_hosts"]),
        registry_store_uri=kw["registry_store_uri"], artifacts_only=kw["artifacts_only"],
        static_prefix=kw["static_prefix"], cors_allowed_origins=_csv(kw["cors_allowed_origins"]),
        x_frame_options=kw["x_frame_options"], disable_security_middleware=kw["disable_security_middleware"],
        expose_prometheus=kw["expose_prometheus"], auth=kw["auth"] or kw["app_name"] == "basic-auth",
        auth_default_permission=kw["auth_default_permission"].upper(), auth_proxy_header=kw["auth_proxy_header"],
        trusted_proxies=_csv(kw["trusted_proxies"]) or [])
    if kw["max_json_size"]:
        s.max_json_bytes = kw["max_json_size"]
    if kw["max_artifact_size"]:
        s.max_artifact_bytes = kw["max_artifact_size"]
    s.presigned_urls = kw["artifacts_presigned_urls"]
    return s


def _warn_wide_open(settings: ServerSettings) -> None:
    """MLflow's start-up warnings for settings that accept anyone."""
    if settings.disable_security_middleware:
        click.echo("WARNING: security middleware is DISABLED: no Host check, no CORS checks, no security headers.",
                   err=True)
        return
    if settings.cors_allowed_origins and "*" in settings.cors_allowed_origins:
        click.echo("WARNING: Allowing ALL origins for CORS. This allows ANY website to call this server's API "
                   "(without credentials); only recommended for local development.", err=True)


def run_server(settings: ServerSettings, access_log: bool = False, uvicorn_opts: dict[str, Any] | None = None,
               dev: bool = False) -> None:
    """Open the store once here (migrations run once), then serve on uvicorn."""
    from mltrail.errors import MltrailException

    try:
        settings = settings.resolved()
    except MltrailException as e:
        raise click.ClickException(e.message) from e
    if settings.expose_prometheus:  # before prometheus_client is imported here or in a worker
        from mltrail.server.prometheus import prepare_multiprocess_dir

        prepare_multiprocess_dir(settings.expose_prometheus)
    import uvicorn

    from mltrail.server.app import create_app

    try:
        app = create_app(settings)
    except MltrailException as e:
        raise click.ClickException(e.message) from e
    _warn_wide_open(settings)
    where = f"http://{settings.host}:{settings.port}{settings.static_prefix or ''}"
    if settings.artifacts_only:
        click.echo(f"mltrail artifact server (--artifacts-only): artifacts {settings.artifacts_destination}, {where}",
                   err=True)
    else:
        click.echo(f"mltrail server: {settings.backend_store_uri}, artifacts {settings.artifacts_destination} "
                   f"(new experiments: {settings.default_artifact_root}), {where}", err=True)
    common: dict[str, Any] = {"host": settings.host, "port": settings.port, "access_log": access_log,
                              "log_level": "info", "timeout_keep_alive": 30,
                              # with auth on, only --trusted-proxies may name the client (AuthMiddleware):
                              # uvicorn's own X-Forwarded-For rewrite would let any local process pose as one
                              "proxy_headers": not settings.auth, **(uvicorn_opts or {})}
    if dev:
        common.update(reload=True, log_level="debug")
    if settings.workers == 1 and not common.get("reload"):
        uvicorn.run(app, **common)
        return
    os.environ[SETTINGS_ENV] = settings.to_env()  # workers (and the reloader's child) rebuild the app from it
    uvicorn.run("mltrail.server.app:app_from_env", factory=True, workers=settings.workers, **common)


def _serve(access_log: bool, kw: dict[str, Any]) -> None:
    _refuse_unsupported(kw)
    options = uvicorn_options(kw["uvicorn_opts"])
    run_server(_settings(**kw), access_log, options, dev=kw["dev"])


@click.command(context_settings={"help_option_names": ["--help"]})
@_options
def server(access_log: bool, **kw: Any) -> None:
    """Run the tracking server: MLflow's REST API, the artifact proxy and the UI."""
    _serve(access_log, kw)


@click.command(context_settings={"help_option_names": ["--help"]})
@_options
def ui(access_log: bool, **kw: Any) -> None:
    """Run the UI and REST API over the local store (./mltrail or the tracking URI in force)."""
    from mltrail.tracking_uri import default_artifact_root_for, get_tracking_uri, local_dir_of, scheme_of

    if kw["backend_store_uri"] is None and not kw["artifacts_only"]:
        uri = get_tracking_uri()
        if scheme_of(uri) in ("http", "https"):
            raise click.ClickException(
                f"The tracking URI in force is a server ({uri}): open it in a browser, or give --backend-store-uri.")
        kw["backend_store_uri"] = uri
    uri = kw["backend_store_uri"]
    if kw["artifacts_destination"] is None and uri is not None:
        directory = local_dir_of(uri) if scheme_of(uri) in ("", "file") else None
        kw["artifacts_destination"] = os.path.join(directory, "artifacts") if directory \
            else default_artifact_root_for(uri)
    if kw["default_artifact_root"] is None and not kw["artifacts_only"]:  # local paths, as the Python API writes
        kw["default_artifact_root"] = kw["artifacts_destination"]
    _serve(access_log, kw)
