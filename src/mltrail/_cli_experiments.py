"""`mltrail experiments`: MLflow's experiment commands (search, get, create, rename, delete, restore, csv) plus list."""

from __future__ import annotations

import json
import os

import click

from mltrail._cli_errors import cli_errors
from mltrail._cli_options import client_for, format_table, tracking_uri_option, use_tracking_uri, view_option
from mltrail.entities import Experiment
from mltrail.errors import ResourceDoesNotExist

_experiment_id_option = click.option("--experiment-id", "-x", required=True, help="The experiment's id.")


@click.group()
def experiments() -> None:
    """Manage experiments. Set MLFLOW_TRACKING_URI (or --tracking-uri) to work against a tracking server."""


@experiments.command("list")
@tracking_uri_option
@view_option
def experiments_list(tracking_uri: str | None, view: str) -> None:
    """List experiments with their ids and run counts (mltrail's own; MLflow 3 has `search`)."""
    with cli_errors():
        client = client_for(tracking_uri)
        exps = list(client.search_experiments(view_type=view.upper(), max_results=50000))
        counts = client.store.count_runs([e.experiment_id for e in exps])
    click.echo(f"{'ID':>6}  {'RUNS':>6}  {'STAGE':<8}  NAME")
    for e in exps:
        click.echo(f"{e.experiment_id:>6}  {counts.get(e.experiment_id, 0):>6}  {e.lifecycle_stage:<8}  {e.name}")


def _max_results(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value < 0:
        raise click.BadParameter(f"expected a non-negative integer; received {value}.")
    return value


def _shown_location(location: str) -> str:
    """A URI as it is, a plain path made absolute (as MLflow's table shows it)."""
    return location if "://" in location or location.startswith(("file:", "mlflow-artifacts:")) \
        else os.path.abspath(location)


@experiments.command("search")
@tracking_uri_option
@view_option
@click.option("--max-results", type=int, default=None, callback=_max_results,
              help="The most experiments to show (default: all of them).")
def experiments_search(tracking_uri: str | None, view: str, max_results: int | None) -> None:
    """Show experiments as a table of id, name and artifact location."""
    with cli_errors():
        exps = client_for(tracking_uri).search_experiments(view_type=view.upper(), max_results=max_results)
    rows = sorted([e.experiment_id, e.name, _shown_location(e.artifact_location)] for e in exps)
    click.echo(format_table(rows, ["Experiment Id", "Name", "Artifact Location"]))


def _experiment_json(exp: Experiment) -> dict[str, object]:
    return {"artifact_location": exp.artifact_location, "creation_time": exp.creation_time,
            "experiment_id": exp.experiment_id, "last_update_time": exp.last_update_time,
            "lifecycle_stage": exp.lifecycle_stage, "name": exp.name, "tags": dict(exp.tags)}


@experiments.command("get")
@tracking_uri_option
@click.option("--experiment-id", "-x", default=None, help="The id of the experiment to show.")
@click.option("--experiment-name", "-n", default=None, help="The name of the experiment to show.")
@click.option("--output", type=click.Choice(["json", "table"]), default="table", show_default=True)
def experiments_get(tracking_uri: str | None, experiment_id: str | None, experiment_name: str | None,
                    output: str) -> None:
    """Show one experiment (by id or by name): location, stage, times and tags."""
    if (experiment_id is None) == (experiment_name is None):
        raise click.UsageError("Must specify exactly one of --experiment-id or --experiment-name.")
    with cli_errors():
        client = client_for(tracking_uri)
        if experiment_id is not None:
            exp = client.get_experiment(experiment_id)
        else:
            found = client.get_experiment_by_name(experiment_name or "")
            if found is None:
                raise ResourceDoesNotExist(f"Experiment with name '{experiment_name}' does not exist.")
            exp = found
    if output == "json":
        click.echo(json.dumps(_experiment_json(exp), indent=2))
        return
    fields = [("Experiment ID", exp.experiment_id), ("Name", exp.name),
              ("Artifact Location", exp.artifact_location), ("Lifecycle Stage", exp.lifecycle_stage),
              ("Creation Time", exp.creation_time or "N/A"), ("Last Update Time", exp.last_update_time or "N/A"),
              ("Tags", ", ".join(f"{k}={v}" for k, v in exp.tags.items()))]
    width = max(len(name) for name, _ in fields) + 2
    for name, value in fields:
        click.echo(f"{name.ljust(width)}: {value}")


@experiments.command("create")
@tracking_uri_option
@click.option("--experiment-name", "-n", required=True)
@click.option("--artifact-location", "-l", default=None,
              help="Where the experiment's runs keep their artifacts (default: chosen by the store).")
def experiments_create(tracking_uri: str | None, experiment_name: str, artifact_location: str | None) -> None:
    """Create an experiment and print its id."""
    with cli_errors():
        exp_id = client_for(tracking_uri).create_experiment(experiment_name, artifact_location)
    click.echo(f"Created experiment '{experiment_name}' with id {exp_id}")


@experiments.command("delete")
@tracking_uri_option
@_experiment_id_option
def experiments_delete(tracking_uri: str | None, experiment_id: str) -> None:
    """Mark an experiment (and its runs) deleted; `restore` undoes it, `mltrail gc` purges the runs."""
    with cli_errors():
        client_for(tracking_uri).delete_experiment(experiment_id)
    click.echo(f"Experiment with ID {experiment_id} has been deleted.")


@experiments.command("restore")
@tracking_uri_option
@_experiment_id_option
def experiments_restore(tracking_uri: str | None, experiment_id: str) -> None:
    """Restore a deleted experiment."""
    with cli_errors():
        client_for(tracking_uri).restore_experiment(experiment_id)
    click.echo(f"Experiment with id {experiment_id} has been restored.")


@experiments.command("rename")
@tracking_uri_option
@_experiment_id_option
@click.option("--new-name", required=True)
def experiments_rename(tracking_uri: str | None, experiment_id: str, new_name: str) -> None:
    """Rename an active experiment."""
    with cli_errors():
        client_for(tracking_uri).rename_experiment(experiment_id, new_name)
    click.echo(f"Experiment with id {experiment_id} has been renamed to '{new_name}'.")


@experiments.command("csv")
@tracking_uri_option
@_experiment_id_option
@click.option("--filename", "-o", default=None, help="Write here (default: standard output).")
def experiments_csv(tracking_uri: str | None, experiment_id: str, filename: str | None) -> None:
    """Write every run of an experiment as CSV, with search_runs' columns."""
    from mltrail.fluent import search_runs

    use_tracking_uri(tracking_uri)
    with cli_errors():
        frame = search_runs(experiment_ids=[experiment_id])
    if filename:
        frame.to_csv(filename, index=False)
        click.echo(f"Experiment with ID {experiment_id} has been exported as a CSV to file: {filename}.")
    else:
        click.echo(frame.to_csv(index=False))
