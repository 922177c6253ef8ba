"""`mltrail import-mlflow`: bring an MLflow tracking store (database or `mlruns` folder) into an mltrail store."""

from __future__ import annotations

import os

import click

from mltrail._cli_errors import cli_errors


@click.command("import-mlflow")
@click.argument("source")
@click.option("--to", "to", default=None,
              help="The mltrail store to import into: a folder or database URI (default: $MLTRAIL_TRACKING_URI, else "
                   "the embedded ./mltrail store; $MLFLOW_TRACKING_URI is not used, as it names the store being "
                   "left). Created when new.")
@click.option("--artifacts", "source_artifacts", default=None, metavar="PATH_OR_S3",
              help="Where the MLflow artifacts live when not where the store says (the MLflow server's "
                   "--artifacts-destination, which mlflow-artifacts:/ URIs point into).")
@click.option("--artifacts-destination", "artifacts_dest", default=None, metavar="PATH_OR_S3",
              help="The mltrail artifact root to copy them into (default: the store's own, e.g. ./mltrail/artifacts).")
@click.option("--keep-artifacts-in-place", is_flag=True, default=False,
              help="Reference the MLflow artifacts where they are instead of copying them.")
def import_mlflow(source: str, to: str | None, source_artifacts: str | None, artifacts_dest: str | None,
                  keep_artifacts_in_place: bool) -> None:
    """Import SOURCE, an MLflow tracking store (sqlite:///mlflow.db, postgresql://..., ./mlruns or file:///...).

    Everything comes over: experiments, runs with their whole metric history, datasets, logged models,
    registered models with versions, aliases and tags, and the artifacts. Safe to rerun: what is already
    there is skipped, what is new is added, and an interrupted import is finished. Exits with status 1 when
    the destination's counts differ from the source's.
    """
    from mltrail.interop.mlflow.importer import import_store, open_source
    from mltrail.tracking_uri import DEFAULT_DIR, absolutize

    dest = absolutize(to or os.environ.get("MLTRAIL_TRACKING_URI") or DEFAULT_DIR)
    with cli_errors():
        reader = open_source(absolutize(source))
        try:
            report = import_store(reader, dest, artifacts_dest=artifacts_dest,
                                  keep_artifacts_in_place=keep_artifacts_in_place, source_artifacts=source_artifacts,
                                  log=lambda line: click.echo(line, err=True))
        finally:
            reader.close()
    click.echo(report.summary())
    if not report.ok:
        raise SystemExit(1)
