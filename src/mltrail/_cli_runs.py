"""`mltrail runs`: MLflow's run commands (list, describe, create, delete, restore) with its option names."""

from __future__ import annotations

import json
import time

import click

from mltrail._cli_errors import cli_errors
from mltrail._cli_options import client_for, format_table, tracking_uri_option, use_tracking_uri, view_option

# MLflow's `runs` commands spell it --run-id only; -r is ours too, as `mltrail artifacts` has it
_run_id_option = click.option("--run-id", "-r", required=True, help="The run's id.")


def _date(ms: int | None) -> str:
    """MLflow's `runs list` date: UTC, to the second."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000)) if ms else ""


@click.group()
def runs() -> None:
    """Manage runs. Set MLFLOW_TRACKING_URI (or --tracking-uri) to work against a tracking server."""


@runs.command("list")
@tracking_uri_option
@click.option("--experiment-id", "-x", envvar="MLFLOW_EXPERIMENT_ID", default="0", show_default=True,
              help="The experiment whose runs to list ($MLFLOW_EXPERIMENT_ID when set).")
@click.option("--filter", "filter_string", default="", help="MLflow search filter, e.g. \"metrics.acc > 0.9\".")
@click.option("--order-by", multiple=True, help="e.g. 'metrics.acc DESC' (repeatable; default: newest first).")
@click.option("--max-results", default=1000, show_default=True)
@view_option
def runs_list(tracking_uri: str | None, experiment_id: str, filter_string: str, order_by: tuple[str, ...],
              max_results: int, view: str) -> None:
    """List an experiment's runs as MLflow's table of date, name and id, newest first."""
    with cli_errors():
        found = client_for(tracking_uri).search_runs([experiment_id], filter_string, view.upper(), max_results,
                                                     list(order_by) or None)
    rows = [[_date(r.info.start_time), r.info.run_name or "", r.info.run_id] for r in found]
    click.echo(format_table(rows, ["Date", "Name", "ID"]))


@runs.command("describe")
@tracking_uri_option
@_run_id_option
def runs_describe(tracking_uri: str | None, run_id: str) -> None:
    """Print a run as JSON: info, params, metrics, tags, inputs and outputs."""
    with cli_errors():
        run = client_for(tracking_uri).get_run(run_id)
    click.echo(json.dumps(run.to_dictionary(), indent=4, default=str))


def _parse_tags(tags: tuple[str, ...]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise click.UsageError(f"Invalid tag format: '{tag}'. Tags must be in key=value format.")
        if key in parsed:
            raise click.UsageError(f"Duplicate tag key: '{key}'")
        parsed[key] = value
    return parsed


@runs.command("create")
@tracking_uri_option
@click.option("--experiment-id", envvar="MLFLOW_EXPERIMENT_ID", default=None,
              help="The experiment to create the run in (or give --experiment-name).")
@click.option("--experiment-name", envvar="MLFLOW_EXPERIMENT_NAME", default=None,
              help="The experiment to create the run in, created when missing (or give --experiment-id).")
@click.option("--run-name", default=None, help="The run's name (default: a generated one).")
@click.option("--description", default=None, help="The run's description (the mlflow.note.content tag).")
@click.option("--tags", "-t", multiple=True, help="key=value (repeatable).")
@click.option("--status", type=click.Choice(["FINISHED", "FAILED", "KILLED"], case_sensitive=False),
              default="FINISHED", show_default=True, help="The status the run ends with.")
@click.option("--parent-run-id", default=None, help="Nest the run under this one.")
def runs_create(tracking_uri: str | None, experiment_id: str | None, experiment_name: str | None,
                run_name: str | None, description: str | None, tags: tuple[str, ...], status: str,
                parent_run_id: str | None) -> None:
    """Create a run and end it at once with --status; print its id, experiment, status and name as JSON."""
    from mltrail import fluent

    if (experiment_id is None) == (experiment_name is None):
        raise click.UsageError("Must specify exactly one of --experiment-id or --experiment-name.")
    tag_dict = _parse_tags(tags)
    use_tracking_uri(tracking_uri)
    with cli_errors():
        if experiment_name is not None:
            experiment_id = fluent.set_experiment(experiment_name=experiment_name).experiment_id
        active = fluent.start_run(experiment_id=experiment_id, run_name=run_name, parent_run_id=parent_run_id,
                                  nested=bool(parent_run_id), tags=tag_dict, description=description)
        fluent.end_run(status=status.upper())
    click.echo(json.dumps({"run_id": active.info.run_id, "experiment_id": active.info.experiment_id,
                           "status": status.upper(), "run_name": active.info.run_name}, indent=2))


@runs.command("delete")
@tracking_uri_option
@_run_id_option
def runs_delete(tracking_uri: str | None, run_id: str) -> None:
    """Mark a run deleted; `restore` undoes it, `mltrail gc` purges it."""
    with cli_errors():
        client_for(tracking_uri).delete_run(run_id)
    click.echo(f"Run with ID {run_id} has been deleted.")


@runs.command("restore")
@tracking_uri_option
@_run_id_option
def runs_restore(tracking_uri: str | None, run_id: str) -> None:
    """Restore a deleted run."""
    with cli_errors():
        client_for(tracking_uri).restore_run(run_id)
    click.echo(f"Run with id {run_id} has been restored.")
