"""`mltrail export-mlflow`: write an mltrail store out as an MLflow store that the real MLflow 3.17 opens."""

from __future__ import annotations

import click

from mltrail._cli_errors import cli_errors


@click.command("export-mlflow")
@click.option("--from", "source", default=None,
              help="The mltrail store to export (default: $MLTRAIL_TRACKING_URI, $MLFLOW_TRACKING_URI, else "
                   "the embedded ./mltrail store).")
@click.option("--to", "to", required=True, help="The MLflow store to create: sqlite:///mlflow.db or a FileStore folder such as ./mlruns (must be new).")
@click.option("--artifacts", "artifacts", default=None,
              help="Where to copy the artifacts (default: mlartifacts/ beside the new database, or inside the "
                   "FileStore folder as MLflow lays it out).")
def export_mlflow(source: str | None, to: str, artifacts: str | None) -> None:
    """Export runs, metrics, datasets, logged models, the registry and artifacts to a new MLflow store."""
    from mltrail.interop.mlflow.exporter import export_store
    from mltrail.tracking_uri import absolutize, get_tracking_uri

    with cli_errors():
        report = export_store(absolutize(source) if source else get_tracking_uri(), absolutize(to), artifacts)
    for line in report.lines():
        click.echo(line)
