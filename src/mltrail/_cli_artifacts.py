"""`mltrail artifacts`: list, download and log a run's artifacts (MLflow's `mlflow artifacts` commands)."""

from __future__ import annotations

import json

import click

from mltrail._cli_errors import cli_errors
from mltrail._cli_options import client_for, tracking_uri_option

_artifact_path_option = click.option(
    "--artifact-path", "-a", default=None,
    help="A directory inside the run's artifacts (default: the run's artifact root).")


@click.group()
def artifacts() -> None:
    """Upload, list and download run artifacts. Set MLFLOW_TRACKING_URI (or --tracking-uri) for a server."""


@artifacts.command("log-artifact")
@tracking_uri_option
@click.option("--local-file", "-l", required=True, help="The local file to log.")
@click.option("--run-id", "-r", required=True, help="The run to log it to.")
@_artifact_path_option
def log_artifact(tracking_uri: str | None, local_file: str, run_id: str, artifact_path: str | None) -> None:
    """Log a local file as an artifact of a run, optionally under a directory of the run's artifacts."""
    with cli_errors():
        client_for(tracking_uri).log_artifact(run_id, local_file, artifact_path)
    click.echo(f"Logged artifact from local file {local_file} to artifact_path={artifact_path}", err=True)


@artifacts.command("log-artifacts")
@tracking_uri_option
@click.option("--local-dir", "-l", required=True, help="The local directory whose files to log.")
@click.option("--run-id", "-r", required=True, help="The run to log them to.")
@_artifact_path_option
def log_artifacts(tracking_uri: str | None, local_dir: str, run_id: str, artifact_path: str | None) -> None:
    """Log the files of a local directory as artifacts of a run, optionally under a directory."""
    with cli_errors():
        client_for(tracking_uri).log_artifacts(run_id, local_dir, artifact_path)
    click.echo(f"Logged artifact from local dir {local_dir} to artifact_path={artifact_path}", err=True)


@artifacts.command("list")
@tracking_uri_option
@click.option("--run-id", "-r", required=True, help="The run whose artifacts to list.")
@_artifact_path_option
def list_artifacts(tracking_uri: str | None, run_id: str, artifact_path: str | None) -> None:
    """Print the artifacts directly under the run's root (or --artifact-path) as a JSON list of file infos."""
    with cli_errors():
        infos = client_for(tracking_uri).list_artifacts(run_id, artifact_path or None)
    # MLflow's layout: each FileInfo as indented JSON, joined into one list
    click.echo("[" + ", ".join(json.dumps(info.to_dict(), indent=2) for info in infos) + "]")


@artifacts.command("download")
@tracking_uri_option
@click.option("--run-id", "-r", default=None, help="The run to download from (or give --artifact-uri).")
@click.option("--artifact-path", "-a", default=None,
              help="With --run-id: the file or directory to download (default: all of the run's artifacts).")
@click.option("--artifact-uri", "-u", default=None,
              help="The artifact file or directory to download (runs:/, models:/, mlflow-artifacts:/, s3://, ...).")
@click.option("--dst-path", "-d", default=None,
              help="Download under this local directory, created if missing (default: a new temporary one).")
def download(tracking_uri: str | None, run_id: str | None, artifact_path: str | None, artifact_uri: str | None,
             dst_path: str | None) -> None:
    """Download an artifact file or directory; print where it is on the local filesystem."""
    from mltrail.artifacts import download_artifacts

    if artifact_uri is None and run_id is None:
        raise click.UsageError("Either --run-id or --artifact-uri must be provided.")
    if artifact_uri is not None:  # as MLflow: the URI wins, --run-id and --artifact-path are ignored
        run_id = artifact_path = None
    with cli_errors():
        local = download_artifacts(artifact_uri=artifact_uri, run_id=run_id, artifact_path=artifact_path,
                                   dst_path=dst_path, tracking_uri=tracking_uri)
    click.echo(f"\n{local}")
