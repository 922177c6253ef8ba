"""`mltrail doctor`: MLflow's debugging report, plus whether the tracking store answers."""

from __future__ import annotations

import click

from mltrail._cli_options import tracking_uri_option, use_tracking_uri


@click.command(short_help="Print what helps debug a problem: versions, URIs, store reachability.")
@tracking_uri_option
@click.option("--mask-envs", is_flag=True,
              help='Show MLFLOW_*/MLTRAIL_* environment variables as "***" (they may hold credentials).')
def doctor(tracking_uri: str | None, mask_envs: bool) -> None:
    """Print versions of Python, mltrail and key packages, the platform, the tracking and registry URIs,
    and whether the tracking store answers."""
    from mltrail._doctor import doctor as report

    use_tracking_uri(tracking_uri)
    report(mask_envs)
