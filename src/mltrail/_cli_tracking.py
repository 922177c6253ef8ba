"""Maintenance commands over the tracking store: `mltrail gc` and `mltrail db upgrade`."""

from __future__ import annotations

import click

from mltrail._cli_options import TRACKING_URI_ENV, client_for
from mltrail.errors import MltrailException


# ------------------------------------------------------------------ maintenance
@click.command()
@click.option("--backend-store-uri", "--tracking-uri", "tracking_uri",
              envvar=TRACKING_URI_ENV, default=None)
@click.option("--older-than", default=None, help="Only runs deleted at least this long ago, e.g. 30d, 12h, 45m.")
@click.option("--run-ids", default=None, help="Comma-separated deleted runs to purge (default: all deleted runs).")
def gc(tracking_uri: str | None, older_than: str | None, run_ids: str | None) -> None:
    """Permanently remove deleted runs and their artifacts."""
    client = client_for(tracking_uri)
    store = client.store
    deleted = set(store.deleted_run_ids(_parse_age(older_than) if older_than else None))
    targets = [r.strip() for r in run_ids.split(",")] if run_ids else sorted(deleted)
    for run_id in targets:
        if run_id not in deleted:
            raise click.ClickException(f"Run {run_id} is not in the deleted state (or older than --older-than); "
                                       "delete it first with `mltrail runs delete`.")
        run = client.get_run(run_id)
        try:
            client.artifact_repo_for(run.info.artifact_uri).delete_artifacts()
        except MltrailException as e:
            click.echo(f"warning: could not delete the artifacts of run {run_id}: {e.message}", err=True)
        store.purge_run(run_id)
        click.echo(f"Purged run {run_id}")
    click.echo(f"{len(targets)} run(s) purged.")
    # a journal resends within minutes; a month of ids is ample
    store.prune_applied_batches(_BATCH_ID_RETENTION_MS)


_BATCH_ID_RETENTION_MS = 30 * 86_400_000


def _parse_age(text: str) -> int:
    units = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000}
    try:
        return int(float(text[:-1]) * units[text[-1]])
    except (KeyError, ValueError, IndexError):
        raise click.BadParameter(f"{text!r}: expected a number followed by d, h, m or s (e.g. 30d).") from None


@click.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.argument("url")
def db_upgrade(url: str) -> None:
    """Upgrade the schema of the database at URL to this mltrail's version."""
    from mltrail.store.sql import engine as eng

    engine = eng.make_engine(url)
    before = eng.current_revision(engine)
    eng.upgrade(engine)
    click.echo(f"Database schema upgraded from {before or 'empty'} to {eng.current_revision(engine)}.")
