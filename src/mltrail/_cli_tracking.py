"""Maintenance commands over the tracking store: `mltrail gc` and `mltrail db upgrade`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mltrail._cli_options import TRACKING_URI_ENV, client_for
from mltrail.errors import MltrailException, ResourceDoesNotExist

if TYPE_CHECKING:
    from mltrail.client import Client


# ------------------------------------------------------------------ maintenance
@click.command()
@click.option("--backend-store-uri", "--tracking-uri", "tracking_uri",
              envvar=TRACKING_URI_ENV, default=None)
@click.option("--older-than", default=None, help="Only runs deleted at least this long ago, e.g. 30d, 12h, 45m.")
@click.option("--run-ids", default=None, help="Comma-separated deleted runs to purge (default: all deleted runs).")
def gc(tracking_uri: str | None, older_than: str | None, run_ids: str | None) -> None:
    """Permanently remove deleted runs and their artifacts.

    A run's rows are removed only once its artifacts are gone; a run whose artifacts could not be
    removed keeps its rows (still deleted), is listed at the end, and the next gc tries it again.
    """
    _require_database_uri(tracking_uri)
    client = client_for(tracking_uri)
    store = client.store
    deleted = set(store.deleted_run_ids(_parse_age(older_than) if older_than else None))
    targets = [r.strip() for r in run_ids.split(",")] if run_ids else sorted(deleted)
    for run_id in targets:
        if run_id not in deleted:
            raise click.ClickException(f"Run {run_id} is not in the deleted state (or older than --older-than); "
                                       "delete it first with `mltrail runs delete`.")
    failed: list[tuple[str, str]] = []
    for run_id in targets:
        problem = _delete_run_artifacts(client, run_id)
        if problem is not None:
            failed.append((run_id, problem))
            click.echo(f"warning: kept run {run_id}: could not delete its artifacts: {problem}", err=True)
            continue
        store.purge_run(run_id)
        click.echo(f"Purged run {run_id}")
    click.echo(f"{len(targets) - len(failed)} run(s) purged.")
    # a journal resends within minutes; a month of ids is ample
    store.prune_applied_batches(_BATCH_ID_RETENTION_MS)
    if failed:
        raise click.ClickException(
            f"{len(failed)} run(s) kept because their artifacts could not be deleted (they stay deleted; "
            f"run gc again once the cause is fixed): {', '.join(run_id for run_id, _ in failed)}")


def _require_database_uri(tracking_uri: str | None) -> None:
    """gc removes rows directly from the backend database; a server URI cannot do that."""
    from mltrail.tracking_uri import get_tracking_uri

    uri = tracking_uri or get_tracking_uri()
    if uri.split(":", 1)[0].lower() in ("http", "https"):
        raise click.UsageError(
            f"mltrail gc needs the tracking server's database URI (e.g. sqlite:///mltrail.db or "
            f"postgresql://user@host/db) in --backend-store-uri, received the server URI {uri!r}: a server "
            "does not hard-delete runs; run gc where its database is reachable.")


def _delete_run_artifacts(client: Client, run_id: str) -> str | None:
    """Delete a run's artifacts; None when they are gone, else what went wrong."""
    try:
        run = client.get_run(run_id)
        client.artifact_repo_for(run.info.artifact_uri).delete_artifacts()
    except ResourceDoesNotExist:
        return None  # nothing there to delete (a proxy answers 404 for a run that never logged a file)
    except MltrailException as e:
        return e.message
    except OSError as e:  # a local or mounted artifact store: permissions, busy files
        return f"{type(e).__name__}: {e}"
    return None


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
