"""`mltrail server` and `mltrail ui`: MLflow's option names, uvicorn underneath.

`ui` is the same server over the embedded default store (`./mltrail`, or the tracking URI in
force), keeping artifacts in local paths so the Python API and the UI see the same files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import click

from mltrail.server.settings import SETTINGS_ENV, MiB, ServerSettings

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?)?\s*$", re.IGNORECASE)


def _size(ctx: Any, param: Any, value: str | None) -> int | None:
    """`16MiB`, `100M`, `1G`, `4096` (bytes)."""
    if value is None:
        return None
    m = _SIZE.match(value)
    if not m:
        raise click.BadParameter(f"{value!r}: expected a size such as 16MiB, 1GiB or a number of bytes.")
    unit = (m.group(2) or "").lower()[:1]
    return int(m.group(1)) * {"": 1, "k": 1024, "m": MiB, "g": 1024 * MiB}[unit]


def _options(fn: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("--backend-store-uri", default=None, envvar="MLFLOW_BACKEND_STORE_URI",
                     help="Database for experiments and runs: sqlite:///FILE, postgresql://... or a directory "
                          "(default ./mltrail)."),
        click.option("--default-artifact-root", default=None,
                     help="Artifact location of new experiments (default mlflow-artifacts:/ when serving "
                          "artifacts, so clients upload through this server)."),
        click.option("--artifacts-destination", default=None,
                     help="Where the artifact proxy keeps files: a directory or s3://... (default beside a "
                          "SQLite database, else ./mltrail/artifacts)."),
        click.option("--serve-artifacts/--no-serve-artifacts", default=True, show_default=True,
                     help="Serve the artifact proxy (/api/2.0/mlflow-artifacts/...)."),
        click.option("-h", "--host", default="127.0.0.1", show_default=True,
                     help="Interface to listen on; 0.0.0.0 listens on every interface."),
        click.option("-p", "--port", default=5000, show_default=True, type=int),
        click.option("-w", "--workers", default=1, show_default=True, type=int,
                     help="uvicorn worker processes."),
        click.option("--allowed-hosts", default=None,
                     help="Comma-separated Host header values to accept ('*' for any, '*.example.com' for a "
                          "domain). Default: localhost names and the bound host; any host with --host 0.0.0.0."),
        click.option("--max-json-size", default=None, callback=_size,
                     help="Largest JSON request body (default 16MiB)."),
        click.option("--max-artifact-size", default=None, callback=_size,
                     help="Largest artifact upload (default 1GiB)."),
        click.option("--access-log/--no-access-log", default=False, show_default=True,
                     help="Log every request (costs time on busy servers)."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _settings(**kw: Any) -> ServerSettings:
    s = ServerSettings(
        backend_store_uri=kw["backend_store_uri"], default_artifact_root=kw["default_artifact_root"],
        artifacts_destination=kw["artifacts_destination"], serve_artifacts=kw["serve_artifacts"],
        host=kw["host"], port=kw["port"], workers=kw["workers"],
        allowed_hosts=[h for h in kw["allowed_hosts"].split(",")] if kw["allowed_hosts"] else None)
    if kw["max_json_size"]:
        s.max_json_bytes = kw["max_json_size"]
    if kw["max_artifact_size"]:
        s.max_artifact_bytes = kw["max_artifact_size"]
    return s


def run_server(settings: ServerSettings, access_log: bool = False) -> None:
    """Open the store once here (migrations run once), then serve on uvicorn."""
    import uvicorn

    from mltrail.errors import MltrailException
    from mltrail.server.app import create_app

    try:
        settings = settings.resolved()
        app = create_app(settings)
    except MltrailException as e:
        raise click.ClickException(e.message) from e
    click.echo(f"mltrail server: {settings.backend_store_uri}, artifacts {settings.artifacts_destination} "
               f"(new experiments: {settings.default_artifact_root}), http://{settings.host}:{settings.port}",
               err=True)
    common: dict[str, Any] = {"host": settings.host, "port": settings.port, "access_log": access_log,
                              "log_level": "info", "timeout_keep_alive": 30}
    if settings.workers == 1:
        uvicorn.run(app, **common)
        return
    os.environ[SETTINGS_ENV] = settings.to_env()
    uvicorn.run("mltrail.server.app:app_from_env", factory=True, workers=settings.workers, **common)


@click.command(context_settings={"help_option_names": ["--help"]})
@_options
def server(access_log: bool, **kw: Any) -> None:
    """Run the tracking server: MLflow's REST API, the artifact proxy and the UI."""
    run_server(_settings(**kw), access_log)


@click.command(context_settings={"help_option_names": ["--help"]})
@_options
def ui(access_log: bool, **kw: Any) -> None:
    """Run the UI and REST API over the local store (./mltrail or the tracking URI in force)."""
    from mltrail.tracking_uri import default_artifact_root_for, get_tracking_uri, local_dir_of, scheme_of

    if kw["backend_store_uri"] is None:
        uri = get_tracking_uri()
        if scheme_of(uri) in ("http", "https"):
            raise click.ClickException(
                f"The tracking URI in force is a server ({uri}): open it in a browser, or give --backend-store-uri.")
        kw["backend_store_uri"] = uri
    uri = kw["backend_store_uri"]
    if kw["artifacts_destination"] is None:
        directory = local_dir_of(uri) if scheme_of(uri) in ("", "file") else None
        kw["artifacts_destination"] = os.path.join(directory, "artifacts") if directory \
            else default_artifact_root_for(uri)
    if kw["default_artifact_root"] is None:  # local paths, as the embedded Python API writes them
        kw["default_artifact_root"] = kw["artifacts_destination"]
    run_server(_settings(**kw), access_log)
