"""CLI commands over the tracking store: experiments, runs, gc, db."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from mltrail._cli_errors import cli_errors
from mltrail.errors import MltrailException


def _client(tracking_uri: str | None) -> Any:
    from mltrail.client import Client

    return Client(tracking_uri)


_uri_option = click.option("--tracking-uri", envvar=["MLTRAIL_TRACKING_URI", "MLFLOW_TRACKING_URI"], default=None,
                           help="Tracking URI (default: the embedded ./mltrail store).")
_view_option = click.option("--view", type=click.Choice(["active_only", "deleted_only", "all"]),
                            default="active_only")


def _fmt_ms(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else "-"


def _add_lifecycle_command(group: click.Group, action: str, noun: str, short_flag: str,
                           help_text: str) -> None:
    """Add `<group> <action> --<noun>-id ID`: call `Client.<action>_<noun>(ID)`, then confirm in one line."""
    id_param = f"{noun}_id"  # the parameter's name, as a hand-written command would have it

    @group.command(action, help=help_text)
    @_uri_option
    @click.option(f"--{noun}-id", short_flag, id_param, required=True)
    def command(tracking_uri: str | None, **given: str) -> None:
        object_id = given[id_param]
        with cli_errors():
            getattr(_client(tracking_uri), f"{action}_{noun}")(object_id)
        click.echo(f"{noun.capitalize()} {object_id} {action}d.")  # "deleted", "restored"


# ------------------------------------------------------------------ experiments
@click.group()
def experiments() -> None:
    """List, create, delete and restore experiments."""


@experiments.command("list")
@_uri_option
@_view_option
def experiments_list(tracking_uri: str | None, view: str) -> None:
    """List experiments with their ids and run counts."""
    client = _client(tracking_uri)
    exps = list(client.search_experiments(view_type=view.upper(), max_results=50000))
    counts = client.store.count_runs([e.experiment_id for e in exps])
    click.echo(f"{'ID':>6}  {'RUNS':>6}  {'STAGE':<8}  NAME")
    for e in exps:
        click.echo(f"{e.experiment_id:>6}  {counts.get(e.experiment_id, 0):>6}  {e.lifecycle_stage:<8}  {e.name}")


@experiments.command("create")
@_uri_option
@click.option("--experiment-name", "-n", required=True)
@click.option("--artifact-location", "-l", default=None)
def experiments_create(tracking_uri: str | None, experiment_name: str, artifact_location: str | None) -> None:
    """Create an experiment and print its id."""
    with cli_errors():
        exp_id = _client(tracking_uri).create_experiment(experiment_name, artifact_location)
    click.echo(f"Created experiment '{experiment_name}' with id {exp_id}")


# delete and restore are one command four times over: mark an experiment or a run, confirm it
_add_lifecycle_command(experiments, "delete", "experiment", "-x",
                       "Mark an experiment (and its runs) deleted; `mltrail gc` purges them.")
_add_lifecycle_command(experiments, "restore", "experiment", "-x", "Restore a deleted experiment.")


# ------------------------------------------------------------------ runs
@click.group()
def runs() -> None:
    """List, describe, delete and restore runs."""


@runs.command("list")
@_uri_option
@click.option("--experiment-id", "-x", default="0", show_default=True)
@click.option("--filter", "filter_string", default="", help="MLflow search filter, e.g. \"metrics.acc > 0.9\".")
@click.option("--order-by", multiple=True, help="e.g. 'metrics.acc DESC' (repeatable).")
@click.option("--max-results", default=100, show_default=True)
@_view_option
def runs_list(tracking_uri: str | None, experiment_id: str, filter_string: str, order_by: tuple[str, ...],
              max_results: int, view: str) -> None:
    """List an experiment's runs, newest first."""
    with cli_errors():
        found = _client(tracking_uri).search_runs([experiment_id], filter_string, view.upper(), max_results,
                                                  list(order_by) or None)
    click.echo(f"{'RUN ID':<32}  {'STATUS':<9}  {'STARTED':<19}  NAME")
    for r in found:
        click.echo(f"{r.info.run_id:<32}  {r.info.status:<9}  {_fmt_ms(r.info.start_time):<19}  {r.info.run_name}")


@runs.command("describe")
@_uri_option
@click.option("--run-id", "-r", required=True)
def runs_describe(tracking_uri: str | None, run_id: str) -> None:
    """Print a run as JSON (info, params, latest metrics, tags, inputs)."""
    with cli_errors():
        run = _client(tracking_uri).get_run(run_id)
    click.echo(json.dumps(run.to_dict(), indent=2, default=str))


_add_lifecycle_command(runs, "delete", "run", "-r", "Mark a run deleted; `mltrail gc` purges it.")
_add_lifecycle_command(runs, "restore", "run", "-r", "Restore a deleted run.")


# ------------------------------------------------------------------ maintenance
@click.command()
@click.option("--backend-store-uri", "--tracking-uri", "tracking_uri",
              envvar=["MLTRAIL_TRACKING_URI", "MLFLOW_TRACKING_URI"], default=None)
@click.option("--older-than", default=None, help="Only runs deleted at least this long ago, e.g. 30d, 12h, 45m.")
@click.option("--run-ids", default=None, help="Comma-separated deleted runs to purge (default: all deleted runs).")
def gc(tracking_uri: str | None, older_than: str | None, run_ids: str | None) -> None:
    """Permanently remove deleted runs and their artifacts."""
    from mltrail.store.artifact import get_artifact_repository

    client = _client(tracking_uri)
    store = client.store
    deleted = set(store.deleted_run_ids(_parse_age(older_than) if older_than else None))
    targets = [r.strip() for r in run_ids.split(",")] if run_ids else sorted(deleted)
    for run_id in targets:
        if run_id not in deleted:
            raise click.ClickException(f"Run {run_id} is not in the deleted state (or older than --older-than); "
                                       "delete it first with `mltrail runs delete`.")
        run = client.get_run(run_id)
        try:
            get_artifact_repository(client._resolve_artifact_root(run.info.artifact_uri)).delete_artifacts()
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
